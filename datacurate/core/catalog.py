"""The SQLite catalog (.datacurate/catalog.sqlite): what was computed per file, and every move.

The file system is the truth for which files exist; the catalog caches what was computed (a
file whose size and mtime did not change is not decoded again) and keeps what cannot be
recomputed: provenance of scraped files and the log of moves (events).
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from datacurate.core.diskfull import disk_full
from datacurate.core.fsutil import file_mode
from datacurate.core.errors import UserError

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path     TEXT PRIMARY KEY,   -- where the file is now, workspace-relative POSIX
    home     TEXT NOT NULL,      -- where it belongs (differs from path while quarantined)
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256   TEXT,
    format   TEXT,               -- real format by content (JPEG, PNG, WEBP...)
    width    INTEGER,
    height   INTEGER,
    mode     TEXT,
    frames   INTEGER,
    class    TEXT NOT NULL,
    source   TEXT NOT NULL,      -- original | scraped | test
    status   TEXT NOT NULL,      -- ok | quarantined
    reason   TEXT,               -- why it is quarantined (NULL while status is ok)
    problem  TEXT,               -- what the decode found (empty, truncated, ...; NULL: decodes fine)
    detail   TEXT,
    split    TEXT,               -- train | valid | test, set by split
    checked  REAL,               -- when the content was last decoded
    flags    TEXT,               -- quality flags clean raised, comma-separated (dark, blurry, ...)
    origin   TEXT,               -- the path the user had, where datacurate renamed or shortened it
    made_from TEXT               -- sha256 of the file datacurate converted into this one
);
CREATE INDEX IF NOT EXISTS files_sha ON files(sha256);
CREATE INDEX IF NOT EXISTS files_home ON files(home);
CREATE TABLE IF NOT EXISTS hashes (   -- perceptual hashes by content, so moves keep them
    sha256 TEXT NOT NULL,
    kind   TEXT NOT NULL,             -- phash | dhash | whash | ahash
    value  TEXT NOT NULL,             -- hex
    PRIMARY KEY (sha256, kind)
);
CREATE TABLE IF NOT EXISTS quality (   -- clean's quality metrics by content (imageio.quality_metrics)
    sha256    TEXT PRIMARY KEY,
    bright    REAL NOT NULL,
    shadow    REAL NOT NULL,
    entropy   REAL NOT NULL,
    sharpness REAL NOT NULL,
    colour    REAL NOT NULL,
    centre_clipped REAL,             -- NULL: measured before these two existed (measured again)
    unclipped_mean REAL
);
CREATE TABLE IF NOT EXISTS events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    time   REAL NOT NULL,
    action TEXT NOT NULL,             -- quarantine | restore | rename | convert | save | split
    src    TEXT,
    dst    TEXT,
    reason TEXT,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS provenance (   -- every scrape candidate, saved or not
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    time         REAL NOT NULL,
    class        TEXT NOT NULL,
    engine       TEXT NOT NULL,
    query        TEXT NOT NULL,
    rank         INTEGER,
    image_url    TEXT,
    page_url     TEXT,
    http_status  INTEGER,
    content_type TEXT,
    bytes        INTEGER,
    sha256       TEXT,
    path         TEXT,                  -- where it was saved (NULL when rejected)
    reason       TEXT,                  -- why rejected (NULL when saved)
    license      TEXT,                  -- licence code (cc0, by-sa...) or the engine's words; NULL: unknown
    license_version TEXT,
    license_url  TEXT,
    author       TEXT,                  -- creator as the engine names them; NULL: unknown
    title        TEXT
);
CREATE INDEX IF NOT EXISTS provenance_sha ON provenance(sha256);
CREATE TABLE IF NOT EXISTS pairs (      -- near-duplicate / conflict / leak pairs found by clean
    a        TEXT NOT NULL,             -- the keeper (or the test image for a leak)
    b        TEXT NOT NULL,             -- the other file
    kind     TEXT NOT NULL,             -- duplicate | near-duplicate | label-conflict | test-leak
    distance INTEGER NOT NULL,
    hash     TEXT NOT NULL,
    PRIMARY KEY (a, b, kind)
);
CREATE TABLE IF NOT EXISTS embeddings (   -- vet's image vectors by content and model, so moves keep them
    sha256 TEXT NOT NULL,
    model  TEXT NOT NULL,             -- architecture, weights identity and preprocessing
    vector BLOB NOT NULL,             -- float16, little-endian
    PRIMARY KEY (sha256, model)
);
CREATE TABLE IF NOT EXISTS quarantines (   -- quarantine folders outside the workspace's (beside a source on another disk)
    root  TEXT PRIMARY KEY,           -- absolute path (a catalog key)
    since REAL NOT NULL

);
CREATE TABLE IF NOT EXISTS overrides (    -- a person's word, by content: `datacurate keep`
    kind   TEXT NOT NULL,             -- keep | apart (a and b are not duplicates) | label (reason: the class)
    a      TEXT NOT NULL,             -- sha256
    b      TEXT NOT NULL DEFAULT '',  -- apart: the other sha256 (a <= b); keep: ''
    reason TEXT NOT NULL DEFAULT '*', -- keep: the reason it is kept against ('*': every reason)
    time   REAL NOT NULL,
    path   TEXT,                      -- where the file was when the person said so
    other  TEXT,                      -- apart: where the other file was
    PRIMARY KEY (kind, a, b, reason)
);
CREATE TABLE IF NOT EXISTS reviews (     -- decisions made in `datacurate review`, in order, for its undo
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    batch   INTEGER NOT NULL,         -- decisions made together (a bulk selection) share it; undo takes a batch
    time    REAL NOT NULL,
    action  TEXT NOT NULL,            -- keep | aside | relabel | apart
    sha256  TEXT NOT NULL,
    reason  TEXT NOT NULL,            -- the card's reason
    src     TEXT NOT NULL,            -- where the file was before
    dst     TEXT NOT NULL,            -- where it is after (= src when nothing moved)
    detail  TEXT,                     -- JSON: what undo needs (the other files of an apart)
    undone  REAL                      -- when it was undone (NULL: it stands)
);
CREATE TABLE IF NOT EXISTS vet_scores (  -- vet's evidence per content (vet.csv, vet.html, `datacurate reason`)
    sha256     TEXT PRIMARY KEY,
    path       TEXT NOT NULL,         -- where the file was when it was scored
    class      TEXT NOT NULL,
    source     TEXT NOT NULL,
    distance   REAL NOT NULL,
    threshold  REAL NOT NULL,
    quality    REAL,
    likeliest  TEXT,
    likeliest_prob REAL,
    flag       TEXT NOT NULL,         -- off-topic | wrong-class | '' (kept)
    looks_like TEXT,
    detail     TEXT,
    neighbours TEXT,                  -- JSON: {"own": [[path, sha256], ...], "other": [...]}
    model      TEXT,
    time       REAL NOT NULL
);
"""

