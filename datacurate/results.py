"""What each stage returns to Python and prints on the terminal: one class per stage around the
stage's own result (`.raw`), with a short repr, `.summary()` (the text the command prints),
`.to_dict()` (what `--json` prints) and `.to_frame()` (a pandas DataFrame).

The CLI commands, the pipeline and the demo print `lines()`, `to_dict()` and `shown_warnings()` of
these objects (`show`), so the terminal and a notebook show the same thing. Attributes the wrapper
does not have come from the stage's result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from datacurate.core.fsutil import shown
from datacurate.core.terminal import echo, table_lines


class Result:
    """A stage's outcome; `raw` is the stage's own result object."""

    stage = ""
    columns: tuple[str, ...] = ()  # of to_frame(), so an empty frame still has them
    max_warnings: int | None = None  # shown_warnings(): at most this many, then "... and N more"

    def __init__(self, raw: Any, ws: Any = None) -> None:
        self.raw = raw
        self.ws = ws

    def __getattr__(self, name: str) -> Any:
        if name in ("raw", "ws"):
            raise AttributeError(name)
        return getattr(self.raw, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.headline()}>"

    def headline(self) -> str:
        """A few words: what the stage did."""
        lines = self.lines()
        return lines[-1] if lines else ""

    def lines(self) -> list[str]:
        """What the command prints on stdout."""
        return []

    def warnings(self) -> list[str]:
        """What the command prints on stderr (after `datacurate: warning: `)."""
        return []

    def failure(self) -> tuple[str, int] | None:
        """(why, exit code) when the stage failed as a whole (the command exits with that code), else None."""
        return None

    def shown_warnings(self) -> list[str]:
        """The warnings as the command prints them: at most max_warnings, then how many more there are."""
        lines = self.warnings()
        if self.max_warnings is None or len(lines) <= self.max_warnings:
            return lines
        return lines[:self.max_warnings] + [f"... and {len(lines) - self.max_warnings} more"]

    def summary(self) -> str:
        return "\n".join(self.lines())

    def to_dict(self) -> dict:
        return {}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, default=str)

    def rows(self) -> list[dict]:
        return []

    def to_frame(self):
        """A pandas DataFrame: one row per image, decision or class as fits the stage."""
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=list(self.columns) or None)

    def _rel(self, path) -> str:
        try:
            return self.ws.rel(path)
        except Exception:  # noqa: BLE001 - a folder outside the workspace is shown as it is
            return str(path)


def _stdout(line: str) -> None:
    echo(line)


def _stderr(line: str) -> None:
    echo(line, err=True)


@dataclass(frozen=True)
class Terminal:
    """Where a run prints: `echo` takes the lines of stdout, `err` those of stderr (default: this process's)."""

    echo: Callable[[str], None] = _stdout
    err: Callable[[str], None] = _stderr

    def show(self, result: Result, as_json: bool = False) -> None:
        """Print `result` as its command does: its JSON or its lines, then its warnings on stderr."""
        for line in [result.to_json()] if as_json else result.lines():
            self.echo(line)
        self.warn(*result.shown_warnings())

    def warn(self, *lines: str) -> None:
        for line in lines:
            self.err(f"datacurate: warning: {line}")


TERMINAL = Terminal()  # this process's stdout and stderr: what the commands print through


class CleanRun(Result):
    stage = "clean"
    columns = ("path", "action", "reason", "of", "detail", "flags")

    def __init__(self, raw, ws, rebuilt: list[str] | None = None):
        super().__init__(raw, ws)
        self.rebuilt = rebuilt or []

    def headline(self) -> str:
        r = self.raw
        verb = "would set aside" if r.dry_run else "set aside"
        return f"{r.scanned} files checked; {verb} {len(r.decisions)}" + ("; dry run" if r.dry_run else "")

    def lines(self) -> list[str]:
        r, out = self.raw, list(self.rebuilt)
        if r.dry_run:
            out += [f"would {fix.action}  {shown(fix.path)} -> {shown(fix.dst)}" for fix in r.fixes]
            out += [f"would set aside  {shown(d.path)}  [{d.reason}]  {d.detail}" for d in r.decisions]
        rows = [{"result": "kept", "files": r.kept}, {"result": "fixed", "files": len(r.fixes)}]
        rows += [{"result": reason, "files": n} for reason, n in r.counts.items()]
        if r.conflicts_reported:
            rows.append({"result": "conflicts reported (not moved)", "files": len(r.conflicts_reported)})
        rows += [{"result": f"flagged {flag} (reported)", "files": n} for flag, n in r.flag_counts.items()]
        out += table_lines(rows, ["result", "files"])
        verb = "would set aside" if r.dry_run else "set aside"
        out.append(f"{r.scanned} files checked in {r.seconds:.1f}s; {verb} {len(r.decisions)}"
                   + ("; dry run: nothing moved" if r.dry_run else f"; quarantine: {self._quarantines()}"))
        out += [f"report: {path}" for path in r.reports.values()]
        return out

    def _quarantines(self) -> str:
        """The quarantine folders this clean used (the workspace's when it moved nothing)."""
        ws, now = self.ws, [str(self.ws.abs(p)) for p in self.raw.moved.values()]
        used = [q for q in ws.quarantines() if any(p.startswith(str(q) + "/") for p in now)]
        return ", ".join(self._rel(q) for q in used or [ws.quarantine])

    def warnings(self) -> list[str]:
        n = len(self.raw.outside)
        return [f"{n} files lie outside class folders and were left alone"] if n else []

    def to_dict(self) -> dict:
        return self.raw.summary()

    def rows(self) -> list[dict]:
        r = self.raw
        out = [{"path": d.path, "action": "set aside", "reason": d.reason, "of": d.of, "detail": d.detail,
                "flags": ",".join(r.flags.get(d.path, []))} for d in r.decisions]
        out += [{"path": f.path, "action": f.action, "reason": "", "of": f.dst, "detail": f.detail,
                 "flags": ",".join(r.flags.get(f.path, []))} for f in r.fixes]
        return out


class SplitRun(Result):
    stage = "split"
    columns = ("path", "class", "source", "split")
    max_warnings = 12

    def headline(self) -> str:
        r = self.raw
        counts = ", ".join(f"{n} {s}" for s, n in r.counts.items())
        return f"{'would place' if r.dry_run else 'placed'} {counts} (seed {r.options.seed})"

    def lines(self) -> list[str]:
        r, opts = self.raw, self.raw.options
        rows, cols = r.balance.table()
        out = table_lines(rows, cols) + [r.balance.summary()]
        counts = ", ".join(f"{n} {s}" for s, n in r.counts.items())
        out.append(f"split: {'would place' if r.dry_run else 'placed'} {counts} (seed {opts.seed}"
                   f"{', final' if opts.final else ''}, {opts.link}) in {self._rel(r.folder)}")
        left = len(r.assignment.left_out) + len(r.skipped)
        if left:
            out.append(f"left out: {left} file(s) (see {self._rel(r.folder)}/split.csv)")
        if r.assignment.moved:
            out.append(f"moved: {len(r.assignment.moved)} image(s) changed split to keep linked images together")
        if r.tree and r.tree.copied and opts.link == "hardlink":
            out.append(f"copied {r.tree.copied} file(s) that could not be hardlinked (another file system)")
        if r.converted:
            made = "" if r.dry_run else f" ({r.converted_now} converted now, the others kept from data/split/.converted)"
            out.append(f"{'would convert' if r.dry_run else 'converted'} {r.converted} file(s) to {opts.convert.upper()}{made}")
        if r.manifest:
            out.append(f"manifest: {self._rel(r.manifest)} (and metadata.jsonl in each split folder)")
        if r.stats_removed:
            out.append("train changed: removed the stale stats.json; run `datacurate stats`")
        out += [f"report: {self._rel(path)}" for path in r.reports.values()]
        if r.dry_run:
            out.append("dry run: nothing written")
        return out

    def warnings(self) -> list[str]:
        return list(self.raw.assignment.warnings)

    def to_dict(self) -> dict:
        return self.raw.summary()

    def rows(self) -> list[dict]:
        r = self.raw
        return [{"path": it.path, "class": it.klass, "source": it.source, "split": r.assignment.split.get(it.path, "")}
                for it in r.items]


class StatsRun(Result):
    stage = "stats"
    columns = ("channel", "mean", "std")
    max_warnings = 12

    def lines(self) -> list[str]:
        r = self.raw
        fmt = lambda v: " ".join(f"{x:.4f}" for x in v)  # noqa: E731
        return [f"mean {fmt(r.mean)}  std {fmt(r.std)}  over {r.count} train images -> {self._rel(r.path)}"]

    def warnings(self) -> list[str]:
        s = self.raw.skipped
        return [f"{len(s)} image(s) did not decode and were skipped, e.g. {s[0]}"] if s else []

    def to_dict(self) -> dict:
        return {**self.raw.to_json(), "skipped": len(self.raw.skipped), "path": str(self.raw.path)}

    def rows(self) -> list[dict]:
        r = self.raw
        return [{"channel": c, "mean": m, "std": s} for c, m, s in zip("RGB", r.mean, r.std)]


def _calibration_lines(classes: dict[str, dict]) -> list[str]:
    """How vet's thresholds were set: a line per class for a few classes, else a count per way."""
    notes = {name: c["calibration"] for name, c in classes.items() if c.get("calibration")}
    if len(notes) <= 4:
        return [f"threshold of {name}: {note}" for name, note in notes.items()]
    ways: dict[str, int] = {}
    for note in notes.values():
        way = note.split(":", 1)[0]
        ways[way] = ways.get(way, 0) + 1
    return ["thresholds set from " + ", ".join(f"the {way} for {n} classes" for way, n in ways.items())
            + " (reports/vet.html has each)"]


class VetRun(Result):
    stage = "vet"
    columns = ("path", "class", "source", "distance", "threshold", "quality", "likeliest", "likeliest_prob", "flag", "looks_like")

    def headline(self) -> str:
        c = self.raw.counts()
        return f"{'would set aside' if self.raw.dry_run else 'set aside'} {c['off-topic']} off-topic and {c['wrong-class']} wrong-class"

    def lines(self) -> list[str]:
        r = self.raw
        verb = "would move" if r.dry_run else "moved"
        out = []
        for f in r.flags:
            where = f"-> {f.dst}" if f.dst else ("(original: listed, not moved)" if not f.move else f"[{verb}]")
            out.append(f"{f.reason:<11}  {f.path}  {where}  {f.detail}")
        rows = [{"class": name, **c} for name, c in r.classes.items()]
        out += table_lines(rows, ["class", "originals", "scraped", "threshold", "off-topic", "wrong-class"])
        out += _calibration_lines(r.classes)
        if r.judge:
            out.append(f"judge: {r.judge['about']}")
        counts = r.counts()
        out.append(f"{r.model}: embedded {r.embedded} new images ({r.cached} from the cache); "
                   f"{'would set aside' if r.dry_run else 'set aside'} {counts['off-topic']} off-topic and "
                   f"{counts['wrong-class']} wrong-class" + (f"; {len(r.listed)} originals listed" if r.listed else "")
                   + f" in {r.seconds:.1f}s" + ("; dry run: nothing moved" if r.dry_run else ""))
        out += list(r.notes) + [f"report: {path}" for path in r.reports.values()]
        return out

    def warnings(self) -> list[str]:
        r = self.raw
        out = [f"{name}: {why}; skipped" for name, why in r.skipped_classes.items()]
        if r.undecodable:
            out.append(f"{len(r.undecodable)} files did not decode and were left alone (run `datacurate clean`)")
        return out

    def to_dict(self) -> dict:
        return self.raw.summary()

    def rows(self) -> list[dict]:
        return [{"path": s.path, "class": s.klass, "source": s.source, "distance": s.distance, "threshold": s.threshold,
                 "quality": s.quality, "likeliest": s.likeliest, "likeliest_prob": s.likeliest_prob, "flag": s.flag,
                 "looks_like": s.looks_like} for s in self.raw.scores]


class ScrapeRun(Result):
    stage = "scrape"
    columns = ("class", "engine", "pages", "page errors", "candidates", "saved", "rejected")

    def headline(self) -> str:
        r = self.raw
        if r.dry_run:
            return f"plan: {len(r.planned)} result pages for {len(r.queries)} classes"
        return f"saved {r.saved()} images in {r.seconds:.1f} s"

    def lines(self) -> list[str]:
        return self._plan() if self.raw.dry_run else self._summary()

    def _plan(self) -> list[str]:
        r, out = self.raw, []
        engines = list(dict.fromkeys(e for _, e, _, _ in r.planned))
        for klass, queries in r.queries.items():
            out.append(f"{klass}: have {r.had.get(klass, 0)}, want {r.need.get(klass, 0)} more")
            out += [f"  query: {q}" for q in queries]
            for c, engine, q, url in r.planned:
                if c == klass:
                    turn = " (fallback)" if r.fallback and engine != engines[0] else ""
                    out.append(f"    {engine:<9} {url}{turn}")
        if r.skipped:
            out.append(f"skipped (queries file): {', '.join(r.skipped)}")
        return out

    def _summary(self) -> list[str]:
        r, out = self.raw, table_lines(self.rows())
        if r.skipped:
            out.append(f"skipped (queries file): {', '.join(r.skipped)}")
        full = [k for k, n in r.need.items() if n == 0]
        if full:
            out.append(f"already full ({len(full)} classes): {', '.join(full[:10])}{' ...' if len(full) > 10 else ''}")
        out += [f"refused: {line}" for line in r.refusal_lines()]
        rate = f", {r.images_per_second:.1f} images/s while downloading" if r.saved() else ""
        out.append(f"saved {r.saved()} images into {self._rel(self.ws.scraped)}/ in {r.seconds:.1f} s{rate}")
        if r.reports:
            out.append(f"licences and authors: {self._rel(r.reports['attribution'])}; report: {self._rel(r.reports['html'])}")
        return out

    def failure(self) -> tuple[str, int] | None:
        """(why no class got a single image, the exit code) when images were wanted and none came."""
        return self.raw.failure()

    def warnings(self) -> list[str]:
        out: list[str] = []
        if self.raw.dry_run:  # a plan fetches nothing: "no new image" would be noise
            return out
        for klass, need in self.raw.need.items():
            got = self.raw.saved(klass)
            if need and not got:
                out.append(f"class {klass}: no new image (wanted {need})")
            elif need and got < need:
                out.append(f"class {klass}: {got} of {need} wanted (results ran out)")
        return out

    def rows(self) -> list[dict]:
        from datacurate.scrape.result import rejected_text

        out = []
        for (klass, engine), t in sorted(self.raw.tallies.items()):
            pages = f"{t.pages}" + (f" ({t.empty_pages} empty)" if t.empty_pages else "") + \
                    (f" ({t.unrecognised_pages} unrecognised)" if t.unrecognised_pages else "")
            out.append({"class": klass, "engine": engine, "pages": pages, "page errors": sum(t.page_errors.values()),
                        "candidates": t.candidates, "saved": t.saved, "rejected": rejected_text(t.rejected)})
        return out

    def to_dict(self) -> dict:
        r = self.raw
        if r.dry_run:
            return {"dry_run": True, "queries": r.queries, "had": r.had, "need": r.need, "skipped": r.skipped,
                    "planned": [{"class": c, "engine": e, "query": q, "url": u} for c, e, q, u in r.planned]}
        failure = r.failure()
        return {"dry_run": False, "saved": r.saved(), "need": r.need, "had": r.had, "skipped": r.skipped,
                "tallies": [{**row, "rejected": dict(r.tallies[(row["class"], row["engine"])].rejected)} for row in self.rows()],
                "refused": r.refusal_lines(), "failure": failure[0] if failure else None, "seconds": round(r.seconds, 3),
                "images_per_second": round(r.images_per_second, 2), "reports": {k: str(v) for k, v in r.reports.items()}}


class TrainRun(Result):
    stage = "train"

    def headline(self) -> str:
        r = self.raw
        if r.run_dir is None:
            return f"plan: {len(r.plan)} lines"
        return f"run {r.name}: best epoch {r.best_epoch}, valid acc {r.best.get('valid_acc', float('nan')):.4f}"

    def lines(self) -> list[str]:
        r = self.raw
        if r.run_dir is None:
            return list(r.plan)
        b = r.best
        out = [f"run {r.name}: {r.epochs} epochs on {r.device}; best epoch {r.best_epoch}: "
               f"valid acc {b.get('valid_acc', float('nan')):.4f}, valid loss {b.get('valid_loss', float('nan')):.4f}"
               f"{' (stopped early)' if r.stopped_early else ''}"]
        if r.skipped:
            out.append(f"{len(r.skipped)} files could not be decoded and were skipped (listed in metrics.json)")
        out.append(f"wrote {self._rel(r.run_dir)}/: best.pt last.pt history.csv history.png metrics.json config.yaml report.html"
                   + (" tensorboard/" if (Path(r.run_dir) / "tensorboard").is_dir() else ""))
        return out

    def to_dict(self) -> dict:
        r = self.raw
        if r.run_dir is None:
            return {"plan": r.plan}
        return {"run": r.name, "run_dir": str(r.run_dir), "epochs": r.epochs, "best_epoch": r.best_epoch, "best": r.best,
                "last": r.last, "stopped_early": r.stopped_early, "device": r.device, "skipped": len(r.skipped)}

    def to_frame(self):
        """The run's history: one row per epoch (history.csv)."""
        import pandas as pd

        if self.raw.run_dir is None or not (Path(self.raw.run_dir) / "history.csv").is_file():
            return pd.DataFrame()
        return pd.read_csv(Path(self.raw.run_dir) / "history.csv")


class EvaluateRun(Result):
    stage = "evaluate"
    columns = ("class", "support", "precision", "recall", "f1")

    def headline(self) -> str:
        return f"{self.raw.run}: {self.raw.images} images, accuracy {self.raw.accuracy:.4f}"

    def lines(self) -> list[str]:
        r = self.raw
        tail = f", with TTA ({r.tta}) {r.accuracy_tta:.4f}" if r.tta else ""
        out = [f"{r.run} on {r.data}: {r.images} images, accuracy {r.accuracy:.4f}{tail}"]
        out += table_lines(r.per_class, ["class", "support", "precision", "recall", "f1"])
        if r.confused:
            out.append("most confused (true -> predicted):")
            out += [f"  {c['true']} -> {c['predicted']}: {c['count']}" for c in r.confused]
        if r.skipped:
            out.append(f"{len(r.skipped)} files could not be decoded and were skipped")
        wrong = sum(p.wrong for p in r.predictions)
        out.append(f"wrote {r.out_dir}/: predictions.csv errors.html ({wrong} wrong) confusion.csv confusion_normalized.csv "
                   "confusion.png confusion.svg confusion_normalized.svg per_class.csv metrics.json")
        if r.report:
            out.append(f"run report: {r.report}")
        return out

    def to_dict(self) -> dict:
        r = self.raw
        return {"run": r.run, "data": str(r.data), "images": r.images, "accuracy": r.accuracy, "accuracy_tta": r.accuracy_tta,
                "tta": r.tta, "per_class": r.per_class, "confused": r.confused, "skipped": len(r.skipped), "out_dir": str(r.out_dir),
                "wrong": sum(p.wrong for p in r.predictions), "report": None if r.report is None else str(r.report)}

    def rows(self) -> list[dict]:
        return list(self.raw.per_class)


class PredictRun(Result):
    """Predictions: `.records` holds one dict per image, as `datacurate predict` prints them."""

    stage = "predict"
    columns = ("path", "result", "probability", "error")

    @property
    def records(self) -> list[dict]:
        return self.raw

    def headline(self) -> str:
        bad = sum("error" in r for r in self.raw)
        return f"{len(self.raw)} images" + (f", {bad} could not be decoded" if bad else "")

    def lines(self) -> list[str]:
        return [json.dumps(rec, ensure_ascii=False) for rec in self.raw]

    def to_dict(self) -> dict:
        return {"predictions": self.raw}

    def rows(self) -> list[dict]:
        return [{"path": r["path"], "result": r.get("result"), "probability": r["top"][0][1] if r.get("top") else None,
                 "error": r.get("error")} for r in self.raw]
