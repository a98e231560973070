"""Sticky assignments in the catalog: table split_memory (by content, so renames keep them) and files.split."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from typing import Sequence

from datacurate.core.catalog import Catalog
from datacurate.core.workspace import Workspace
from datacurate.split.assign import Assignment
from datacurate.split.eligible import Item

CSV_NAME = "split.csv"  # data/split/split.csv: every file's split, written with the folders

SCHEMA = """
CREATE TABLE IF NOT EXISTS split_memory (   -- where split placed each content; kept across runs
    sha256 TEXT PRIMARY KEY,
    split  TEXT NOT NULL,                    -- train | valid | test (what --final would have held out)
    path   TEXT NOT NULL,                    -- where the file was when placed
    time   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS split_memory_path ON split_memory(path);
"""


@dataclass
class Memory:
    """What earlier runs assigned: sha256 -> (split, path)."""

    by_sha: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, cat: Catalog) -> "Memory":
        cat.db.executescript(SCHEMA)
        return cls({sha: (split, path) for sha, split, path in cat.db.execute("SELECT sha256, split, path FROM split_memory")})

    def prior(self, items: Sequence[Item], moved: dict[str, str]) -> dict[str, str]:
        """path -> split: by content first, then by path (following recorded moves, e.g. a conversion)."""
        by_path = {path: split for split, path in self.by_sha.values()}
        for old, new in moved.items():
            if old in by_path and new not in by_path:
                by_path[new] = by_path[old]
        out = {}
        for it in items:
            hit = self.by_sha.get(it.sha256)
            split = hit[0] if hit else by_path.get(it.path)
            if split:
                out[it.path] = split
        return out


def save(cat: Catalog, items: Sequence[Item], res: Assignment, memory: Memory, *, forget: bool = False) -> None:
    """Record the assignment (writing only what changed): split_memory for stickiness, files.split for the folders."""
    now = time.time()
    sha = {it.path: it.sha256 for it in items}
    remember = [(sha[p], s, p, now) for p, s in res.memory.items() if forget or memory.by_sha.get(sha[p]) != (s, p)]
    changed = [(s, it.path) for it in items if (s := res.split.get(it.path)) != it.previous]
    with cat.transaction() as db:
        if forget:
            db.execute("DELETE FROM split_memory")
        db.executemany("INSERT OR REPLACE INTO split_memory VALUES (?,?,?,?)", sorted(remember))
        stale = [(p,) for (p,) in db.execute("SELECT path FROM files WHERE split IS NOT NULL") if p not in res.split]
        db.executemany("UPDATE files SET split=NULL WHERE path=?", stale)
        db.executemany("UPDATE files SET split=? WHERE path=?", changed)


def recall_split_csv(ws: Workspace, cat: Catalog) -> int:
    """files.split and the sticky split memory from data/split/split.csv, for files whose content still matches
    (a rebuilt catalog); how many files it placed."""
    path = ws.split_dir / CSV_NAME
    if not path.is_file():
        return 0
    sha = {r[0]: r[1] for r in cat.db.execute("SELECT path, sha256 FROM files WHERE status='ok'")}
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        placed = [(r["path"], r["split"], r["sha256"]) for r in csv.DictReader(fh)
                  if r.get("split") and r.get("path") in sha and sha[r["path"]] == r.get("sha256")]
    now = time.time()
    cat.db.executescript(SCHEMA)
    with cat.transaction() as db:
        db.executemany("UPDATE files SET split=? WHERE path=?", [(s, p) for p, s, _ in placed])
        db.executemany("INSERT OR IGNORE INTO split_memory VALUES (?,?,?,?)", [(h, s, p, now) for p, s, h in placed])
    return len(placed)
