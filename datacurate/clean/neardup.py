"""Perceptual near-duplicates, label conflicts and test-set leaks among the usable files.

Order of work:
1. Leaks: every original or scraped item within K of any test item is set aside as `test-leak`
   (`of` = the nearest test image). Leaked items take no further part.
2. Clusters, greedy in keeper order (`keeper_key`: the best copy first: colour, bit depth,
   resolution, least compressed, then original over scraped): the first unassigned item becomes a keeper and takes every unassigned item
   within K of *itself*. Every member is therefore within K of its keeper; chains (A~B~C with
   A and C far apart) never merge unrelated images, C simply starts its own cluster.
3. In each cluster (model.settle): the classes holding an original are its labels (none: the
   keeper's class). Inside each such class one copy is kept per group within K of it (best
   first by keeper_key, flagged and washed-out copies last) and the others are `near-duplicate`s of it, so a class keeps one copy
   even when the cluster's keeper lies in another class; class keepers under different labels
   stay and are reported as `conflict-reported` for a person to decide. Every member of a class
   without an original (scraped copies filed elsewhere) is a `label-conflict`.

The search is exact (datacurate.clean.search): no pair within K is missed.
"""

from __future__ import annotations

import numpy as np

from datacurate.clean.model import Apart, Decision, Item, Pair, keeper_key, never_apart, settle
from datacurate.clean.search import codes_from_hex, cross_within, search_unique, unique_codes
from datacurate.core.errors import UserError

# Chosen with `python benchmarks/bench_dedupe.py accuracy` (phash through datacurate.core.imageio, 93
# real pictures x 22 variants, 2.26 M pairs of different pictures). At K=10 every resized,
# JPEG-recompressed (down to q15) and EXIF-rotated copy is found, brightness 0.995, a small
# watermark 0.82, 2% crops 0.98; pair precision is 1.000 for every transformation except logo
# watermarks on flat/dark pictures (60 false pairs in all). K=12 starts pairing different
# photographs for a few more crops; K=14 has 7x the false pairs of K=10; K=8 loses 3-7 points of
# recall on watermarks and scraped-style combos. (10 is also imagededup's default.)
from datacurate.clean.options import DEFAULT_THRESHOLD, MAX_THRESHOLD  # noqa: E402 - the numbers' home is the options model


def check_threshold(threshold: int) -> int:
    """Validate --threshold: a whole number of bits in 0..MAX_THRESHOLD."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)):
        raise UserError(f"--threshold {threshold!r} must be a whole number of bits")
    if not 0 <= threshold <= MAX_THRESHOLD:
        raise UserError(
            f"--threshold {threshold} is outside 0..{MAX_THRESHOLD} (a 64-bit hash at distance "
            f"{MAX_THRESHOLD} matches unrelated images)"
        )
    return int(threshold)


def find_near_duplicates(
    items: list[Item], test_items: list[Item], threshold: int = DEFAULT_THRESHOLD, kind: str = "phash"
) -> tuple[list[Decision], list[Pair]]:
    """Decisions (files to set aside) and every pair found, for hashes of `kind` within `threshold`."""
    k = check_threshold(threshold)
    hashed = [it for it in items if it.hash]
    tests = [t for t in test_items if t.hash]
    leak_decisions, leak_pairs = find_leaks(hashed, tests, k, kind)
    leaked = {d.path for d in leak_decisions}
    decisions, pairs = cluster(([it for it in hashed if it.path not in leaked]), k, kind)
    return leak_decisions + decisions, leak_pairs + pairs


def find_leaks(items: list[Item], tests: list[Item], k: int, kind: str,
               apart: Apart = never_apart) -> tuple[list[Decision], list[Pair]]:
    """Items within k of any test item: one `test-leak` decision each (nearest test image)."""
    if not items or not tests:
        return [], []
    tests = sorted(tests, key=lambda t: t.path)
    qi, ri, dist = cross_within(codes_from_hex([it.hash for it in items]), codes_from_hex([t.hash for t in tests]), k)
    hits_found = [(q, r, d) for q, r, d in zip(qi.tolist(), ri.tolist(), dist.tolist()) if not apart(tests[r], items[q])]
    pairs = [Pair(a=tests[r].path, b=items[q].path, kind="test-leak", distance=int(d), hash=kind) for q, r, d in hits_found]
    nearest: dict[int, tuple[int, int]] = {}
    hits: dict[int, int] = {}
    for q, r, d in hits_found:
        hits[q] = hits.get(q, 0) + 1
        if q not in nearest or (d, r) < nearest[q]:
            nearest[q] = (d, r)
    decisions = []
    for q in sorted(nearest, key=lambda q: items[q].path):
        d, r = nearest[q]
        also = hits[q] - 1
        detail = f"within {d} bits of test image {tests[r].path}" + (f" (and {also} more)" if also > 0 else "")
        decisions.append(Decision(path=items[q].path, reason="test-leak", of=tests[r].path, distance=d, detail=detail))
    pairs.sort(key=lambda p: (p.b, p.distance, p.a))
    return decisions, pairs


def cluster(items: list[Item], k: int, kind: str, apart: Apart = never_apart) -> tuple[list[Decision], list[Pair]]:
    """Greedy clusters in keeper order; see the module docstring for the rules.

    A keeper does not take an item a person said is not its duplicate (`apart`): that item stays
    free to start or join another cluster.
    """
    if len(items) < 2:
        return [], []
    ordered = sorted(items, key=keeper_key)
    uniq, inverse = unique_codes(codes_from_hex([it.hash for it in ordered]))
    indptr, nbr, nbr_dist = _adjacency(len(uniq), *search_unique(uniq, k))
    members = _members_by_code(inverse, len(uniq))
    left = np.array([len(m) for m in members])  # members of each code not yet in a cluster
    taken = np.zeros(len(ordered), dtype=bool)
    decisions: list[Decision] = []
    pairs: list[Pair] = []
    for pos, code in enumerate(inverse.tolist()):
        if taken[pos]:
            continue
        keeper = ordered[pos]
        taken[pos], left[code] = True, left[code] - 1
        joined = []
        near = zip(nbr[indptr[code]:indptr[code + 1]].tolist(), nbr_dist[indptr[code]:indptr[code + 1]].tolist())
        for u, _ in [(code, 0), *near]:
            if not left[u]:
                continue
            for m in members[u]:
                if not taken[m] and not apart(keeper, ordered[m]):
                    taken[m], left[u] = True, left[u] - 1
                    joined.append(m)
        cluster_items = [keeper] + [ordered[m] for m in sorted(joined)]
        found, found_pairs = settle(cluster_items, _distance, k, kind, apart)
        decisions += found
        pairs += found_pairs
    return decisions, pairs


def _distance(a: Item, b: Item) -> int:
    return (int(a.hash, 16) ^ int(b.hash, 16)).bit_count()


def _adjacency(n: int, ui: np.ndarray, uj: np.ndarray, ud: np.ndarray):
    """CSR neighbour lists (both directions) of the distinct codes."""
    src = np.concatenate([ui, uj])
    dst = np.concatenate([uj, ui])
    dist = np.concatenate([ud, ud])
    order = np.argsort(src, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))]).astype(np.int64)
    return indptr, dst[order], dist[order]


def _members_by_code(inverse: np.ndarray, n: int) -> list[list[int]]:
    """Row positions holding each distinct code, in keeper order."""
    order = np.argsort(inverse, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=n))])
    flat = order.tolist()
    return [flat[bounds[u]:bounds[u + 1]] for u in range(n)]
