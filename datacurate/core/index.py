"""Bring the catalog's files rows up to date with the disk, decoding only what changed.

The file system is the truth: every file under the scanned folders gets a row, rows of files
that are gone are dropped, and a file whose size and mtime match its row is not read again.
Quarantined files live at <quarantine>/<reason>/<source>/<class>/<name>; their row's `home`
is where they came from, derived from that path, so the catalog can always be rebuilt from disk.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Sequence

from datacurate.core.catalog import Catalog
from datacurate.core.terminal import phase, progress
from datacurate.core.fsutil import is_hidden, path_text, shown, sweep_partials  # noqa: F401 (sweep_partials: clean.run imports it here)
from datacurate.core.imageio import LIMIT_REASONS, Inspection, Limits, check_limits, format_problem, inspect_file
from datacurate.core.workspace import SOURCES, Workspace

ALL_FOLDERS = ("original", "scraped", "test", "quarantine")


def walk_files(root: Path, problems: list[tuple[str, str]] | None = None) -> Iterable[os.DirEntry]:
    """Every regular, non-hidden file under root (symlinks to files and to folders followed), depth first.

    A folder reached twice (a link back up, two links to one folder) is walked once. Folders that
    cannot be listed are passed over: appended to `problems` as (path, why), or else named in a
    warning on stderr.
    """
    stack = [root]
    walked: set[str] = set()
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in walked:
            continue
        walked.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError:
            _problem(problems, str(folder), "cannot be listed (permission denied)")
            continue
        for entry in entries:
            if is_hidden(entry.name):
                continue
            if entry.is_dir():  # a class folder may be a symbolic link to another disk
                stack.append(Path(entry.path))
            elif entry.is_file():
                yield entry


def _problem(problems: list | None, path: str, why: str) -> None:
    if problems is not None:
        problems.append((path, why))
    else:
        print(f"datacurate: warning: {shown(path)} {why}; left alone", file=sys.stderr)


def place(ws: Workspace, path: str, quarantines: Sequence[Path] | None = None) -> dict | None:
    """home, class, source, status and reason of a file, from where it lies.

    `quarantines`: the quarantine folders to recognise (default: those of the layout, ws.quarantines()).
    """
    rel = ws.rel(path)
    text = str(path)
    for folder in quarantines if quarantines is not None else ws.quarantines():
        base = str(folder) + os.sep
        if text.startswith(base):
            break
    else:
        found = ws.source_of(path)
        if found is None:
            return None
        source, klass = found
        return {"path": rel, "home": rel, "source": source, "class": path_text(klass), "status": "ok", "reason": None}
    parts = text[len(base):].split(os.sep)
    if len(parts) < 3 or parts[1] not in SOURCES:
        return None
    reason, source, rest = parts[0], parts[1], parts[2:]
    home = ws.rel(os.path.join(ws.path(source), *rest))
    klass = path_text(rest[0]) if len(rest) > 1 else ""
    return {"path": rel, "home": home, "source": source, "class": klass, "status": "quarantined", "reason": reason}


def quarantine_path(ws: Workspace, home: str, reason: str) -> Path:
    """Where a file whose home is `home` goes when set aside for `reason` (on its own file system)."""
    absolute = ws.abs(home)
    found = ws.source_of(absolute)
    assert found is not None, home
    source = found[0]
    return ws.quarantine_for(source) / reason / source / absolute.relative_to(ws.path(source))


def quarantine_dir(ws: Workspace, cat: Catalog, home: str, reason: str) -> Path:
    """quarantine_path, its folder made; a quarantine outside the workspace's is recorded in the catalog
    (table quarantines), so restore and later scans find it even after `paths:` changes."""
    wanted = quarantine_path(ws, home, reason)
    root = ws.quarantine_for(ws.source_of(ws.abs(home))[0])
    if root != ws.quarantine:
        with cat.transaction():
            cat.db.execute("INSERT OR IGNORE INTO quarantines VALUES (?, ?)", (ws.rel(root), time.time()))
    wanted.parent.mkdir(parents=True, exist_ok=True)
    return wanted


def quarantine_folders(ws: Workspace, cat: Catalog) -> list[Path]:
    """Every quarantine folder: the layout's and those the catalog recorded (that still exist)."""
    recorded = [ws.abs(r[0]) for r in cat.db.execute("SELECT root FROM quarantines ORDER BY root")]
    return list(dict.fromkeys(ws.quarantines() + [p for p in recorded if p.is_dir()]))


