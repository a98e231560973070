"""Exact duplicates: the same sha256 within and across classes."""

from __future__ import annotations

from collections import defaultdict

from datacurate.clean.model import Apart, Decision, Item, Pair, keeper_key, never_apart, settle


def find_exact_duplicates(items: list[Item], apart: Apart = never_apart) -> tuple[list[Decision], list[Pair]]:
    """Group by sha256; keep one copy per class by keeper_key and judge the others (model.settle)."""
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        groups[item.sha256].append(item)
    decisions: list[Decision] = []
    pairs: list[Pair] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        found, found_pairs = settle(sorted(members, key=keeper_key), lambda a, b: 0, 0, "sha256", apart)
        decisions += found
        pairs += found_pairs
    return decisions, pairs
