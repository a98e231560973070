"""Groups of images that must share a split: identical content, and pairs that clean linked."""

from __future__ import annotations

import sqlite3
from typing import Iterable, Sequence

from datacurate.split.eligible import Item

# Pair kinds whose members, when both are still eligible, must land in the same split.
LINK_KINDS = ("duplicate", "near-duplicate", "label-conflict", "conflict-reported")
# Events that move a file to a new path (clean renames and converts; restore brings one back).
MOVE_ACTIONS = ("rename", "convert", "restore", "quarantine")


class UnionFind:
    """Disjoint sets over 0..n-1 with path halving."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def moves(db: sqlite3.Connection) -> dict[str, str]:
    """{old path: newer path} from the catalog's events, for pairs recorded before a move."""
    out: dict[str, str] = {}
    sql = f"SELECT src, dst FROM events WHERE action IN ({','.join('?' * len(MOVE_ACTIONS))}) ORDER BY id"
    for src, dst in db.execute(sql, MOVE_ACTIONS):
        if src and dst and src != dst:
            out[src] = dst
    return out


def follow(path: str, index: dict[str, int], moved: dict[str, str]) -> int | None:
    """The eligible item a pair's path refers to now, following recorded moves; None if gone."""
    seen = set()
    while path not in index:
        if path in seen or path not in moved:
            return None
        seen.add(path)
        path = moved[path]
    return index[path]


def linked_pairs(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """The (a, b) pairs clean recorded whose kinds link their members."""
    sql = f"SELECT a, b FROM pairs WHERE kind IN ({','.join('?' * len(LINK_KINDS))})"
    return [(a, b) for a, b in db.execute(sql, LINK_KINDS)]


def groups(items: Sequence[Item], pairs: Iterable[tuple[str, str]], moved: dict[str, str] | None = None) -> list[list[int]]:
    """Indices of items grouped by identical sha256 and by linked pairs (both ends still eligible).

    Each group is sorted by (rank, path); groups are sorted by their first member.
    """
    moved = moved or {}
    uf = UnionFind(len(items))
    index = {it.path: i for i, it in enumerate(items)}
    by_sha: dict[str, int] = {}
    for i, it in enumerate(items):
        first = by_sha.setdefault(it.sha256, i)
        if first != i:
            uf.union(first, i)
    for a, b in pairs:
        ia, ib = follow(a, index, moved), follow(b, index, moved)
        if ia is not None and ib is not None:
            uf.union(ia, ib)
    members: dict[int, list[int]] = {}
    for i in range(len(items)):
        members.setdefault(uf.find(i), []).append(i)
    key = lambda i: (items[i].rank, items[i].path)  # noqa: E731
    out = [sorted(m, key=key) for m in members.values()]
    out.sort(key=lambda m: key(m[0]))
    return out
