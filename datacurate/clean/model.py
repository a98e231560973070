"""Plain records shared by the clean steps (exact duplicates, near duplicates, leaks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from datacurate.core.imageio import mode_bits


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
    mode: str | None = "RGB"  # Pillow mode (bit depth; "1" is bilevel)
    gray: bool = False   # a grayscale picture, whatever its mode (the grayscale flag)
    flagged: bool = False  # raised a quality flag about the picture (dark, light, blurry, ...)
    tonal_range: float | None = None  # brightest 1% minus darkest 5% of luminance (0..1; None: not measured)


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


# A copy whose tonal range is this much under its best twin's is visibly washed out or dark.
# Measured on 20 real photographs (../shared/realdata cats and dogs): JPEG q30 and a quarter-size
# resize lose at most 0.05, brightness x1.3 at most 0.09 (never counts); a washed-out copy
# (contrast x0.45, brightness x1.35) loses 0.22-0.37 and brightness x0.3 0.40-0.64 (always
# count); brightness x0.7 (0.17-0.27) and contrast x0.8 (0.11-0.18) mostly count: the brighter,
# fuller copy is kept. Over-exposure (x3.5) often keeps its range: the `light` flag covers it.
VISIBLY_WORSE_RANGE = 0.15


def by_picture_quality(members: list[Item]) -> list[Item]:
    """`members` (in keeper order) with the copies a quality flag marks, or whose tonal range is visibly
    under the best copy's, moved behind the others: a washed-out or flagged copy never wins over a clean
    twin, however little it is compressed. Otherwise the keeper order stands (a stable sort)."""
    ranges = [m.tonal_range for m in members if m.tonal_range is not None and m.mode != "1"]  # a fax is all 0 or 1
    best = max(ranges, default=None)

    def worse(m: Item) -> bool:
        return (best is not None and m.tonal_range is not None and m.mode != "1"
                and m.tonal_range < best - VISIBLY_WORSE_RANGE)

    return sorted(members, key=lambda m: (m.flagged, worse(m)))


def keeper_key(item: Item) -> tuple:
    """Which copy is kept, best first: colour over grayscale over 1-bit, higher bit depth, larger
    resolution, least compressed (bytes per pixel), original over scraped, larger file, path order."""
    bits = mode_bits(item.mode)
    area = item.width * item.height
    colour = 2 if bits == 1 else 1 if item.gray else 0
    return (colour, -bits, -area, -(item.size / area if area else 0.0), item.source != "original", -item.size, item.path)


Apart = Callable[[Item, Item], bool]  # True: a person said these two are not duplicates (datacurate keep)


def never_apart(a: Item, b: Item) -> bool:
    return False


def settle(members: list[Item], distance: Callable[[Item, Item], int], k: int, hash_kind: str,
           apart: Apart = never_apart) -> tuple[list[Decision], list[Pair]]:
    """Verdicts on one cluster of copies (`members` in keeper order, each within k of the first;
    flagged and visibly washed-out copies go behind the clean ones: by_picture_quality).

    Classes holding an original in the cluster are its labels (none: the keeper's class). Inside
    each such class one copy is kept per group of copies within k of it (best first); the others
    are duplicates of it. A class keeper under another label than the cluster's keeper is a
    conflict between originals, reported for a person. Every member of a class that holds no
    original (scraped copies under another label) is a label conflict. Two members `apart` (a
    person said they are not duplicates) are never paired.
    """
    members = by_picture_quality(members)
    by_class: dict[str, list[Item]] = {}
    for m in members:
        by_class.setdefault(m.klass, []).append(m)
    labels = [c for c, ms in by_class.items() if any(m.source == "original" for m in ms)] or [members[0].klass]
    decisions: list[Decision] = []
    pairs: list[Pair] = []
    ref: Item | None = None
    for c in labels:
        keepers: list[Item] = []
        for m in by_class[c]:
            near = [(distance(kp, m), n) for n, kp in enumerate(keepers) if not apart(kp, m)]
            near = [x for x in near if x[0] <= k]
            if near:
                d, n = min(near)
                _verdict(keepers[n], m, d, hash_kind, decisions, pairs)
                continue
            keepers.append(m)
            if ref is None:
                ref = m
            elif m.klass != ref.klass and not apart(ref, m):
                pairs.append(Pair(ref.path, m.path, "conflict-reported", distance(ref, m), hash_kind))
    assert ref is not None
    for c, ms in by_class.items():
        if c not in labels:
            for m in ms:
                if not apart(ref, m):
                    _verdict(ref, m, distance(ref, m), hash_kind, decisions, pairs)
    if hash_kind == "sha256":
        _two_labels(members, decisions, pairs)
    return decisions, pairs


def _two_labels(members: list[Item], decisions: list[Decision], pairs: list[Pair]) -> None:
    """The same bytes as originals under two or more classes: every class keeper is set aside as a
    `label-conflict` too (one picture must not train under two labels); a person brings back the
    right one with `datacurate keep`. Their pairs are recorded as label conflicts."""
    conflicts = [p for p in pairs if p.kind == "conflict-reported"]
    if not conflicts:
        return
    by_path = {m.path: m for m in members}
    involved = list(dict.fromkeys(path for p in conflicts for path in (p.a, p.b)))
    classes = " and ".join(sorted({by_path[p].klass for p in involved}))
    for p in conflicts:
        p.kind = "label-conflict"
    for path in involved:
        other = next(q for q in involved if by_path[q].klass != by_path[path].klass)
        decisions.append(Decision(path, "label-conflict", of=other, detail=(
            f"same bytes as {other}: one picture filed under {classes} (originals); "
            "bring back the right one with `datacurate keep`")))


def _verdict(keeper: Item, other: Item, d: int, hash_kind: str, decisions: list, pairs: list) -> None:
    decision, pair = judge(keeper, other, d, hash_kind)
    pairs.append(pair)
    if decision:
        decisions.append(decision)


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
