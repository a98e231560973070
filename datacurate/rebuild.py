"""`datacurate clean --rebuild-catalog`: set the catalog aside and rebuild it from the folders.

The folders tell which files exist, where quarantined ones came from and why they were set aside
(data/quarantine/<reason>/<source>/<class>/<file>), and which split each file is in
(data/split/split.csv). Whatever tables of the old catalog can still be read (provenance of
scraped files, the event log, hashes, split memory, ...) are copied over; its rows of files are
not, since the folders are the truth for those. Nothing is deleted: the old catalog is renamed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from datacurate.core.catalog import Catalog, open_catalog
from datacurate.core.errors import UserError
from datacurate.core.workspace import Workspace
from datacurate.split.memory import recall_split_csv

SIDECARS = ("", "-wal", "-shm", "-journal")
NOT_SALVAGED = {"files", "meta"}  # the folders are the truth for files; meta is the new catalog's own


@dataclass
class RebuildResult:
    """What the rebuild found: where the old catalog went and what was kept."""

    old: Path | None                 # where the old catalog now is (None: there was none)
    was_damaged: bool
    files: int = 0
    quarantined: int = 0
    splits: int = 0
    salvaged: dict[str, int] = field(default_factory=dict)  # table -> rows copied from the old catalog
    lost: list[str] = field(default_factory=list)             # tables of the old catalog that could not be read

    def lines(self, ws: Workspace) -> list[str]:
        out = []
        if self.old:
            state = "damaged" if self.was_damaged else "old"
            out.append(f"set the {state} catalog aside as {ws.rel(self.old)}")
        out.append(f"rebuilt the catalog from the folders: {self.files} files, {self.quarantined} in quarantine "
                   f"(reason, source and class from their paths), {self.splits} split assignments from split.csv")
        if self.salvaged:
            out.append("kept from the old catalog: " + ", ".join(f"{t} ({n} rows)" for t, n in sorted(self.salvaged.items())))
        if self.lost:
            out.append("could not read from the old catalog: " + ", ".join(self.lost))
        return out


def rebuild_catalog(ws: Workspace, *, quiet: bool = True) -> RebuildResult:
    """Move the catalog aside (catalog.sqlite.damaged-<time>) and rebuild it from the folders."""
    from datacurate.core.index import ALL_FOLDERS, index_files

    old, was_damaged = _set_aside(ws.catalog_path)
    result = RebuildResult(old, was_damaged)
    with open_catalog(ws) as cat:
        if old is not None:
            result.salvaged, result.lost = _salvage(old, cat)
        sources = [s for s in ALL_FOLDERS if s == "quarantine" or ws.path(s).is_dir()]  # quarantines: wherever they are
        rows = index_files(ws, cat, sources, decode=False, quiet=quiet)
        result.files = len(rows)
        result.quarantined = sum(r["status"] == "quarantined" for r in rows)
        result.splits = recall_split_csv(ws, cat)
    return result


def _set_aside(path: Path) -> tuple[Path | None, bool]:
    if not os.path.lexists(path):
        return None, False
    try:
        Catalog(path).close()
        damaged = False
    except UserError:
        damaged = True
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{'damaged' if damaged else 'old'}-{stamp}")
    n = 1
    while os.path.lexists(target):
        target = path.with_name(f"{path.name}.{'damaged' if damaged else 'old'}-{stamp}-{n}")
        n += 1
    for suffix in SIDECARS:  # the WAL belongs to its database: they move together
        src = Path(f"{path}{suffix}")
        if os.path.lexists(src):
            os.replace(src, f"{target}{suffix}")
    return target, damaged


def _salvage(old: Path, cat: Catalog) -> tuple[dict[str, int], list[str]]:
    """Copy every table of the old catalog that still reads, but files and meta, into the new one."""
    if old.is_dir():
        return {}, []
    # read-only; immutable (no -wal or -shm made beside it) unless it has a WAL of its own to read
    mode = "mode=ro" if os.path.exists(f"{old}-wal") else "immutable=1"
    try:
        src = sqlite3.connect(f"{old.as_uri()}?{mode}", uri=True)
        tables = src.execute("SELECT name, sql FROM sqlite_master WHERE type='table'").fetchall()
    except sqlite3.Error:
        return {}, ["all (not a readable SQLite file)"]
    kept, lost = {}, []
    try:
        for name, sql in tables:
            if name in NOT_SALVAGED or name.startswith("sqlite_"):
                continue
            try:
                n = _copy_table(src, cat, name, sql)
            except sqlite3.Error:
                lost.append(name)
                continue
            if n:
                kept[name] = n
    finally:
        src.close()
    return kept, lost


def _copy_table(src: sqlite3.Connection, cat: Catalog, name: str, sql: str) -> int:
    quoted = '"' + name.replace('"', '""') + '"'
    rows = src.execute(f"SELECT * FROM {quoted}")
    old_cols = [d[0] for d in rows.description]
    data = rows.fetchall()
    if not cat.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone():
        cat.db.execute(sql)  # a table some stage made on its own (split_memory, ...)
    new_cols = {r[1] for r in cat.db.execute(f"PRAGMA table_info({quoted})")}
    cols = [c for c in old_cols if c in new_cols]
    if not cols or not data:
        return 0
    idx = [old_cols.index(c) for c in cols]
    names = ",".join('"' + c.replace('"', '""') + '"' for c in cols)
    with cat.transaction():
        cat.db.executemany(f"INSERT OR IGNORE INTO {quoted} ({names}) VALUES ({','.join('?' * len(cols))})",
                           [tuple(row[i] for i in idx) for row in data])
    return len(data)
