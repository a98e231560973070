"""The file a person names (keep, relabel, restore, reason): found in the catalog, checked, followed.

A path names the file there now, or the file that had that path before clean or vet set it aside.
"""

from __future__ import annotations

import os
from pathlib import Path

from datacurate.core.catalog import Catalog
from datacurate.core.errors import UserError
from datacurate.core.fsutil import shown
from datacurate.core.workspace import Workspace

NO_LEAK_OVERRIDE = "no override exempts a test leak (training on a copy of a test image makes the test score a lie)"


def locate(ws: Workspace, cat: Catalog, raw: str | os.PathLike, *, index: bool = True):
    """The catalog row of the file at `raw` (relative to the current folder), or of the file that had
    that path before clean or vet set it aside. One clear UserError otherwise. A file of the data
    folders no command has seen yet is indexed (a write), or with index=False its path is returned."""
    from datacurate.core.index import index_files, place

    given = Path(raw).expanduser()
    path = Path(os.path.abspath(Path(os.getcwd()) / given))
    if not given.is_absolute() and not path.exists():  # the API also takes workspace-relative paths
        inside = Path(os.path.abspath(ws.root / given))
        path = inside if inside.exists() or _known(cat, ws.rel(inside)) else path
    try:
        rel = ws.rel(path)
    except UserError:
        raise UserError(f"{raw} is outside the workspace {ws.root}") from None
    row = _known(cat, rel)
    if row is None and path.is_file() and place(ws, str(path)) and not index:
        return rel
    if row is None and path.is_file() and place(ws, str(path)):
        index_files(ws, cat, roots=[path.parent])  # a file no command has seen yet
        row = cat.file(rel)
    if row is None:
        if not path.exists():
            raise UserError(f"{raw}: no such file (not on disk, and the catalog knows no file that was there)")
        raise UserError(f"{raw} is not a file in the workspace's data folders (original, scraped, test, quarantine)")
    return row


def gone(ws: Workspace, row) -> bool:
    """A file the catalog has in quarantine that is no longer there (deleted by hand)."""
    return row["status"] == "quarantined" and not os.path.lexists(ws.abs(row["path"]))


def check_present(ws: Workspace, raw, row) -> None:
    """UserError (before anything is recorded or moved) for a quarantined file deleted by hand."""
    if gone(ws, row):
        raise UserError(f"{raw}: clean or vet set it aside at {shown(row['path'])}, but that file is no longer there "
                        f"(deleted by hand?); nothing to bring back")


def _known(cat: Catalog, rel: str):
    """The row of the file at `rel`, or of the one whose home (or original name) was `rel`."""
    return cat.file(rel) or cat.db.execute(
        "SELECT * FROM files WHERE (home=? OR origin=?) ORDER BY status='quarantined' DESC, path LIMIT 1",
        (rel, rel)).fetchone()


def check_no_leak(raw, row) -> None:
    """UserError for a file set aside as a test leak: no person's word (keep, relabel) brings it back."""
    if row["status"] == "quarantined" and row["reason"] == "test-leak":
        raise UserError(f"{raw} was set aside as a test leak (a copy of a test image): {NO_LEAK_OVERRIDE}")


def follow_pairs(cat: Catalog, old: str, new: str) -> None:
    """clean's pairs follow a file that moved (reason on its twin names where it is now); in a transaction."""
    for end in ("a", "b"):
        cat.db.execute(f"UPDATE OR REPLACE pairs SET {end}=? WHERE {end}=?", (new, old))
