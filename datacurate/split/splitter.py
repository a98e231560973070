"""`datacurate split` as a library call: index, group, assign, build the folders, record, report."""

from __future__ import annotations

import csv
import io
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from datacurate.core.catalog import open_catalog
from datacurate.core.terminal import phase
from datacurate.core.index import index_files
from datacurate.executors.base import local_executor
from datacurate.core.errors import UserError
from datacurate.core.fsutil import PARTIAL, check_folder, check_target, file_mode, remove_file, replace_file, shown, text_path
from datacurate.core.lock import workspace_lock
from datacurate.core.oserrors import DISK_FULL, disk_full
from datacurate.split import balance as balance_mod
from datacurate.split.assign import Assignment, assign
from datacurate.split.clusters import groups, linked_pairs, moves
from datacurate.split.eligible import SPLIT_SOURCES, UNLOADABLE, Item, select
from datacurate.split.memory import CSV_NAME, Memory, save
from datacurate.split.options import SplitOptions
from datacurate.split.stats import STATS_NAME
from datacurate.split.tree import Placement, TreeResult, build
from datacurate.core.workspace import Workspace


@dataclass
class SplitResult:
    """What a split did (or, with dry_run, would do)."""

    options: SplitOptions
    dry_run: bool
    items: list[Item]
    assignment: Assignment
    skipped: dict[str, str]
    balance: balance_mod.Balance
    folder: Path
    tree: TreeResult | None = None
    reports: dict[str, Path] = field(default_factory=dict)
    stats_removed: bool = False
    converted: int = 0                  # files placed converted (--convert); with dry_run: would be
    converted_now: int = 0              # of those, converted in this run (the others came from the cache)
    manifest: Path | None = None
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(self.assignment.split.values())
        return {s: c.get(s, 0) for s in ("train", "valid", "test") if s in c or s != "test"}

    def summary(self) -> dict:
        tree = self.tree
        return {
            "dry_run": self.dry_run, "images": len(self.items), "counts": self.counts,
            "left_out": len(self.assignment.left_out) + len(self.skipped), "moved": len(self.assignment.moved),
            "link": self.options.link, "copied_instead_of_linked": tree.copied if tree and self.options.link == "hardlink" else 0,
            "seed": self.options.seed, "final": self.options.final, "folder": str(self.folder),
            "reports": {k: str(v) for k, v in self.reports.items()}, "seconds": round(self.seconds, 3),
            "convert": self.options.convert, "converted": self.converted, "converted_now": self.converted_now,
            "manifest": str(self.manifest) if self.manifest else None,
        }


def split_dataset(ws: Workspace, opts: SplitOptions, *, fresh: bool = False, dry_run: bool = False,
                  quiet: bool = True) -> SplitResult:
    """Split the workspace's eligible images into data/split/<split>/<class>/ (see docs/split.md)."""
    start = time.perf_counter()
    if not ws.original.is_dir() and not ws.scraped.is_dir():
        raise UserError(f"nothing to split: {ws.original} does not exist (put labeled images in <class>/ folders there)")
    with workspace_lock(ws, "split"), open_catalog(ws) as cat:
        rows, skipped, notes = _index(ws, cat, quiet)
        items, unusable = select(rows, opts.seed)
        skipped.update(unusable)
        if not items:
            raise UserError(f"no images to split under {ws.original} or {ws.scraped}")
        with phase(f"split: assigning {len(items)} images", quiet=quiet):
            moved = moves(cat.db)
            memory = Memory.load(cat)
            prior = {} if fresh else memory.prior(items, moved)
            res = assign(items, groups(items, linked_pairs(cat.db), moved), prior, opts)
        res.warnings[:0] = notes
        by_path = {it.path: it for it in items}
        bal = balance_mod.from_records(((by_path[p].klass, s, by_path[p].source) for p, s in res.split.items()),
                                       opts.min_per_class, opts.final)
        out = SplitResult(opts, dry_run, items, res, skipped, bal, ws.split_dir)
        if dry_run:
            placed = _placements(ws, items, res, opts.convert)
            out.converted = sum(p.made for p in placed.values())
        else:
            _write(ws, cat, out, rows, memory, fresh, quiet)
    out.seconds = time.perf_counter() - start
    return out


