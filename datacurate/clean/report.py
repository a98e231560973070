"""What clean writes under reports/: CSVs of decisions and pairs, the review pages, the duplicates gallery.

Two sources, one rendering: a dry run reports its plan (marked as a plan: nothing moved); a real
run, and `datacurate report clean`, report from the catalog: everything clean holds in quarantine
now (this run's and earlier runs'), the pairs it found, the fixes it made, the quality flags.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import Markup

from datacurate.core.catalog import Catalog
from datacurate.clean.model import Pair
from datacurate.core.fsutil import atomic_write_text
from datacurate.report.review import Card, Pic, Pictures, environment, write_review
from datacurate.core.workspace import Workspace

NO_PREVIEW = {"empty", "unreadable", "not-an-image", "unsupported", "too-large", "corrupt"}
PAIRED = {"duplicate", "near-duplicate", "label-conflict", "test-leak"}
NOT_CLEANS = {"off-topic", "wrong-class", "converted", "derived"}  # vet's reasons, and clean's fixes
DECISION_COLUMNS = ["path", "now_at", "class", "source", "decision", "reason", "of", "distance", "flags", "detail"]
KEPT_FLAGGED = "kept, with quality flags"  # the cards of flagged images that stay (last in the review order)
MAX_BITS = 32  # neardup.MAX_THRESHOLD: distances are scaled by it for the review order


@dataclass
class Entry:
    """One file clean set aside (or would): where it is now and what it was compared with."""

    path: str                    # where the file was judged (its home)
    now: str                     # where it is now
    klass: str
    source: str
    reason: str
    detail: str
    sha256: str | None
    of: str | None = None        # the keeper or test image, where it is now
    of_sha: str | None = None
    distance: int | None = None


@dataclass
class CleanView:
    """Everything clean's pages show."""

    plan: bool
    summary: list[dict]                                   # what, files
    entries: list[Entry]
    fixes: list[dict] = field(default_factory=list)       # file, now, action, why
    flag_counts: dict[str, int] = field(default_factory=dict)
    kept_flagged: list[tuple[Pic, str, str]] = field(default_factory=list)  # picture, flags, class
    conflicts: list[tuple[Pic, Pic, int]] = field(default_factory=list)
    kept_by_you: list[Pic] = field(default_factory=list)


def write_reports(ws: Workspace, cat: Catalog, result, rows, *, quiet: bool = True,
                  page_size: int | None = None) -> dict[str, str]:
    """Write clean-decisions.csv, clean.html (+ pages), clean-pairs.csv and clean-duplicates.html; return their paths.

    A dry run reports its plan; a real run reports what the catalog holds after it.
    """
    out = ws.reports
    decisions_csv = _write_decisions(out / "clean-decisions.csv", result, rows, result.moved)
    view = plan_view(ws, cat, result, rows) if result.dry_run else catalog_view(ws, cat, result)
    pairs = result.pairs if result.dry_run else catalog_pairs(cat)
    paths = _write_pages(ws, cat, view, pairs, quiet=quiet, page_size=page_size)
    return {"decisions_csv": ws.rel(decisions_csv), **paths}


def write_from_catalog(ws: Workspace, cat: Catalog, *, quiet: bool = True, page_size: int | None = None) -> dict[str, str]:
    """`datacurate report clean`: every clean report again, from the catalog alone."""
    view = catalog_view(ws, cat, None)
    decisions_csv = _decisions_from_catalog(ws, cat, ws.reports / "clean-decisions.csv")
    return {"decisions_csv": ws.rel(decisions_csv),
            **_write_pages(ws, cat, view, catalog_pairs(cat), quiet=quiet, page_size=page_size)}


def _write_pages(ws: Workspace, cat: Catalog, view: CleanView, pairs: list[Pair], *, quiet: bool,
                 page_size: int | None) -> dict[str, str]:
    """The review pages, the gallery and the pairs CSV; not made again when what they show has not changed."""
    stamp = _stamp(ws, view, pairs, page_size)
    same = _unchanged(ws, stamp)
    if same is not None:
        return same
    paths, pics = _make_pages(ws, cat, view, pairs, quiet=quiet, page_size=page_size)
    _remember(ws, stamp, paths, pics)
    return paths


