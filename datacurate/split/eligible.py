"""Which files a split may place: image files under data/original/<class>/ and data/scraped/<class>/."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from typing import Iterable

from datacurate.core.imageio import IMAGEFOLDER_EXTENSIONS

SPLIT_SOURCES = ("original", "scraped")
# Problems found by a decode that the trainer's loader cannot get past.
UNLOADABLE = {"empty", "unreadable", "not-an-image", "unsupported", "too-large", "truncated", "corrupt"}


@dataclass(frozen=True)
class Item:
    """One eligible image."""

    path: str       # workspace-relative POSIX path
    sha256: str
    klass: str
    source: str     # original | scraped
    rank: str       # seeded hash of the content: the order images are drawn in
    previous: str | None = None  # the split the catalog row held before this run


def rank_of(sha256: str, seed: int) -> str:
    """A seeded hash of the content, so the order does not depend on names or listing order."""
    return hashlib.sha256(f"{seed}:{sha256}".encode()).hexdigest()


def select(rows: Iterable[sqlite3.Row], seed: int) -> tuple[list[Item], dict[str, str]]:
    """Eligible items sorted by path, and {path: why} for files under the sources left out."""
    items: list[Item] = []
    skipped: dict[str, str] = {}
    for row in rows:
        why = _why_not(row)
        if why == "elsewhere":
            continue
        if why:
            skipped[row["path"]] = why
            continue
        items.append(Item(row["path"], row["sha256"], row["class"], row["source"], rank_of(row["sha256"], seed),
                          row["split"]))
    items.sort(key=lambda it: it.path)
    return items, skipped


def _why_not(row: sqlite3.Row) -> str | None:
    if row["source"] not in SPLIT_SOURCES or row["status"] != "ok":
        return "elsewhere"
    name = row["path"].rsplit("/", 1)[-1]
    if name.startswith(".") or not row["class"]:
        return "elsewhere"
    if not name.lower().endswith(IMAGEFOLDER_EXTENSIONS):
        return "not an ImageFolder extension"
    problem = _get(row, "problem")
    if not row["sha256"] or problem in UNLOADABLE:
        return f"cannot be loaded ({problem or 'unreadable'}); run `datacurate clean`"
    return None


def _get(row: sqlite3.Row, key: str):
    return row[key] if key in row.keys() else None
