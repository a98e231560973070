"""The assignment rule: stratified per class, sticky, clusters kept whole, honest valid.

Pure: it takes items, groups and the previous assignment and returns where each item goes.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from datacurate.split.eligible import Item
from datacurate.split.options import SplitOptions

HELD_OUT = ("valid", "test")
SPLITS = ("train", "valid", "test")


@dataclass
class Assignment:
    """Where each item goes. `split` is what the folders get; `memory` is what stays sticky."""

    memory: dict[str, str] = field(default_factory=dict)      # path -> train | valid | test
    split: dict[str, str] = field(default_factory=dict)       # path -> effective split (final: train)
    left_out: dict[str, str] = field(default_factory=dict)    # path -> why
    moved: dict[str, tuple[str, str]] = field(default_factory=dict)  # path -> (before, after)
    targets: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class -> target count
    warnings: list[str] = field(default_factory=list)


def half_up(x: float) -> int:
    """round() with halves going up (Python's round sends 0.5 to 0)."""
    return int(math.floor(x + 0.5 + 1e-9))


def targets_for(n: int, opts: SplitOptions) -> dict[str, int]:
    """How many of a class's `n` valid-eligible images go to valid and test; train keeps at least one."""
    out = {}
    room = max(n - 1, 0)
    for name in HELD_OUT:
        share = getattr(opts, name)
        t = half_up(share * n) if share > 0 and n >= 2 else 0
        if share > 0 and n >= 2:
            t = max(t, opts.min_valid)
        out[name] = min(t, room)
        room -= out[name]
    return out


def assign(items: Sequence[Item], groups: Sequence[Sequence[int]], prior: dict[str, str], opts: SplitOptions) -> Assignment:
    """Place every item of every group; `prior` maps path -> split from earlier runs (sticky)."""
    res = Assignment()
    holdable = [opts.scraped_in_valid or it.source == "original" for it in items]
    n = Counter(it.klass for it, ok in zip(items, holdable) if ok)
    classes = sorted({it.klass for it in items})
    per_class = {c: targets_for(n[c], opts) for c in classes}
    res.targets = {s: {c: per_class[c][s] for c in classes} for s in HELD_OUT}
    count = {s: Counter() for s in HELD_OUT}
    fresh: list[Sequence[int]] = []
    for g in groups:
        before = [prior.get(items[i].path) for i in g]
        if any(before):
            _place_sticky(res, items, g, before, holdable, opts, count)
        elif all(holdable[i] for i in g):
            fresh.append(g)
        else:
            _place(res, items, g, "train", holdable, count)
    for s in HELD_OUT:
        fresh = _draw(res, items, fresh, s, holdable, count, n)
    for g in fresh:
        _place(res, items, g, "train", holdable, count)
    res.split = {p: ("train" if opts.final else s) for p, s in res.memory.items()}
    if opts.final:
        res.split.update({p: "train" for p in res.left_out})
        res.left_out = {}
    res.warnings += _warnings(classes, n, Counter(it.klass for it in items), per_class, count, opts)
    return res


def _place(res: Assignment, items, g, split: str, holdable, count) -> None:
    for i in g:
        it = items[i]
        if split != "train" and not holdable[i]:
            res.left_out[it.path] = f"linked to a {split} image but {it.source} images stay out of {split}"
            continue
        res.memory[it.path] = split
        if split != "train":
            count[split][it.klass] += 1


def _usable(split: str, opts: SplitOptions) -> str:
    """An earlier split, or train when that split is no longer asked for."""
    return split if split == "train" or (split in HELD_OUT and getattr(opts, split) > 0) else "train"


def _place_sticky(res: Assignment, items, g, before, holdable, opts: SplitOptions, count) -> None:
    """A group that has members placed before keeps the split most of them had."""
    usable = [_usable(b, opts) for b in before if b]
    if len(usable) == 1:
        split = usable[0]
    else:
        votes = Counter(usable).most_common()
        split = votes[0][0] if len(votes) == 1 or votes[0][1] > votes[1][1] else usable[0]
    if split != "train" and not any(holdable[i] for i in g):
        split = "train"
    _place(res, items, g, split, holdable, count)
    for i, b in zip(g, before):
        now = res.memory.get(items[i].path)
        if b and now and b != now:
            res.moved[items[i].path] = (b, now)


def _draw(res: Assignment, items, fresh, split: str, holdable, count, n) -> list:
    """Give `split` the best-ranked new groups until each class reaches its target; return the rest."""
    target = res.targets[split]
    held = lambda c: sum(count[s][c] for s in HELD_OUT)  # noqa: E731
    rest = []
    for g in fresh:  # exact fit first
        need = Counter(items[i].klass for i in g)
        if all(count[split][c] + k <= target[c] for c, k in need.items()):
            _place(res, items, g, split, holdable, count)
        else:
            rest.append(g)
    left = []
    for g in rest:  # then groups too big to fit exactly, for classes still short (train keeps one)
        need = Counter(items[i].klass for i in g)
        if all(count[split][c] < target[c] and n[c] - held(c) - k >= 1 for c, k in need.items()):
            _place(res, items, g, split, holdable, count)
        else:
            left.append(g)
    return left


def _warnings(classes, n, total, per_class, count, opts: SplitOptions) -> list[str]:
    out = []
    if opts.final:
        return out
    source = "images" if opts.scraped_in_valid else "original images"
    for c in classes:
        if opts.valid > 0 and n[c] < 2:
            out.append(f"class {c}: {n[c]} {source}, so none goes to valid")
        elif opts.test > 0 and per_class[c]["test"] == 0:
            out.append(f"class {c}: {n[c]} {source} is too few for test as well as valid")
        for s in HELD_OUT:
            want = per_class[c][s]
            if count[s][c] != want and n[c] >= 2:
                out.append(f"class {c}: {count[s][c]} in {s} instead of {want} "
                           "(earlier assignments are kept, and linked images stay together)")
    return out
