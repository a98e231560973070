"""`datacurate clean` as a library call: scan, decide, move, report."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from PIL import Image

from datacurate.catalog import Catalog, open_catalog
from datacurate.clean.exact import find_exact_duplicates
from datacurate.clean.model import Decision, Item, Pair
from datacurate.clean.scan import _decode_all, index_files, quarantine_path, walk_files
from datacurate.errors import UserError
from datacurate.fsutil import atomic_path, deferred_signals, free_path
from datacurate.imageio import HASH_KINDS, Limits, inspect_file
from datacurate.workspace import Workspace

DEFAULTS = {
    "workers": None,           # all cores
    "min_size": 32,
    "max_pixels": Limits().max_pixels,
    "max_aspect": 10.0,
    "hash": "phash",
    "threshold": None,         # None: neardup.DEFAULT_THRESHOLD
    "against": None,           # None: the workspace's data/test when it exists
}


@dataclass
class Fix:
    """A usable file whose name is wrong for its content: renamed, or converted to PNG."""

    path: str
    action: str                # rename | convert
    dst: str
    detail: str


@dataclass
class CleanResult:
    """What a clean did (or, with dry_run, would do)."""

    dry_run: bool
    scanned: int
    hash_kind: str = "phash"
    decisions: list[Decision] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    reports: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.decisions:
            out[d.reason] = out.get(d.reason, 0) + 1
        return dict(sorted(out.items()))

    @property
    def kept(self) -> int:
        return self.scanned - len(self.decisions)

    @property
    def conflicts_reported(self) -> list[Pair]:
        return [p for p in self.pairs if p.kind == "conflict-reported"]

    def summary(self) -> dict:
        return {
            "dry_run": self.dry_run, "scanned": self.scanned, "kept": self.kept, "fixed": len(self.fixes),
            "set_aside": self.counts, "conflicts_reported": len(self.conflicts_reported),
            "outside_class_folders": len(self.outside), "reports": self.reports, "seconds": round(self.seconds, 3),
        }


def clean(ws: Workspace, paths: Sequence[str | os.PathLike] = (), *, dry_run: bool = False, quiet: bool = True,
          **flags) -> CleanResult:
    """Check every file under `paths` (default: data/original and data/scraped) and set aside what is unusable."""
    opts = ws.resolve("clean", flags, DEFAULTS)
    limits, kind, threshold = _validate(opts)
    roots = _roots(ws, paths)
    start = time.perf_counter()
    with open_catalog(ws) as cat:
        rows = index_files(ws, cat, roots=roots, decode=True, limits=limits, hash_kinds=(kind,),
                           workers=opts["workers"], quiet=quiet)
        rows = [r for r in rows if r["status"] == "ok"]
        result = CleanResult(dry_run=dry_run, scanned=len(rows), hash_kind=kind)
        result.outside = [r["path"] for r in rows if not r["class"]]
        rows = [r for r in rows if r["class"]]
        hashes = cat.hashes(kind)
        _decide(ws, cat, rows, hashes, kind, threshold, opts["against"], limits, quiet, result)
        if not dry_run:
            apply(ws, cat, result)
            from datacurate.clean.report import write_reports

            result.reports = write_reports(ws, cat, result, rows)
    result.seconds = time.perf_counter() - start
    return result


def _validate(opts: dict) -> tuple[Limits, str, int]:
    from datacurate.clean.neardup import DEFAULT_THRESHOLD, check_threshold

    if opts["hash"] not in HASH_KINDS:
        raise UserError(f"--hash {opts['hash']!r} is not one of {', '.join(HASH_KINDS)}")
    for key in ("min_size", "max_pixels"):
        if not isinstance(opts[key], int) or opts[key] < 1:
            raise UserError(f"--{key.replace('_', '-')} {opts[key]!r} must be a positive whole number")
    if not isinstance(opts["max_aspect"], (int, float)) or opts["max_aspect"] < 1:
        raise UserError(f"--max-aspect {opts['max_aspect']!r} must be a number of at least 1")
    threshold = check_threshold(DEFAULT_THRESHOLD if opts["threshold"] is None else opts["threshold"])
    if opts["workers"] is not None and (not isinstance(opts["workers"], int) or opts["workers"] < 1):
        raise UserError(f"--workers {opts['workers']!r} must be a positive whole number")
    return Limits(opts["max_pixels"], opts["min_size"], float(opts["max_aspect"])), opts["hash"], threshold


def _roots(ws: Workspace, paths: Sequence[str | os.PathLike]) -> list[Path]:
    if not paths:
        return [p for p in (ws.original, ws.scraped) if p.is_dir()] or _no_data(ws)
    roots = []
    for raw in paths:
        p = Path(raw) if Path(raw).is_absolute() else Path(os.getcwd()) / raw
        p = Path(os.path.abspath(p))
        if not p.exists():
            raise UserError(f"{raw}: no such file or folder")
        found = ws.source_of(p)
        if found is None or found[0] == "test":
            raise UserError(f"{raw} is not inside {ws.rel(ws.original)} or {ws.rel(ws.scraped)} (the test folder is never modified)")
        roots.append(p)
    return roots


def _no_data(ws: Workspace) -> list[Path]:
    raise UserError(f"no {ws.rel(ws.original)} or {ws.rel(ws.scraped)} folder in {ws.root}; put class folders there or run `datacurate init`")


def _item(row, hashes: dict[str, str]) -> Item:
    return Item(row["path"], row["class"], row["source"], row["width"] or 0, row["height"] or 0, row["size"],
                row["sha256"], hashes.get(row["sha256"]))


def _decide(ws, cat, rows, hashes, kind, threshold, against, limits, quiet, result: CleanResult) -> None:
    from datacurate.clean.neardup import find_near_duplicates

    usable = []
    for row in rows:
        if row["problem"]:
            result.decisions.append(Decision(row["path"], row["problem"], detail=row["detail"] or ""))
        else:
            usable.append(row)
    items = [_item(r, hashes) for r in usable]
    exact, pairs = find_exact_duplicates(items)
    gone = {d.path for d in exact}
    test_items = _test_items(ws, cat, against, kind, limits, quiet)
    near, near_pairs = find_near_duplicates([i for i in items if i.path not in gone], test_items, threshold, kind)
    result.decisions += exact + near
    result.pairs = _unique_pairs(pairs + near_pairs)
    moving = {d.path for d in result.decisions}
    result.fixes = [fix for row in usable if row["path"] not in moving and (fix := _fix_for(row))]


def _fix_for(row) -> Fix | None:
    """A rename to the true extension, or a conversion to PNG for formats ImageFolder skips."""
    from datacurate.imageio import CONVERTIBLE, TRAINABLE_EXTENSIONS

    name = Path(row["path"])
    if row["format"] in CONVERTIBLE:
        return Fix(row["path"], "convert", name.with_suffix(".png").as_posix(),
                   f"{row['format']} converted to PNG (first frame); ImageFolder skips {name.suffix or 'files without an extension'}")
    extensions = TRAINABLE_EXTENSIONS.get(row["format"], ())
    if name.suffix.lower() in extensions:
        return None
    return Fix(row["path"], "rename", name.with_suffix(extensions[0]).as_posix(),
               f"{row['format']} content under a {name.suffix or 'missing'} extension")


def _unique_pairs(pairs: list[Pair]) -> list[Pair]:
    """One pair per two files (an exact copy is found again by the perceptual search at distance 0)."""
    seen: set[frozenset] = set()
    out = []
    for p in pairs:
        key = frozenset((p.a, p.b))
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _test_items(ws: Workspace, cat: Catalog, against, kind: str, limits: Limits, quiet: bool) -> list[Item]:
    """The leak reference set: the workspace's test folder (cached in the catalog) or --against DIR."""
    if against is None:
        if not ws.test.is_dir():
            return []
        folder = ws.test
    else:
        folder = Path(against).expanduser()
        folder = folder if folder.is_absolute() else Path(os.getcwd()) / folder
        if not folder.is_dir():
            raise UserError(f"--against {against}: no such folder")
    folder = Path(os.path.abspath(folder))
    if folder == ws.test or (ws.source_of(folder) or ("",))[0] == "test":
        rows = index_files(ws, cat, roots=[folder], decode=True, limits=limits, hash_kinds=(kind,), quiet=quiet)
        hashes = cat.hashes(kind)
        return [_item(r, hashes) for r in rows if not r["problem"]]
    files = [e.path for e in walk_files(folder)]
    found = _decode_all(files, limits, (kind,), None, quiet)
    return [Item(p, Path(p).parent.name, "test", i.width or 0, i.height or 0, i.size, i.sha256 or "", i.hashes.get(kind))
            for p, i in zip(files, found) if i.ok]


