"""`datacurate clean` as a library call: scan, decide, move, report."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

from PIL import Image

from datacurate.core.catalog import Catalog, open_catalog
from datacurate.core.terminal import phase
from datacurate.clean.exact import find_exact_duplicates
from datacurate.clean.items import item_of
from datacurate.clean.model import Decision, Item, Pair, keeper_key, settle
from datacurate.clean.options import CleanOptions, limits_of
from datacurate.clean.quality import QualityOptions, quality_decisions
from datacurate.clean.reasons import NO_OVERRIDE
from datacurate.core.index import decode_files, index_files, quarantine_dir, sweep_partials, walk_files
from datacurate.core.errors import UserError
from datacurate.core.fsutil import atomic_path
from datacurate.core.oserrors import disk_full, is_disk_full
from datacurate.core.imageio import Limits, captured_noise, first_frame, inspect_file
from datacurate.core.quarantine import destination, fit_name, moved_together, origin_of, quarantine
from datacurate.core.workspace import Workspace
from datacurate.executors.base import Executor, executor_for

CLEANED = "cleaned"  # catalog meta key: when a clean (not a dry run) last finished setting aside

# Quality flags that do not make one copy worse than its twin: the keeper rule weighs colour and size itself.
NOT_ABOUT_THE_COPY = frozenset({"grayscale", "odd-size"})

DEFAULTS = CleanOptions.defaults()  # the model (clean/options.py) is the one definition


@dataclass
class Fix:
    """A usable file whose name is wrong for its content: renamed, or converted to PNG."""

    path: str
    action: str                # rename | convert
    dst: str
    detail: str
    data: bytes | None = field(default=None, repr=False)  # convert: the PNG's bytes, made while planning
    adopt: bool = False        # convert: the PNG is already at dst (a killed run wrote it): record it only


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
    flags: dict[str, list[str]] = field(default_factory=dict)   # path -> quality flags
    moved: dict[str, str] = field(default_factory=dict)         # path before -> path after this run
    swept: list[str] = field(default_factory=list)              # stale .tmp-*.part files removed
    overridden: list[Decision] = field(default_factory=list)    # not set aside: a person said keep (datacurate keep)

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.decisions:
            out[d.reason] = out.get(d.reason, 0) + 1
        return dict(sorted(out.items()))

    @property
    def flag_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for flags in self.flags.values():
            for f in flags:
                out[f] = out.get(f, 0) + 1
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
            "set_aside": self.counts, "conflicts_reported": len(self.conflicts_reported), "flags": self.flag_counts,
            "outside_class_folders": len(self.outside), "kept_by_you": len(self.overridden), "reports": self.reports,
            "seconds": round(self.seconds, 3),
        }


def clean(ws: Workspace, paths: Sequence[str | os.PathLike] = (), *, dry_run: bool = False, quiet: bool = True,
          ray: str | bool | None = None, **flags) -> CleanResult:
    """Check every file under `paths` (default: data/original and data/scraped) and set aside what is unusable.

    `ray`: decode on a Ray cluster (an address, "auto"; False: locally; None: datacurate.yaml's `ray.address`).
    """
    opts = ws.options(CleanOptions, flags).as_dict()
    limits, kind, threshold = limits_of(opts), opts["hash"], opts["threshold"]
    quality = QualityOptions.from_options(opts)
    roots = _roots(ws, paths)
    start = time.perf_counter()
    with disk_full_is_a_user_error(ws), open_catalog(ws) as cat, \
            executor_for(ws, ray, opts["workers"], [ws.state_dir, *roots, _against(ws, opts["against"])],
                         quiet=quiet) as executor:
        swept = [] if dry_run else sweep_partials([*roots, ws.reports])  # a kill -9 mid-write leaves .tmp-*.part
        if not dry_run:
            from datacurate.scrape.store import recover

            recover(ws, cat)  # files a killed scrape saved but never catalogued: recorded with their provenance
        rows = index_files(ws, cat, roots=roots, decode=True, limits=limits, hash_kinds=(kind,),
                           executor=executor, quiet=quiet)
        rows = [r for r in rows if r["status"] == "ok"]
        result = CleanResult(dry_run=dry_run, scanned=len(rows), hash_kind=kind, swept=[ws.rel(p) for p in swept])
        result.outside = [r["path"] for r in rows if not r["class"]]
        rows = [r for r in rows if r["class"]]
        with phase(f"clean: searching {len(rows)} images for duplicates, near-duplicates and leaks", quiet=quiet):
            _decide(ws, cat, rows, kind, threshold, opts["against"], limits, quality, quiet, result, executor)
            _store_flags(cat, rows, result.flags)
        if not dry_run:
            with phase(f"clean: setting aside {len(result.decisions)} files", quiet=quiet):
                apply(ws, cat, result, [r["path"] for r in rows])
            with cat.transaction():  # `report clean` writes a cleaned workspace's reports, not an indexed one's
                cat.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (CLEANED, str(time.time())))
        from datacurate.clean.report import write_reports

        with phase("clean: writing reports", quiet=quiet), captured_noise():
            result.reports = write_reports(ws, cat, result, rows, quiet=quiet)  # a dry run's are marked as a plan
    result.seconds = time.perf_counter() - start
    return result


def _against(ws: Workspace, against) -> Path:
    """The leak reference folder: --against DIR (relative to the current folder), else data/test."""
    if against is None:
        return ws.test
    folder = Path(against).expanduser()
    return folder if folder.is_absolute() else Path(os.getcwd()) / folder


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


def _decide(ws, cat, rows, kind, threshold, against, limits, quality: QualityOptions, quiet, result: CleanResult,
            executor: Executor | None = None) -> None:
    """Broken files, quality flags, test leaks, exact then near duplicates, in that order; then fixes.

    Each step sees only what the steps before it kept, so no decision names a file that an
    earlier step set aside. Low-information pictures (solid, near-solid: their perceptual hashes
    all agree) take no part in the leak and near-duplicate searches.
    """
    from datacurate.clean.neardup import cluster, find_leaks
    from datacurate.core.overrides import load as load_overrides

    said = load_overrides(cat)
    shas = {r["path"]: r["sha256"] for r in rows}

    def apart(a: Item, b: Item) -> bool:
        return said.apart(a.sha256, b.sha256)

    def unless_kept(decisions: list[Decision]) -> list[Decision]:
        """Decisions a person overruled (`datacurate keep`) go to result.overridden, not to quarantine.

        Never a test leak, nor a byte-identical copy in its own class (one picture: one copy per class stays).
        """
        kept = [d for d in decisions if d.reason not in NO_OVERRIDE and said.keeps(shas.get(d.path), d.reason)]
        result.overridden += kept
        return [d for d in decisions if d not in kept] if kept else decisions

    usable = []
    for row in rows:
        if row["problem"]:
            result.decisions += unless_kept([Decision(row["path"], row["problem"], detail=row["detail"] or "")])
        else:
            usable.append(row)
    orphans = _orphan_conversions(ws, usable, limits)
    usable = [r for r in usable if r["path"] not in orphans.values()]
    hashes, metrics = cat.hashes(kind), cat.quality()
    gray_below = quality.thresholds["grayscale_below"]
    items = [item_of(r, hashes, metrics, gray_below) for r in usable]
    result.flags, flagged = quality_decisions(items, metrics, quality)
    for it in items:  # a flagged copy is never kept over a clean twin (model.by_picture_quality)
        it.flagged = any(f not in NOT_ABOUT_THE_COPY for f in result.flags.get(it.path, ()))
    flagged = unless_kept(flagged)
    result.decisions += flagged
    gone = {d.path for d in flagged}
    flat = {p for p, f in result.flags.items() if "low-information" in f or "placeholder" in f}
    searchable = [i for i in items if i.path not in gone and i.path not in flat and i.hash]
    tests = [t for t in _test_items(ws, cat, against, kind, limits, quality, quiet, executor) if t.hash]
    leaks, leak_pairs = find_leaks(searchable, tests, threshold, kind)  # no override exempts a test leak
    gone |= {d.path for d in leaks}
    exact, pairs = find_exact_duplicates([i for i in items if i.path not in gone], apart)
    exact = unless_kept(exact)
    gone |= {d.path for d in exact}
    near, near_pairs = cluster([i for i in searchable if i.path not in gone], threshold, kind, apart)
    near = unless_kept(near)
    result.decisions += leaks + exact + near
    overruled = {d.path for d in result.overridden}
    result.pairs = [p for p in _unique_pairs(leak_pairs + pairs + near_pairs)
                    if p.b not in overruled or p.kind == "conflict-reported"]
    moving = {d.path for d in result.decisions}
    result.fixes = [fix for row in usable if row["path"] not in moving and (fix := _fix_for(row, limits, orphans))]
    same, same_pairs = _converted_copies(ws, result.fixes, [i for i in items if i.path not in moving], apart)
    same = unless_kept(same)
    result.decisions += same
    result.pairs += [p for p in same_pairs if p.b in {d.path for d in same}]
    settled = {d.path for d in same}
    result.fixes = [f for f in result.fixes if f.path not in settled]


def _converted_copies(ws: Workspace, fixes: list[Fix], items: list[Item], apart) -> tuple[list[Decision], list[Pair]]:
    """Files to convert whose PNG would be byte for byte a file kept here or another conversion's PNG
    (animated GIFs sharing their first frame): set aside now, as copies, so one run settles them.

    The PNG is made here, in memory (the conversion writes these bytes); files already in place come
    before conversions, and between conversions the keeper rule decides.
    """
    converts = {f.path: f for f in fixes if f.action == "convert"}
    if not converts:
        return [], []
    planned = {}
    for it in items:
        fix = converts.get(it.path)
        if fix is None:
            continue
        fix.data = converted_png(ws.abs(it.path))
        planned[it.path] = replace(it, sha256=hashlib.sha256(fix.data).hexdigest(), size=len(fix.data), mode="RGB")
    groups: dict[str, list[Item]] = {}
    for it in [planned.get(i.path, i) for i in items]:
        groups.setdefault(it.sha256, []).append(it)
    decisions, pairs = [], []
    for members in groups.values():
        if len(members) < 2 or not any(m.path in planned for m in members):
            continue
        members.sort(key=lambda m: (m.path in planned, keeper_key(m)))
        found, found_pairs = settle(members, lambda a, b: 0, 0, "sha256", apart)
        pairs += found_pairs
        for d in found:
            d.detail = d.detail.replace("same bytes as", "its first frame as PNG is the same bytes as" if d.path in planned
                                        else "same bytes as the PNG converted from")
        decisions += [d for d in found if d.path in planned]
    return decisions, pairs


def _orphan_conversions(ws: Workspace, rows, limits: Limits) -> dict[str, str]:
    """source path -> PNG path, for PNGs a killed clean wrote beside their source without cataloguing them.

    Such a PNG lies at the name the conversion gives, carries no `made_from`, and is byte for byte what
    converting its source makes: it is recorded as that conversion (not judged a copy of its own source).
    """
    by_path = {r["path"]: r for r in rows}
    found = {}
    for row in rows:
        if not limits.converts(row["format"]):
            continue
        png = by_path.get(ws.rel(fit_name(ws.abs(row["path"]).with_suffix(".png"))))
        if png is None or png["made_from"] or png["format"] != "PNG":
            continue
        if hashlib.sha256(converted_png(ws.abs(row["path"]))).hexdigest() == png["sha256"]:
            found[row["path"]] = png["path"]
    return found


def _fix_for(row, limits: Limits, orphans: dict[str, str] | None = None) -> Fix | None:
    """A rename to the true extension, or a conversion to PNG for formats ImageFolder skips."""
    from datacurate.core.imageio import TRAINABLE_EXTENSIONS

    name = Path(row["path"])
    if row["path"] in (orphans or {}):
        return Fix(row["path"], "convert", orphans[row["path"]], f"{row['format']} converted to PNG (first frame) by a "
                   "clean that was killed before it recorded it; the PNG is recognised and recorded now", adopt=True)
    if limits.converts(row["format"]):
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


def _test_items(ws: Workspace, cat: Catalog, against, kind: str, limits: Limits, quality: QualityOptions,
                quiet: bool, executor: Executor | None = None) -> list[Item]:
    """The leak reference set (low-information pictures left out): the test folder (cached) or --against DIR."""
    folder = _against(ws, against)
    if not folder.is_dir():
        if against is None:
            return []
        raise UserError(f"--against {against}: no such folder")
    folder = Path(os.path.abspath(folder))
    low = quality.thresholds["low_information_below"]
    if folder == ws.test or (ws.source_of(folder) or ("",))[0] == "test":
        rows = index_files(ws, cat, roots=[folder], decode=True, limits=limits, hash_kinds=(kind,), quiet=quiet,
                           executor=executor)
        hashes, metrics = cat.hashes(kind), cat.quality()
        return [item_of(r, hashes) for r in rows
                if not r["problem"] and metrics.get(r["sha256"], {}).get("entropy", 1.0) >= low]
    files = [e.path for e in walk_files(folder)]
    found = decode_files(files, limits, (kind,), executor, quiet=quiet)
    return [Item(p, Path(p).parent.name, "test", i.width or 0, i.height or 0, i.size, i.sha256 or "", i.hashes.get(kind))
            for p, i in zip(files, found) if i.ok and i.quality.get("entropy", 1.0) >= low]


# -- carrying out the plan ----------------------------------------------------------------------
def apply(ws: Workspace, cat: Catalog, result: CleanResult, judged: Sequence[str] = ()) -> None:
    """Carry out the plan: fixes in place, then moves into quarantine; each step logged.

    `judged`: the files this run looked at; their pairs from earlier runs are replaced by this run's.
    """
    moved = result.moved
    for fix in result.fixes:
        moved[fix.path] = _apply_fix(ws, cat, fix)
    for decision in result.decisions:
        moved[decision.path] = quarantine(ws, cat, decision.path, decision.reason, decision.detail,
                                          of=decision.of, distance=decision.distance)
    for decision in result.decisions:
        if decision.of:
            decision.of = moved.get(decision.of, decision.of)
    for pair in result.pairs:
        pair.a, pair.b = moved.get(pair.a, pair.a), moved.get(pair.b, pair.b)
    _store_pairs(cat, result.pairs, judged)


def _apply_fix(ws: Workspace, cat: Catalog, fix: Fix) -> str:
    src = ws.abs(fix.path)
    dst = ws.abs(fix.dst) if fix.adopt else destination(ws.abs(fix.dst))
    new = ws.rel(dst)
    row = cat.file(fix.path)
    if fix.adopt:
        _convert_done(ws, cat, fix, row, dst)
        return new
    if fix.action == "rename":
        with moved_together(cat, src, dst):
            cat.update_file(fix.path, path=new, home=new, detail=fix.detail, origin=row["origin"] or fix.path)
            cat.log("rename", fix.path, new, "fixed", fix.detail)
        return new
    with atomic_path(dst) as tmp:
        tmp.write_bytes(fix.data if fix.data is not None else converted_png(src))
    try:
        _convert_done(ws, cat, fix, row, dst)
    except BaseException:
        dst.unlink(missing_ok=True)  # our own output, not yet in the catalog
        raise
    return new


def converted_png(path: Path) -> bytes:
    """The PNG a conversion writes: the first frame (transparency kept) of the file at `path`."""
    buf = io.BytesIO()
    with captured_noise(), Image.open(path) as im:
        first_frame(im).save(buf, "PNG")
    return buf.getvalue()


def _convert_done(ws: Workspace, cat: Catalog, fix: Fix, row, dst: Path) -> None:
    """Catalog the PNG clean wrote (so the next run need not decode it) and set the source aside."""
    kinds = [r[0] for r in cat.db.execute("SELECT DISTINCT kind FROM hashes")] or ["phash"]
    ins = inspect_file(dst, hash_kinds=kinds)
    st = dst.stat()
    rel = ws.rel(dst)
    source, _ = ws.source_of(dst)
    wanted = quarantine_dir(ws, cat, row["home"], "converted")
    qdst = destination(wanted)
    with moved_together(cat, ws.abs(fix.path), qdst):
        cat.upsert_file({"path": rel, "home": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": ins.sha256,
                         "format": ins.format, "width": ins.width, "height": ins.height, "mode": ins.mode,
                         "frames": ins.frames, "class": row["class"], "source": source, "status": "ok",
                         "problem": ins.reason, "detail": ins.detail or None, "checked": time.time(),
                         "made_from": row["sha256"]})
        cat.put_hashes(ins.sha256, ins.hashes)
        if ins.quality:
            cat.put_quality(ins.sha256, ins.quality)
        cat.update_file(fix.path, path=ws.rel(qdst), status="quarantined", reason="converted", detail=fix.detail,
                        origin=origin_of(row, wanted, qdst))
        cat.log("convert", fix.path, rel, "fixed", {"original_now_at": ws.rel(qdst)})


def _store_flags(cat: Catalog, rows, flags: dict[str, list[str]]) -> None:
    """files.flags: the quality flags of this run (NULL for none), written where they changed."""
    changed = [(",".join(flags.get(r["path"], ())) or None, r["path"]) for r in rows
               if (",".join(flags.get(r["path"], ())) or None) != r["flags"]]
    if changed:
        with cat.transaction():
            cat.db.executemany("UPDATE files SET flags=? WHERE path=?", changed)


def _store_pairs(cat: Catalog, pairs: list[Pair], judged: Sequence[str] = ()) -> None:
    """This run's pairs replace those of the files it judged (`judged`: their paths before any move)."""
    present = {r[0] for r in cat.db.execute("SELECT path FROM files")}
    with cat.transaction():
        cat.db.execute("DELETE FROM pairs WHERE b NOT IN (SELECT path FROM files)")
        cat.db.executemany("DELETE FROM pairs WHERE b=?", [(p,) for p in judged])
        cat.db.executemany(
            "INSERT OR REPLACE INTO pairs VALUES (?,?,?,?,?)",
            [(p.a, p.b, p.kind, p.distance, p.hash) for p in pairs if p.b in present],
        )


# -- a full disk --------------------------------------------------------------------------------


@contextmanager
def disk_full_is_a_user_error(ws: Workspace) -> Iterator[None]:
    """ENOSPC (or SQLite's 'disk is full') while moving, converting or writing reports: one clear line."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        if not is_disk_full(exc):
            raise
        where = (exc.filename or ws.root) if isinstance(exc, OSError) else ws.catalog_path
        raise disk_full(where, "free some space and run clean again: every file is in its place or in quarantine "
                               "and the catalog agrees") from None
