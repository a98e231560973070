"""Exact Hamming-distance search over packed binary codes (independent of the hash algorithm).

Codes are uint8 arrays of shape (n, nbytes) (64-bit hashes: nbytes=8), made from hex strings by
`codes_from_hex`. Every function is exact: no pair within the radius is missed.

- `pairs_within(codes, k)`: all pairs i < j with distance <= k.
- `cross_within(queries, refs, k)`: all (query, ref) pairs with distance <= k (leak checks).

Identical codes are searched once (`unique_codes`) and expanded afterwards, so the skew of real
perceptual hashes (placeholder images, blank frames) costs nothing in the search. The search
itself is faiss-cpu's brute-force `IndexBinaryFlat.range_search` (~3.5 G comparisons/s on two
cores), run over the upper triangle only: the queries of one chunk go against the codes from that
chunk on. faiss' radius is strict (d < radius), so it is called with k + 1. `backend="numpy"`
runs the same search with vectorised numpy (popcount of XOR), the reference the tests compare to.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

CHUNK = 16384  # queries per range_search call: bounds memory for the result lists


def codes_from_hex(hashes: Sequence[str]) -> np.ndarray:
    """Pack hex hashes (all the same length, even) into an (n, nbytes) uint8 array."""
    if len(hashes) == 0:
        return np.zeros((0, 8), dtype=np.uint8)
    lengths = set(map(len, hashes))
    if len(lengths) != 1:
        raise ValueError(f"hashes of different lengths: {sorted(lengths)}")
    (length,) = lengths
    if length == 0 or length % 2:
        raise ValueError(f"hash length {length} is not a whole number of bytes")
    try:
        raw = bytes.fromhex("".join(hashes))
    except ValueError as exc:
        raise ValueError(f"not a hex hash: {exc}") from None
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(hashes), length // 2).copy()


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamming distances between two code arrays of the same shape (or broadcastable)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=-1, dtype=np.int32)


def unique_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct codes sorted, inverse) so that codes == uniq[inverse]."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if len(codes) == 0:
        return codes, np.zeros(0, dtype=np.int64)
    keys = codes.view(np.dtype((np.void, codes.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return codes[first], inverse.ravel()


def _check(codes: np.ndarray, k: int) -> np.ndarray:
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if codes.ndim != 2:
        raise ValueError("codes must be a 2-D uint8 array (n, nbytes)")
    if k < 0 or k > codes.shape[1] * 8:
        raise ValueError(f"radius {k} is outside 0..{codes.shape[1] * 8}")
    return codes


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32)


def _faiss_index(codes: np.ndarray):
    import faiss

    index = faiss.IndexBinaryFlat(codes.shape[1] * 8)
    index.add(codes)
    return index


def _range_faiss(queries: np.ndarray, refs: np.ndarray, k: int, index=None):
    """(lims, refs idx, distances) for each query: faiss range search with the strict radius k+1."""
    index = index if index is not None else _faiss_index(refs)
    lims, dist, idx = index.range_search(queries, k + 1)
    return lims, idx.astype(np.int64), dist.astype(np.int32)


def _range_numpy(queries: np.ndarray, refs: np.ndarray, k: int, index=None):
    """The same as _range_faiss with numpy, a block of queries at a time (the reference)."""
    words = _as_words(refs)
    q_words = _as_words(queries)
    idx_parts, dist_parts, counts = [], [], []
    block = max(1, 2_000_000 // max(len(refs), 1))
    for s in range(0, len(queries), block):
        d = np.bitwise_count(q_words[s:s + block, None, :] ^ words[None, :, :]).sum(axis=-1, dtype=np.int32)
        qi, ri = np.nonzero(d <= k)
        counts.append(np.bincount(qi, minlength=len(d)))
        idx_parts.append(ri.astype(np.int64))
        dist_parts.append(d[qi, ri])
    counts_all = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    lims = np.concatenate([[0], np.cumsum(counts_all)]).astype(np.int64)
    idx = np.concatenate(idx_parts) if idx_parts else np.zeros(0, np.int64)
    dist = np.concatenate(dist_parts) if dist_parts else np.zeros(0, np.int32)
    return lims, idx, dist


def _as_words(codes: np.ndarray) -> np.ndarray:
    """View codes as uint64 words where the width allows (fewer popcounts), else bytes."""
    if codes.shape[1] % 8 == 0:
        return np.ascontiguousarray(codes).view(np.uint64)
    return codes


_BACKENDS = {"faiss": _range_faiss, "numpy": _range_numpy}


def _backend(name: str):
    if name == "auto":
        try:
            import faiss  # noqa: F401
        except ImportError:
            return _range_numpy
        return _range_faiss
    if name not in _BACKENDS:
        raise ValueError(f"unknown search backend {name!r} (faiss, numpy, auto)")
    return _BACKENDS[name]


def _lims_to_rows(lims: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(lims) - 1, dtype=np.int64), np.diff(lims.astype(np.int64)))


def search_unique(codes: np.ndarray, k: int, *, backend: str = "auto", chunk: int = CHUNK):
    """All pairs i < j within k among `codes` (assumed distinct; identical rows would pair at 0)."""
    codes = _check(codes, k)
    n = len(codes)
    if n < 2:
        return _empty()
    search = _backend(backend)
    out_i, out_j, out_d = [], [], []
    for s in range(0, n, chunk):
        queries, refs = codes[s:s + chunk], codes[s:]
        lims, idx, dist = search(queries, refs, k)
        rows = _lims_to_rows(lims)
        keep = idx > rows  # upper triangle; refs start at s as the queries do
        out_i.append(rows[keep] + s)
        out_j.append(idx[keep] + s)
        out_d.append(dist[keep])
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)


def expand_pairs(inverse: np.ndarray, ui: np.ndarray, uj: np.ndarray, ud: np.ndarray):
    """Turn pairs of distinct codes back into pairs of rows (plus the rows sharing one code)."""
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=int(inverse.max()) + 1 if len(inverse) else 0)
    starts = np.concatenate([[0], np.cumsum(counts)])
    members = [order[starts[u]:starts[u + 1]] for u in range(len(counts))]
    out_i, out_j, out_d = [], [], []
    for u in np.nonzero(counts > 1)[0]:  # identical codes: distance 0
        m = members[u]
        a, b = np.triu_indices(len(m), 1)
        out_i.append(m[a])
        out_j.append(m[b])
        out_d.append(np.zeros(len(a), np.int32))
    single = (counts[ui] == 1) & (counts[uj] == 1)  # the common case, vectorised
    out_i.append(order[starts[ui[single]]])
    out_j.append(order[starts[uj[single]]])
    out_d.append(ud[single])
    for a, b, d in zip(ui[~single], uj[~single], ud[~single]):
        ma, mb = members[a], members[b]
        out_i.append(np.repeat(ma, len(mb)))
        out_j.append(np.tile(mb, len(ma)))
        out_d.append(np.full(len(ma) * len(mb), d, np.int32))
    i, j = np.concatenate(out_i), np.concatenate(out_j)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return lo.astype(np.int64), hi.astype(np.int64), np.concatenate(out_d).astype(np.int32)


def pairs_within(codes: np.ndarray, k: int, *, backend: str = "auto", chunk: int = CHUNK):
    """All row pairs (i, j, distance) with i < j and Hamming distance <= k, sorted by (i, j)."""
    codes = _check(codes, k)
    if len(codes) < 2:
        return _empty()
    uniq, inverse = unique_codes(codes)
    ui, uj, ud = search_unique(uniq, k, backend=backend, chunk=chunk)
    i, j, d = expand_pairs(inverse, ui, uj, ud)
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


def cross_within(queries: np.ndarray, refs: np.ndarray, k: int, *, backend: str = "auto", chunk: int = CHUNK):
    """All (query row, ref row, distance) with distance <= k, sorted by (query, ref)."""
    queries, refs = _check(queries, k), _check(refs, k)
    if len(queries) == 0 or len(refs) == 0:
        return _empty()
    if queries.shape[1] != refs.shape[1]:
        raise ValueError(f"codes of different widths: {queries.shape[1] * 8} and {refs.shape[1] * 8} bits")
    search = _backend(backend)
    index = _faiss_index(refs) if search is _range_faiss else None
    out_q, out_r, out_d = [], [], []
    for s in range(0, len(queries), chunk):
        lims, idx, dist = search(queries[s:s + chunk], refs, k, index)
        out_q.append(_lims_to_rows(lims) + s)
        out_r.append(idx)
        out_d.append(dist)
    q, r, d = np.concatenate(out_q), np.concatenate(out_r), np.concatenate(out_d)
    order = np.lexsort((r, q))
    return q[order], r[order], d[order]
