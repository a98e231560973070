"""Exact duplicates: the same sha256 within and across classes."""

from __future__ import annotations

from collections import defaultdict

from datacurate.clean.model import Decision, Item, Pair, keeper_key


def conflict_decision(keeper: Item, other: Item, distance: int, hash_kind: str) -> tuple[Decision | None, Pair]:
    """The verdict on `other`, a copy of `keeper`, by class and source.

    Same class: a duplicate. Another class: a scraped copy is set aside as a label conflict;
    when both are originals nothing moves and the conflict is reported for a person to decide.
    """
    if other.klass == keeper.klass:
        kind = "duplicate" if hash_kind == "sha256" else "near-duplicate"
    elif other.source == "original" and keeper.source == "original":
        return None, Pair(keeper.path, other.path, "conflict-reported", distance, hash_kind)
    else:
        kind = "label-conflict"
    detail = f"same bytes as {keeper.path}" if hash_kind == "sha256" else f"{hash_kind} distance {distance} to {keeper.path}"
    if kind == "label-conflict":
        detail += f" (class {keeper.klass!r}, not {other.klass!r})"
    return Decision(other.path, kind, of=keeper.path, distance=distance, detail=detail), Pair(
        keeper.path, other.path, kind, distance, hash_kind
    )


def find_exact_duplicates(items: list[Item]) -> tuple[list[Decision], list[Pair]]:
    """Group by sha256; keep one copy by keeper_key, judge the others with conflict_decision."""
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        groups[item.sha256].append(item)
    decisions: list[Decision] = []
    pairs: list[Pair] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        keeper, *others = sorted(members, key=keeper_key)
        for other in others:
            decision, pair = conflict_decision(keeper, other, 0, "sha256")
            pairs.append(pair)
            if decision:
                decisions.append(decision)
    return decisions, pairs
