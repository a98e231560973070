"""Exact duplicates: the same sha256 within and across classes."""

from __future__ import annotations

from collections import defaultdict

from datacurate.clean.model import Decision, Item, Pair, judge, keeper_key


def find_exact_duplicates(items: list[Item]) -> tuple[list[Decision], list[Pair]]:
    """Group by sha256; keep one copy by keeper_key and judge the others."""
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
            decision, pair = judge(keeper, other, 0, "sha256")
            pairs.append(pair)
            if decision:
                decisions.append(decision)
    return decisions, pairs