# Columns added to existing tables after schema 1: {table: {column: SQL type}}. A catalog that lacks
# one gets it on open (ALTER TABLE ... ADD COLUMN), so new columns need no schema version bump.
# New tables go into SCHEMA with CREATE TABLE IF NOT EXISTS.
ADDED_COLUMNS: dict[str, dict[str, str]] = {
    "provenance": {"license": "TEXT", "license_version": "TEXT", "license_url": "TEXT", "author": "TEXT",
                   "title": "TEXT"},
    "files": {"flags": "TEXT", "origin": "TEXT", "made_from": "TEXT"},
    "quality": {"centre_clipped": "REAL", "unclipped_mean": "REAL"},
}

FILE_COLUMNS = (
    "path home size mtime_ns sha256 format width height mode frames class source status reason problem detail split checked"
    " flags origin made_from"
).split()


class Catalog:
    """A connection to the workspace catalog; use as a context manager or call close()."""

    def __init__(self, path: Path, *, create: bool = True, timeout: float = 30):
        self.path = Path(path)
        _opened[:] = [self.path]
        if not create and not self.path.exists():
            raise UserError(f"no catalog at {self.path}; run `datacurate clean` first")
        check_file(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot make {self.path.parent} for the catalog ({exc.strerror})") from None
        new = not self.path.exists()
        try:
            self.db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._check_version()
            self.db.executescript(SCHEMA)
            if new:  # SQLite makes it 0644 whatever the umask: a group-writable umask shares it with the team
                os.chmod(self.path, file_mode())
            self._add_columns()
            self._check_columns()
        except (sqlite3.Error, UserError) as exc:
            if hasattr(self, "db"):
                self.db.close()
            if isinstance(exc, UserError):
                raise
            raise catalog_error(self.path, exc) from None

    def _check_version(self) -> None:
        has_meta = self.db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone()
        if not has_meta:
            self.db.executescript(SCHEMA)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            return
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        try:
            version = int(row[0]) if row else 0
        except (TypeError, ValueError):
            raise damaged(self.path, f"its schema version {row[0]!r} is not a number") from None
        if version > SCHEMA_VERSION:
            raise UserError(
                f"catalog {self.path} was written by a newer datacurate (schema {version} > {SCHEMA_VERSION}); upgrade datacurate"
            )

    def _add_columns(self) -> None:
        """Add the ADDED_COLUMNS a catalog written by an older datacurate lacks."""
        for table, columns in ADDED_COLUMNS.items():
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for name, sqltype in columns.items():
                if name not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sqltype}")

    def _check_columns(self) -> None:
        """Every table of SCHEMA has its columns (a catalog someone altered by hand is damaged)."""
        for table, columns in expected_columns().items():
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in columns if c not in have]
            if missing:
                raise damaged(self.path, f"table {table} lacks column {missing[0]}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- files ----------------------------------------------------------------------------------
    def files(self, where: str = "1", params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return self.db.execute(f"SELECT * FROM files WHERE {where} ORDER BY path", tuple(params)).fetchall()

    def file(self, path: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM files WHERE path=?", (path,)).fetchone()

    def upsert_file(self, row: dict[str, Any]) -> None:
        cols = [c for c in FILE_COLUMNS if c in row]
        sql = f"INSERT OR REPLACE INTO files ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})"
        self.db.execute(sql, [row[c] for c in cols])

    def update_file(self, key: str, /, **values: Any) -> None:
        """Set columns of the row at path `key` (values may include a new path)."""
        sets = ",".join(f"{k}=?" for k in values)
        self.db.execute(f"UPDATE files SET {sets} WHERE path=?", (*values.values(), key))

    def delete_files(self, paths: Iterable[str]) -> None:
        self.db.executemany("DELETE FROM files WHERE path=?", [(p,) for p in paths])

    # -- hashes ---------------------------------------------------------------------------------
    def put_hashes(self, sha256: str, hashes: dict[str, str]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO hashes VALUES (?,?,?)", [(sha256, k, v) for k, v in hashes.items()]
        )

    def hashes(self, kind: str) -> dict[str, str]:
        """sha256 -> hex hash of the given kind."""
        return dict(self.db.execute("SELECT sha256, value FROM hashes WHERE kind=?", (kind,)).fetchall())

    # -- quality metrics ------------------------------------------------------------------------
    QUALITY_KEYS = ("bright", "shadow", "entropy", "sharpness", "colour", "centre_clipped", "unclipped_mean")

    def put_quality(self, sha256: str, metrics: dict[str, float]) -> None:
        keys = ",".join(self.QUALITY_KEYS)
        self.db.execute(f"INSERT OR REPLACE INTO quality (sha256,{keys}) VALUES (?{',?' * len(self.QUALITY_KEYS)})",
                        (sha256, *(float(metrics[k]) for k in self.QUALITY_KEYS)))

    def quality(self) -> dict[str, dict[str, float]]:
        """sha256 -> quality metrics; a row lacking a metric added later is left out, so clean measures it again."""
        return {r[0]: dict(zip(self.QUALITY_KEYS, r[1:])) for r in self.db.execute(
            f"SELECT sha256, {','.join(self.QUALITY_KEYS)} FROM quality WHERE "
            + " AND ".join(f"{k} IS NOT NULL" for k in self.QUALITY_KEYS))}

    # -- events ---------------------------------------------------------------------------------
    def log(self, action: str, src: str | None, dst: str | None, reason: str | None = None, detail: Any = None) -> None:
        if detail is not None and not isinstance(detail, str):
            detail = json.dumps(detail, ensure_ascii=False)
        self.db.execute(
            "INSERT INTO events (time, action, src, dst, reason, detail) VALUES (?,?,?,?,?,?)",
            (time.time(), action, src, dst, reason, detail),
        )

    def events(self, action: str | None = None) -> list[sqlite3.Row]:
        if action:
            return self.db.execute("SELECT * FROM events WHERE action=? ORDER BY id", (action,)).fetchall()
        return self.db.execute("SELECT * FROM events ORDER BY id").fetchall()

    # -- provenance -----------------------------------------------------------------------------
    def add_provenance(self, **row: Any) -> None:
        row.setdefault("time", time.time())
        cols = list(row)
        self.db.execute(
            f"INSERT INTO provenance ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", [row[c] for c in cols]
        )

    # -- pandas ---------------------------------------------------------------------------------
    def frame(self, sql: str, params: Iterable[Any] = ()):
        """A query as a pandas DataFrame (for reports)."""
        import pandas as pd

        return pd.read_sql_query(sql, self.db, params=tuple(params))


def open_catalog(workspace, *, create: bool = True, timeout: float = 30) -> Catalog:
    """The catalog of a Workspace (`timeout`: seconds to wait for a writer's lock)."""
    return Catalog(workspace.catalog_path, create=create, timeout=timeout)


# -- damage ---------------------------------------------------------------------------------------
REBUILD = "datacurate clean --rebuild-catalog"
_opened: list[Path] = []  # the catalog this process opened last (named by errors raised later)


def last_opened() -> Path | None:
    return _opened[0] if _opened else None


def damaged(path: Path | None, why: str) -> UserError:
    where = f"the catalog {path}" if path else "the catalog"
    return UserError(f"{where} is damaged ({why}); rebuild it from the folders with `{REBUILD}` "
                     "(it moves the damaged file aside and deletes nothing)")


def catalog_error(path: Path | None, exc: BaseException) -> UserError:
    """The one line for an SQLite error on the catalog: damaged, read-only, unreadable or disk full."""
    text = str(exc)
    low = text.lower()
    where = str(path) if path else "the catalog"
    if "readonly" in low or "read-only" in low:
        return UserError(f"cannot write the catalog {where}: it or its folder is read-only")
    if "unable to open" in low:
        return UserError(f"cannot open the catalog {where} (permission denied, or its folder cannot be written)")
    if "disk is full" in low or "disk full" in low:
        return disk_full(path)
    if "locked" in low or "busy" in low:
        return UserError(f"the catalog {where} is locked by another process ({text})")
    return damaged(path, text)


def check_file(path: Path) -> None:
    """Refuse a catalog path that is a folder, unreadable, not SQLite or cut short (read from its header)."""
    if path.is_dir():
        raise damaged(path, "it is a folder, not a file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(100)
    except FileNotFoundError:
        return
    except PermissionError:
        raise UserError(f"cannot read the catalog {path}: permission denied") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"cannot write the catalog {path}: permission denied (every command that writes updates it)")
    if size == 0:
        return
    if size < 100 or not head.startswith(b"SQLite format 3\0"):
        raise damaged(path, "it is not an SQLite database")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    if head[92:96] == head[24:28] and pages and size < pages * page_size:
        raise damaged(path, f"it is cut short: {size} of {pages * page_size} bytes")


@functools.lru_cache(maxsize=1)
def expected_columns() -> dict[str, list[str]]:
    """Columns of every table SCHEMA (plus ADDED_COLUMNS) defines."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(SCHEMA)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        out = {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        db.close()
    for table, columns in ADDED_COLUMNS.items():
        out.setdefault(table, []).extend(c for c in columns if c not in out.get(table, []))
    return out