def index_files(
    ws: Workspace,
    cat: Catalog,
    sources: Sequence[str] = ALL_FOLDERS,
    *,
    roots: Sequence[Path] | None = None,
    decode: bool = False,
    limits: Limits | None = None,
    hash_kinds: Sequence[str] = ("phash",),
    executor=None,
    quiet: bool = True,
    problems: list[tuple[str, str]] | None = None,
) -> list[sqlite3.Row]:
    """Update the files rows for everything under `sources` (or `roots`) and return those rows.

    With decode=False only the sha256 is computed for new or changed files; with decode=True
    every new or changed file (and any file lacking one of `hash_kinds`) is fully decoded by
    imageio.inspect_file, through `executor` (see decode_files: local worker processes, a Ray cluster;
    None: in this process). Folders walk_files cannot list go to `problems` (or a warning).
    """
    limits = limits or Limits()
    quarantines = quarantine_folders(ws, cat)
    scan_roots = list(roots) if roots is not None else [
        folder for s in sources for folder in (quarantines if s == "quarantine" else [ws.path(s)])]
    known = {r["path"]: r for r in cat.db.execute("SELECT * FROM files")}
    hashes = {kind: cat.hashes(kind) for kind in hash_kinds} if decode else {}
    if decode:
        hashes["quality"] = cat.quality()
    seen: list[dict] = []
    stale: list[dict] = []
    with phase(f"listing {len(scan_roots)} folder(s)", quiet=quiet):
        _walk(ws, scan_roots, quarantines, problems, known, decode, hashes, limits, seen, stale)
    _compute(ws, stale, decode, limits, hash_kinds, executor, quiet)
    _store(cat, seen, scan_roots, ws, known)
    paths = [w["path"] for w in seen]
    return _rows(cat, paths)


def _walk(ws, scan_roots, quarantines, problems, known, decode, hashes, limits, seen: list, stale: list) -> None:
    """Every file under the roots, placed (into `seen`), and those whose row is out of date (into `stale`)."""
    for root in scan_roots:
        for entry in walk_files(root, problems):
            where = place(ws, entry.path, quarantines)
            if where is None:
                continue
            st = entry.stat()
            where.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
            row = known.get(where["path"])
            seen.append(where)
            if _needs_work(row, where, decode, hashes, limits):
                stale.append(where)
            else:
                _carry_over(where, row, limits if decode else None)


def _needs_work(row, where: dict, decode: bool, hashes: dict, limits: Limits) -> bool:
    if row is None or row["size"] != where["size"] or row["mtime_ns"] != where["mtime_ns"] or not row["sha256"]:
        return True
    if not decode:
        return False
    if row["checked"] is None:
        return True
    if row["problem"] in LIMIT_REASONS and (row["width"] is None or not check_limits(row["width"], row["height"], limits)):
        return True  # a limit was loosened (or the size is unknown): the file was never fully decoded
    if row["problem"] == "unsupported" and not format_problem(row["format"], limits):
        return True  # --convert-unsupported: decode it now
    return row["problem"] is None and any(row["sha256"] not in h for h in hashes.values())


