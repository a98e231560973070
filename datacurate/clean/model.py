"""Plain records shared by the clean steps (exact duplicates, near duplicates, leaks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Item:
    """One decodable file as the duplicate finders see it."""

    path: str            # workspace-relative POSIX path (where the file is now)
    klass: str           # class folder name
    source: str          # original | scraped | test
    width: int
    height: int
    size: int            # bytes
    sha256: str
    hash: str | None     # hex perceptual hash of the chosen kind (None when unknown)


@dataclass
class Decision:
    """A file to set aside: `path` moves to quarantine/<reason>/, `of` is the file it duplicates."""

    path: str
    reason: str          # duplicate | near-duplicate | label-conflict | test-leak
    of: str | None = None
    distance: int = 0
    detail: str = ""


@dataclass
class Pair:
    """A pair found by a duplicate finder (for the catalog, the CSV and the HTML gallery)."""

    a: str               # keeper (or the test image, for a leak)
    b: str
    kind: str            # duplicate | near-duplicate | label-conflict | conflict-reported | test-leak
    distance: int
    hash: str            # sha256 | phash | dhash | whash | ahash


def keeper_key(item: Item) -> tuple:
    """Which copy is kept: original over scraped, larger resolution, larger file, path order."""
    return (item.source != "original", -(item.width * item.height), -item.size, item.path)