def _index(ws: Workspace, cat, quiet: bool) -> tuple[list, dict[str, str], list[str]]:
    """Catalog rows of every file under the sources, each decoded at least once (clean's checks).

    Files clean never decoded (or that changed since) are decoded here with clean's options from
    datacurate.yaml, so an empty, HTML or truncated file never reaches train. A folder that cannot
    be listed is an error (its images would drop out of the split unseen); a file whose name is
    not UTF-8 is left out. Returns (rows, {path: why left out}, warnings).
    """
    from datacurate.clean.options import CleanOptions, limits_of

    clean = ws.options(CleanOptions).as_dict()
    limits, kind = limits_of(clean), clean["hash"]
    before = {(r[0], r[1], r[2]) for r in cat.db.execute("SELECT path, size, mtime_ns FROM files WHERE checked IS NOT NULL")}
    problems: list[tuple[str, str]] = []
    rows = index_files(ws, cat, sources=SPLIT_SOURCES, decode=True, limits=limits, hash_kinds=(kind,),
                       executor=local_executor(), quiet=quiet, problems=problems)
    for path, why in problems:
        raise UserError(f"{shown(ws.rel(path))} {why}: its images would drop out of the split unseen; "
                        "fix it (chmod) or move it out of the data folders")
    skipped: dict[str, str] = {}
    odd = [r for r in rows if text_path(r["path"]) != r["path"]]  # names that are not UTF-8
    for r in odd:
        name = shown(text_path(r["path"]))
        if text_path(r["class"]) != r["class"]:
            raise UserError(f"class folder {shown(text_path(r['class']))} has a name that is not UTF-8 (e.g. {name}): "
                            "it cannot be a class name in the trainer's files; rename it (e.g. convmv)")
        skipped[name] = "has a name that is not UTF-8; rename it"
    rows = [r for r in rows if text_path(r["path"]) == r["path"]]
    fresh = [r for r in rows if (r["path"], r["size"], r["mtime_ns"]) not in before and r["class"]]
    notes = []
    if fresh:
        bad = [r for r in fresh if r["problem"] in UNLOADABLE]
        notes.append(f"{len(fresh)} file(s) were never checked by `datacurate clean` (or changed since), e.g. {fresh[0]['path']}: "
                     f"split decoded them{f' and left out {len(bad)} that cannot be loaded' if bad else ''}; "
                     "run `datacurate clean` to catch duplicates and test leaks among them")
    return rows, skipped, notes


def _write(ws: Workspace, cat, out: SplitResult, rows, memory: Memory, fresh: bool, quiet: bool = True) -> None:
    """Build the folders and record them: split.csv and the catalog land with the folders or not at all."""
    items, res, opts = out.items, out.assignment, out.options
    splits = ["train", "valid"] + (["test"] if opts.test > 0 else [])
    _check_outputs(ws, splits, opts.manifest)
    placed = _converted(ws, _placements(ws, items, res, opts.convert), items, opts, out, quiet)
    files, listing = {}, None
    if opts.manifest:
        from datacurate.scrape.report import provenance_of
        from datacurate.split import manifest

        listing = manifest.rows_for(list(placed.items()), {r["path"]: r for r in rows}, provenance_of(cat))
        files = manifest.per_split(listing, splits)
    tmp = None
    try:
        ws.split_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=ws.split_dir, prefix=".tmp-", suffix=PARTIAL)
        os.fchmod(fd, file_mode())  # the user's umask, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_csv(items, res, out.skipped, placed))
            fh.flush()
            os.fsync(fh.fileno())

        def record() -> None:
            save(cat, items, res, memory, forget=fresh)  # one transaction: if it fails, the folders go back
            replace_file(tmp, ws.split_dir / CSV_NAME)

        with phase(f"split: building {ws.split_dir.name}/ ({len(placed)} files, {opts.link})", quiet=quiet):
            out.tree = build(ws.split_dir, list(placed.values()), splits, opts.link, then=record, files=files)
    except OSError as exc:
        if exc.errno in DISK_FULL:  # a copy names its source: the file system that filled is split's
            raise disk_full(ws.split_dir) from None
        raise
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
    out.manifest = _write_manifest(ws, listing, opts.manifest)
    out.stats_removed = _drop_stale_stats(ws, rows, res)
    with phase("split: writing the balance report", quiet=quiet):
        out.reports = balance_mod.write(out.balance, ws.reports)
    cat.log("split", None, str(ws.split_dir), None, detail=out.summary())


