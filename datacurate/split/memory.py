"""Sticky assignments in the catalog: table split_memory (by content, so renames keep them) and files.split."""

from __future__ import annotations

import time
from typing import Sequence

from datacurate.catalog import Catalog
from datacurate.split.assign import Assignment
from datacurate.split.eligible import Item

SCHEMA = """
CREATE TABLE IF NOT EXISTS split_memory (   -- where split placed each content; kept across runs
    sha256 TEXT PRIMARY KEY,
    split  TEXT NOT NULL,                    -- train | valid | test (what --final would have held out)
    path   TEXT NOT NULL,                    -- where the file was when placed
    time   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS split_memory_path ON split_memory(path);
"""


def ensure_schema(cat: Catalog) -> None:
    cat.db.executescript(SCHEMA)


def load_prior(cat: Catalog, items: Sequence[Item], moved: dict[str, str]) -> dict[str, str]:
    """path -> split from earlier runs: by content first, then by path (following recorded moves)."""
    ensure_schema(cat)
    by_sha: dict[str, str] = {}
    by_path: dict[str, str] = {}
    for sha, split, path in cat.db.execute("SELECT sha256, split, path FROM split_memory"):
        by_sha[sha] = split
        by_path[path] = split
    for old, new in moved.items():
        if old in by_path and new not in by_path:
            by_path[new] = by_path[old]
    out = {}
    for it in items:
        split = by_sha.get(it.sha256) or by_path.get(it.path)
        if split:
            out[it.path] = split
    return out


def save(cat: Catalog, items: Sequence[Item], res: Assignment, *, forget: bool = False) -> None:
    """Record the assignment: split_memory for stickiness, files.split for what the folders hold."""
    ensure_schema(cat)
    now = time.time()
    sha = {it.path: it.sha256 for it in items}
    with cat.transaction() as db:
        if forget:
            db.execute("DELETE FROM split_memory")
        db.executemany("INSERT OR REPLACE INTO split_memory VALUES (?,?,?,?)",
                       [(sha[p], s, p, now) for p, s in sorted(res.memory.items())])
        db.execute("UPDATE files SET split=NULL WHERE split IS NOT NULL")
        db.executemany("UPDATE files SET split=? WHERE path=?", [(s, p) for p, s in res.split.items()])