def apply(ws: Workspace, cat: Catalog, result: CleanResult) -> None:
    """Carry out the plan: fixes in place, then moves into quarantine; each step logged."""
    moved: dict[str, str] = {}
    for fix in result.fixes:
        moved[fix.path] = _apply_fix(ws, cat, fix)
    for decision in result.decisions:
        moved[decision.path] = _quarantine(ws, cat, decision)
    for pair in result.pairs:
        pair.a, pair.b = moved.get(pair.a, pair.a), moved.get(pair.b, pair.b)
    _store_pairs(cat, result.pairs)


def _quarantine(ws: Workspace, cat: Catalog, d: Decision) -> str:
    row = cat.file(d.path)
    dst = free_path(quarantine_path(ws, row["home"], d.reason))
    dst.parent.mkdir(parents=True, exist_ok=True)
    new = ws.rel(dst)
    with deferred_signals():
        os.replace(ws.abs(d.path), dst)
        with cat.transaction():
            cat.db.execute("DELETE FROM files WHERE path=?", (new,))
            cat.update_file(d.path, path=new, status="quarantined", reason=d.reason, detail=d.detail or row["detail"])
            cat.log("quarantine", d.path, new, d.reason, {"of": d.of, "distance": d.distance} if d.of else d.detail)
    return new


