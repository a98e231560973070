"""Quarantine moves: how any stage (clean, vet, the review app) sets a file aside.

The file moves to quarantine/<reason>/ under a name that fits the file system, and its catalog row
follows in the same instant (moved_together): a kill or a full disk leaves both or neither.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from datacurate.core.catalog import Catalog
from datacurate.core.fsutil import deferred_signals, free_path, replace_or_copy
from datacurate.core.index import quarantine_dir
from datacurate.core.workspace import Workspace

NAME_MAX = 255
NAME_ROOM = 16  # bytes kept free for free_path's "-N" and temporary names


def fit_name(path: Path) -> Path:
    """`path` with a name short enough for NAME_MAX: a long stem is cut, keeping a hash of the whole name and the extension."""
    raw = os.fsencode(path.name)
    if len(raw) <= NAME_MAX - NAME_ROOM:
        return path
    suffix = path.suffix if len(os.fsencode(path.suffix)) <= 16 else ""
    digest = hashlib.sha256(raw).hexdigest()[:10]
    budget = NAME_MAX - NAME_ROOM - len(os.fsencode(suffix)) - len(digest) - 1
    stem = os.fsencode(path.name[: len(path.name) - len(suffix)])[:budget].decode("utf-8", "ignore")
    return path.with_name(f"{stem}~{digest}{suffix}")


def destination(path: Path) -> Path:
    """A free path for a file datacurate moves or writes, within NAME_MAX."""
    return free_path(fit_name(path))


@contextmanager
def moved_together(cat: Catalog, src: Path, dst: Path) -> Iterator[None]:
    """os.replace(src, dst) and the catalog transaction of the block land together, or neither does.

    Signals are held for the instant; when the catalog write fails (a full disk) the file moves back.
    Across file systems (a source folder moved to another disk) the file is copied, and the source
    removed once the catalog agrees.
    """
    with deferred_signals():
        copied = replace_or_copy(src, dst)
        try:
            with cat.transaction():
                yield
        except BaseException:
            if copied:
                os.unlink(dst)
            else:
                os.replace(dst, src)
            raise
        if copied:
            os.unlink(src)


def origin_of(row, wanted: Path, dst: Path) -> str | None:
    """The user's own path, kept when the file now carries another name (renamed before, or shortened now)."""
    return row["origin"] or (row["home"] if fit_name(wanted) != wanted else None)


def quarantine(ws: Workspace, cat: Catalog, path: str, reason: str, detail: str = "", *,
               of: str | None = None, distance: int = 0) -> str:
    """Move the catalogued file at `path` to quarantine/<reason>/ and record it (row and event); return where it is now.

    `of`: the file it copies (the event then records it and `distance`); `detail`: why (default: the row's).
    """
    row = cat.file(path)
    wanted = quarantine_dir(ws, cat, row["home"], reason)
    dst = destination(wanted)
    new = ws.rel(dst)
    origin = origin_of(row, wanted, dst)
    with moved_together(cat, ws.abs(path), dst):
        cat.db.execute("DELETE FROM files WHERE path=?", (new,))
        cat.update_file(path, path=new, status="quarantined", reason=reason, detail=detail or row["detail"],
                        origin=origin)
        cat.log("quarantine", path, new, reason, {"of": of, "distance": distance} if of else detail)
    return new