def _carry_over(where: dict, row, limits: Limits | None) -> None:
    """Reuse a row's decode results; size limits are judged again against this run's limits."""
    for key in ("sha256", "format", "width", "height", "mode", "frames", "problem", "detail", "checked", "split"):
        where[key] = row[key]
    if limits is not None and row["problem"] in (None,) + LIMIT_REASONS and row["width"] is not None:
        found = format_problem(row["format"], limits) or check_limits(row["width"], row["height"], limits)
        where["problem"], where["detail"] = found if found else (None, row["detail"] if row["problem"] is None else None)
    if where["status"] == "ok" and row["status"] == "ok":
        where["reason"] = row["reason"]


def _compute(ws, stale, decode, limits, hash_kinds, executor, quiet) -> None:
    if not stale:
        return
    paths = [str(ws.abs(w["path"])) for w in stale]
    if decode:
        results = decode_files(paths, limits, hash_kinds, executor, quiet=quiet)
        now = time.time()
        for where, ins in zip(stale, results):
            where.update(sha256=ins.sha256, format=ins.format, width=ins.width, height=ins.height, mode=ins.mode,
                         frames=ins.frames, problem=ins.reason, detail=ins.detail or None, checked=now)
            where["_hashes"], where["_quality"] = ins.hashes, ins.quality
    else:
        digests = _hash_all(paths, quiet)
        for where, digest in zip(stale, digests):
            where.update(sha256=digest, checked=None)
            if digest is None:
                where.update(problem="unreadable", detail="permission denied", checked=time.time())


def _hash_all(paths: list[str], quiet: bool, chunk: int = 256) -> list[str | None]:
    """sha256 of many files in threads (hashlib releases the GIL), a chunk of files per task."""
    chunks = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        done = pool.map(lambda part: [sha256_file(p) for p in part], chunks)
        return [d for part in progress(done, total=len(chunks), desc="hashing", quiet=quiet) for d in part]


def sha256_file(path: str) -> str | None:
    """Hex sha256 of a file's bytes (None when it cannot be read)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def decode_batch(paths: Sequence[str], limits: Limits, kinds: tuple) -> list[dict]:
    """The decoding kernel (an executor runs it on batches of paths): imageio.inspect_file's fields for each."""
    return [asdict(inspect_file(p, limits, kinds)) for p in paths]


def decode_files(paths: Sequence[str], limits: Limits, kinds: Sequence[str], executor=None, *,
                 quiet: bool = True) -> list[Inspection]:
    """imageio.inspect_file of each path (decode, verify, hash, measure), in order: by `executor` (an
    executors.base.Executor: worker processes, a Ray cluster), else here, one file after another."""
    kinds = tuple(kinds)
    if executor is not None:
        found = executor.map(decode_batch, paths, limits, kinds, desc="decoding", quiet=quiet)
    else:
        found = [d for p in progress(paths, total=len(paths), desc="decoding", quiet=quiet)
                 for d in decode_batch([p], limits, kinds)]
    return [Inspection(**d) for d in found]


def _store(cat: Catalog, seen: list[dict], roots: Sequence[Path], ws: Workspace, known: dict) -> None:
    present = {w["path"] for w in seen}
    prefixes = [ws.rel(r).rstrip("/") + "/" for r in roots]
    gone = [p for p in known if p not in present and any(p.startswith(pre) for pre in prefixes)]
    with cat.transaction():
        cat.delete_files(gone)
        for where in seen:
            new_hashes = where.pop("_hashes", None)
            if new_hashes:
                cat.put_hashes(where["sha256"], new_hashes)
            new_quality = where.pop("_quality", None)
            if new_quality:
                cat.put_quality(where["sha256"], new_quality)
            row = known.get(where["path"])
            if row is not None and all(where.get(k) == row[k] for k in where):
                continue
            merged = dict(row) if row is not None else {}
            merged.update(where)
            cat.upsert_file(merged)


def _rows(cat: Catalog, paths: list[str]) -> list[sqlite3.Row]:
    rows = {r["path"]: r for r in cat.db.execute("SELECT * FROM files")}
    return [rows[p] for p in paths if p in rows]