def _apply_fix(ws: Workspace, cat: Catalog, fix: Fix) -> str:
    src = ws.abs(fix.path)
    dst = free_path(ws.abs(fix.dst))
    new = ws.rel(dst)
    if fix.action == "rename":
        with deferred_signals():
            os.replace(src, dst)
            with cat.transaction():
                cat.update_file(fix.path, path=new, home=new, detail=fix.detail)
                cat.log("rename", fix.path, new, "fixed", fix.detail)
        return new
    with Image.open(src) as im, atomic_path(dst) as tmp:
        _first_frame(im).save(tmp, "PNG")
    _index_new(ws, cat, dst)
    row = cat.file(fix.path)
    qdst = free_path(quarantine_path(ws, row["home"], "converted"))
    qdst.parent.mkdir(parents=True, exist_ok=True)
    with deferred_signals():
        os.replace(src, qdst)
        with cat.transaction():
            cat.update_file(fix.path, path=ws.rel(qdst), status="quarantined", reason="converted", detail=fix.detail)
            cat.log("convert", fix.path, new, "fixed", {"original_now_at": ws.rel(qdst)})
    return new


def _index_new(ws: Workspace, cat: Catalog, path: Path) -> None:
    """Catalog a file clean itself wrote, so the next run need not decode it."""
    kinds = [r[0] for r in cat.db.execute("SELECT DISTINCT kind FROM hashes")] or ["phash"]
    ins = inspect_file(path, hash_kinds=kinds)
    st = path.stat()
    rel = ws.rel(path)
    source, klass = ws.source_of(path)
    with cat.transaction():
        cat.upsert_file({"path": rel, "home": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": ins.sha256,
                         "format": ins.format, "width": ins.width, "height": ins.height, "mode": ins.mode,
                         "frames": ins.frames, "class": klass, "source": source, "status": "ok", "problem": ins.reason,
                         "detail": ins.detail or None, "checked": time.time()})
        cat.put_hashes(ins.sha256, ins.hashes)


def _first_frame(im: Image.Image) -> Image.Image:
    """Frame 0 of an animation, keeping transparency (RGBA) where it has any."""
    im.seek(0)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    return im.convert("RGBA" if has_alpha else "RGB")


def _store_pairs(cat: Catalog, pairs: list[Pair]) -> None:
    present = {r[0] for r in cat.db.execute("SELECT path FROM files")}
    with cat.transaction():
        cat.db.execute("DELETE FROM pairs WHERE b NOT IN (SELECT path FROM files)")
        cat.db.executemany(
            "INSERT OR REPLACE INTO pairs VALUES (?,?,?,?,?)",
            [(p.a, p.b, p.kind, p.distance, p.hash) for p in pairs if p.b in present],
        )