def _check_outputs(ws: Workspace, splits: list[str], manifest: str | None) -> None:
    """Before anything is built: every file split replaces is a regular file (or missing), every folder a folder."""
    from datacurate.split.manifest import manifest_path

    for name in ("train", "valid", "test"):
        check_folder(ws.split_dir / name)
    for path in (ws.split_dir / CSV_NAME, ws.reports / balance_mod.CSV_NAME, ws.reports / balance_mod.HTML_NAME,
                 *([manifest_path(ws.split_dir, manifest)] if manifest else [])):
        check_target(path)


def _write_manifest(ws: Workspace, listing: list[dict] | None, fmt: str | None) -> Path | None:
    """data/split/manifest.<fmt> (a manifest of the other format, or one from a run without --manifest, goes)."""
    from datacurate.core.fsutil import atomic_write_bytes
    from datacurate.split.manifest import COLUMNS, manifest_path, render
    from datacurate.split.options import MANIFEST_FORMATS

    for other in MANIFEST_FORMATS:
        if other != fmt:
            remove_file(manifest_path(ws.split_dir, other))
    if listing is None or fmt is None:
        return None
    path = manifest_path(ws.split_dir, fmt)
    atomic_write_bytes(path, render(listing, COLUMNS, fmt))
    return path


def _converted(ws: Workspace, placed: dict[str, Placement], items: list[Item], opts: SplitOptions, out: SplitResult,
               quiet: bool) -> dict[str, Placement]:
    """Placements with each file to convert pointing at its conversion (made now when not cached)."""
    from dataclasses import replace

    from datacurate.split.convert import drop_cache, prepare

    if not opts.convert:
        drop_cache(ws.split_dir)
        return placed
    sha = {it.path: it.sha256 for it in items}
    todo = [(p.src, sha[path]) for path, p in placed.items() if p.made]
    done = prepare(ws.split_dir, todo, opts.convert, opts.jpeg_quality, quiet=quiet)
    out.converted, out.converted_now = len(todo), done.made
    return {path: replace(p, src=str(done.files[sha[path]])) if p.made else p for path, p in placed.items()}


def _placements(ws: Workspace, items: list[Item], res: Assignment, convert: str | None = None) -> dict[str, Placement]:
    """Where each placed file goes (by catalog path): <split>/<class>/<name>; a name clash gets the content hash.

    With `convert`, a file timm would skip gets the extension of its conversion (Placement.made)."""
    from datacurate.split.convert import converted_name, needs_conversion

    prefix = {s: ws.rel(ws.path(s)) + "/" for s in SPLIT_SOURCES}
    root = str(ws.root)
    taken: set[tuple[str, str]] = set()
    out = {}
    for it in items:  # sorted by path: originals come first and keep their names
        split = res.split.get(it.path)
        if split is None:
            continue
        rel = it.path[len(prefix[it.source]):]
        made = bool(convert) and needs_conversion(rel)
        if made:
            rel = converted_name(rel, convert)
        if (split, rel.casefold()) in taken:
            stem, dot, ext = rel.rpartition(".")
            rel = f"{stem}-{it.sha256[:10]}.{ext}" if dot else f"{rel}-{it.sha256[:10]}"
        taken.add((split, rel.casefold()))
        out[it.path] = Placement(os.path.join(root, it.path), split, rel, made)
    return out


def _csv(items: list[Item], res: Assignment, skipped: dict[str, str], placed: dict[str, Placement]) -> str:
    """split.csv: every file under the sources, the split and file it got (or why it has none)."""
    rows = []
    for it in items:
        p = placed.get(it.path)
        note = res.left_out.get(it.path, "")
        if p and res.memory.get(it.path) not in (None, p.split):
            note = f"final: held out as {res.memory[it.path]} otherwise"
        rows.append([it.path, it.klass, it.source, p.split if p else "", f"{p.split}/{p.rel}" if p else "", it.sha256, note])
    rows += [[path, "", "", "", "", "", why] for path, why in skipped.items()]
    rows.sort(key=lambda r: r[0])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "class", "source", "split", "file", "sha256", "note"])
    w.writerows(rows)
    return buf.getvalue()


def _drop_stale_stats(ws: Workspace, rows, res: Assignment) -> bool:
    """Remove stats.json when the train split changed, so the trainer never normalises with stale numbers."""
    path = ws.split_dir / STATS_NAME
    before = {r["path"] for r in rows if r["split"] == "train"}
    after = {p for p, s in res.split.items() if s == "train"}
    if before == after or not path.exists():
        return False
    path.unlink()
    return True
