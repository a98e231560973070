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


def judge(keeper: Item, other: Item, distance: int, hash_kind: str) -> tuple[Decision | None, Pair]:
    """The verdict on `other`, a copy of `keeper` (exact when hash_kind is sha256), by class and source.

    Same class: a duplicate (near-duplicate for a perceptual match). Another class: a scraped copy
    is set aside as a label conflict; two originals move nowhere and the conflict is reported.
    """
    if other.klass == keeper.klass:
        kind = "duplicate" if hash_kind == "sha256" else "near-duplicate"
    elif other.source == "original" and keeper.source == "original":
        return None, Pair(keeper.path, other.path, "conflict-reported", distance, hash_kind)
    else:
        kind = "label-conflict"
    if hash_kind == "sha256":
        detail = f"same bytes as {keeper.path}"
    else:
        detail = f"within {distance} bits of {keeper.path}"
    if kind == "label-conflict":
        detail += f" (filed under {other.klass}, the {keeper.source} is under {keeper.klass})"
    return Decision(other.path, kind, of=keeper.path, distance=distance, detail=detail), Pair(
        keeper.path, other.path, kind, distance, hash_kind)