STAMP = ".clean-pages.json"  # what the pages were made from, and the files they need
SOURCES = ("clean/report.py", "clean/gallery.py", "report/review.py", "data/review.html.j2",
           "data/review-macros.html.j2", "data/clean-summary.html.j2", "data/clean-duplicates.html.j2")


def _stamp(ws: Workspace, view: CleanView, pairs: list[Pair], page_size: int | None) -> str:
    """A digest of everything the pages depend on: the view, the pairs, the layout, the code that renders them."""
    import hashlib
    import os

    from datacurate.core.version import __version__

    digest = hashlib.sha256(repr((view, pairs, page_size, ws.root.name, os.path.relpath(ws.root, ws.reports),
                                  __version__)).encode("utf-8"))
    package = Path(__file__).parents[1]  # datacurate/
    for name in SOURCES:
        digest.update((package / name).read_bytes())
    return digest.hexdigest()


def _unchanged(ws: Workspace, stamp: str) -> dict[str, str] | None:
    """The paths of the last pages when they were made from the same stamp and every file they need is there."""
    import json

    try:
        last = json.loads((ws.reports / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(last, dict) or last.get("stamp") != stamp:
        return None
    if not all((ws.reports / name).is_file() for name in last.get("files", [])):
        return None
    return last.get("paths")


def _remember(ws: Workspace, stamp: str, paths: dict[str, str], pics: Pictures) -> None:
    import json

    pages = sorted(p.relative_to(ws.reports).as_posix() for p in (ws.reports / "clean-pages").glob("*.html"))
    files = ["clean.html", "clean-duplicates.html", "clean-pairs.csv", *pages, *sorted(set(pics.thumbs.values()))]
    atomic_write_text(ws.reports / STAMP, json.dumps({"stamp": stamp, "paths": paths, "files": files}), sync=False)


def _make_pages(ws: Workspace, cat: Catalog, view: CleanView, pairs: list[Pair], *, quiet: bool,
                page_size: int | None) -> tuple[dict[str, str], Pictures]:
    from datacurate.clean.gallery import write_duplicates_report, write_pairs_csv
    from datacurate.clean.items import item_of

    pics = Pictures(ws, quiet, cat)
    cards = [card(e) for e in view.entries]
    cards += [Card(p, klass, KEPT_FLAGGED, [p.path, f"flags: {flags}"], 3.0) for p, flags, klass in view.kept_flagged]
    pics.want(p for c in cards for p in [c.pic] if c.preview)
    pics.want(p for c in cards for p in c.compared)
    pics.want(p for a, b, _ in view.conflicts for p in (a, b))
    pics.want(view.kept_by_you)
    pics.make()
    summary = Markup(environment().get_template("clean-summary.html.j2").render(v=view, pics=pics))
    pages = write_review(ws, pics, "clean", f"datacurate clean: {ws.root.name}", cards, summary=summary,
                         plan=view.plan, **({"page_size": page_size} if page_size else {}))
    pairs_csv = write_pairs_csv(pairs, ws.reports / "clean-pairs.csv")
    items = {r["path"]: item_of(r, {}) for r in cat.files()}
    gallery = write_duplicates_report(ws, pairs, items, ws.reports / "clean-duplicates.html", pics=pics, plan=view.plan)
    return {"html": f"{ws.rel(ws.reports)}/{pages['html']}", "pairs_csv": ws.rel(pairs_csv),
            "duplicates_html": ws.rel(gallery)}, pics


def card(e: Entry) -> Card:
    """The review card of one file clean set aside (its pages' and the review app's)."""
    lines = [e.path if e.now == e.path else f"{e.path} (now at {e.now})", e.detail]
    compared = []
    if e.of:
        compared.append(Pic(e.of, e.of_sha, ("test image " if e.reason == "test-leak" else "kept: ") + e.of))
    return Card(Pic(e.now, e.sha256, e.source), e.klass, e.reason, [x for x in lines if x], _need(e), compared,
                preview=e.reason not in NO_PREVIEW)


def _need(e: Entry) -> float:
    """Review order, lower first: the farthest pairs (closest to the threshold), then quality flags,
    size limits, and last what is certain (exact copies, files that do not decode)."""
    if e.reason in PAIRED:
        return 1.0 - min(e.distance or 0, MAX_BITS) / MAX_BITS if e.reason != "duplicate" else 1.0
    if e.reason in NO_PREVIEW or e.reason == "truncated":
        return 2.0
    return 1.5 if e.reason in ("too-small", "odd-aspect") else 0.8


# -- the plan of a dry run ------------------------------------------------------------------------
def plan_view(ws: Workspace, cat: Catalog, result, rows) -> CleanView:
    """What a dry run would do, as CleanView."""
    info = {r["path"]: r for r in rows}
    shas = _shas(cat)
    entries = []
    for d in result.decisions:
        r = info.get(d.path)
        entries.append(Entry(d.path, d.path, r["class"] if r else "", r["source"] if r else "", d.reason, d.detail,
                             r["sha256"] if r else shas.get(d.path), d.of, shas.get(d.of or ""),
                             d.distance if d.of else None))
    decided = {d.path for d in result.decisions}
    view = CleanView(True, _run_summary(result), entries,
                     fixes=[{"file": f.path, "now": f.dst, "action": f.action, "why": f.detail} for f in result.fixes],
                     flag_counts=result.flag_counts)
    view.kept_flagged = [(Pic(p, shas.get(p), "kept"), ", ".join(f), info[p]["class"] if p in info else "")
                         for p, f in sorted(result.flags.items()) if f and p not in decided]
    view.conflicts = [(Pic(p.a, shas.get(p.a), p.a), Pic(p.b, shas.get(p.b), p.b), p.distance)
                      for p in result.conflicts_reported]
    view.kept_by_you = [Pic(d.path, shas.get(d.path), f"{d.path}: {d.reason}") for d in result.overridden]
    return view


def _run_summary(result) -> list[dict]:
    rows = [{"what": "scanned", "files": result.scanned}, {"what": "kept", "files": result.kept},
            {"what": "fixed (renamed or converted)", "files": len(result.fixes)}]
    verb = "would set aside" if result.dry_run else "set aside"
    rows += [{"what": f"{verb}: {reason}", "files": n} for reason, n in result.counts.items()]
    if result.overridden:
        rows.append({"what": "kept by you (datacurate keep)", "files": len(result.overridden)})
    return rows


def _shas(cat: Catalog) -> dict[str, str]:
    return {r[0]: r[1] for r in cat.db.execute("SELECT path, sha256 FROM files WHERE sha256 IS NOT NULL")}


# -- the catalog ----------------------------------------------------------------------------------
def catalog_view(ws: Workspace, cat: Catalog, result) -> CleanView:
    """Everything clean holds in quarantine now, its fixes, flags and conflicts, from the catalog."""
    files = {r["path"]: r for r in cat.files()}
    now_of = _locator(files)
    pairs = catalog_pairs(cat)
    best: dict[str, Pair] = {}
    for p in pairs:
        if p.kind in PAIRED and (p.b not in best or p.distance < best[p.b].distance):
            best[p.b] = p
    for p in pairs:  # two originals of one picture under two classes: both set aside, each shown beside the other
        a = now_of(p.a)
        if p.kind == "label-conflict" and a and files[a]["reason"] == "label-conflict" and a not in best:
            best[a] = Pair(p.b, a, p.kind, p.distance, p.hash)
    entries = []
    for r in files.values():
        if r["status"] != "quarantined" or not r["reason"] or r["reason"] in NOT_CLEANS:
            continue
        p = best.get(r["path"])
        of = now_of(p.a) if p else None
        entries.append(Entry(r["origin"] or r["home"], r["path"], r["class"], r["source"], r["reason"], r["detail"] or "",
                             r["sha256"], of, files[of]["sha256"] if of in files else None, p.distance if p else None))
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.reason] = counts.get(e.reason, 0) + 1
    summary = _run_summary(result) if result is not None else []
    summary += [{"what": f"in quarantine now: {reason}", "files": n} for reason, n in sorted(counts.items())]
    view = CleanView(False, summary, entries, fixes=_fixes(files))
    flagged = [r for r in files.values() if r["flags"] and r["source"] != "test"]
    for r in flagged:
        for f in r["flags"].split(","):
            view.flag_counts[f] = view.flag_counts.get(f, 0) + 1
    view.flag_counts = dict(sorted(view.flag_counts.items()))
    view.kept_flagged = [(Pic(r["path"], r["sha256"], "kept"), r["flags"].replace(",", ", "), r["class"])
                         for r in flagged if r["status"] == "ok"]
    for p in pairs:
        if p.kind == "conflict-reported":
            a, b = now_of(p.a) or p.a, now_of(p.b) or p.b
            view.conflicts.append((Pic(a, _sha(files, a), a), Pic(b, _sha(files, b), b), p.distance))
    if result is not None:
        view.kept_by_you = [Pic(result.moved.get(d.path, d.path), _sha(files, d.path), f"{d.path}: {d.reason}")
                            for d in result.overridden]
    return view


def _sha(files: dict, path: str) -> str | None:
    row = files.get(path)
    return row["sha256"] if row else None


def _locator(files: dict):
    """path named in a pair -> where that file is now (by path, else by home), or None."""
    by_home = {}
    for r in files.values():
        by_home.setdefault(r["home"], r["path"])
        if r["origin"]:
            by_home.setdefault(r["origin"], r["path"])

    def now_of(path: str) -> str | None:
        return path if path in files else by_home.get(path)

    return now_of


def catalog_pairs(cat: Catalog) -> list[Pair]:
    """The pairs clean found that still name a file the catalog holds."""
    rows = cat.db.execute("SELECT a, b, kind, distance, hash FROM pairs WHERE b IN (SELECT path FROM files) "
                          "ORDER BY kind, a, distance, b").fetchall()
    return [Pair(*r) for r in rows]


def _fixes(files: dict) -> list[dict]:
    out = []
    for r in files.values():
        if r["status"] == "ok" and r["origin"] and r["origin"] != r["path"]:
            out.append({"file": r["origin"], "now": r["path"], "action": "rename", "why": r["detail"] or ""})
        elif r["status"] == "ok" and r["made_from"]:
            out.append({"file": r["path"], "now": r["path"], "action": "convert", "why": r["detail"] or "made by clean"})
    return out


# -- CSV ------------------------------------------------------------------------------------------
def _write_decisions(path: Path, result, rows, now: dict) -> Path:
    decided = {d.path: d for d in result.decisions}
    fixed = {f.path: f for f in result.fixes}
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(DECISION_COLUMNS)
    for row in rows:
        p = row["path"]
        flags = ",".join(result.flags.get(p, ()))
        if p in decided:
            d = decided[p]
            writer.writerow([p, now.get(p, p), row["class"], row["source"], "set-aside", d.reason, d.of or "", d.distance,
                             flags, d.detail])
        elif p in fixed:
            f = fixed[p]
            writer.writerow([p, now.get(p, p), row["class"], row["source"], "fixed", f.action, "", "", flags, f.detail])
        else:
            writer.writerow([p, p, row["class"], row["source"], "keep", "", "", "", flags, row["detail"] or ""])
    atomic_write_text(path, buf.getvalue())
    return path


def _decisions_from_catalog(ws: Workspace, cat: Catalog, path: Path) -> Path:
    """clean-decisions.csv from the catalog: every original and scraped file, in place or set aside by clean."""
    files = {r["path"]: r for r in cat.files("source IN ('original','scraped')")}
    best: dict[str, Pair] = {}
    for p in catalog_pairs(cat):
        if p.kind in PAIRED and (p.b not in best or p.distance < best[p.b].distance):
            best[p.b] = p
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(DECISION_COLUMNS)
    for r in sorted(files.values(), key=lambda r: r["origin"] or r["home"]):
        home = r["origin"] or r["home"]
        if r["status"] == "quarantined" and r["reason"] not in NOT_CLEANS:
            p = best.get(r["path"])
            writer.writerow([home, r["path"], r["class"], r["source"], "set-aside", r["reason"], p.a if p else "",
                             p.distance if p else 0, r["flags"] or "", r["detail"] or ""])
        elif r["status"] == "ok" and home != r["path"]:
            writer.writerow([home, r["path"], r["class"], r["source"], "fixed", "rename", "", "", r["flags"] or "",
                             r["detail"] or ""])
        elif r["status"] == "ok":
            writer.writerow([home, r["path"], r["class"], r["source"], "keep", "", "", "", r["flags"] or "",
                             r["detail"] or ""])
    atomic_write_text(path, buf.getvalue())
    return path
