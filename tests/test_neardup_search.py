"""Exactness of the Hamming search against brute force (faiss and numpy backends)."""

from __future__ import annotations

import numpy as np
import pytest

from datacurate.clean.search import codes_from_hex, cross_within, hamming, pairs_within, unique_codes


def clustered_codes(n: int, seed: int, centres: int = 40, max_flips: int = 14) -> np.ndarray:
    """Codes around a few centres (skewed, like real hashes), some identical, flips of 0..max_flips bits."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (centres, 8), dtype=np.uint8)
    codes = base[rng.integers(0, centres, n)].copy()
    bits = np.unpackbits(codes, axis=1)
    for row in range(n):
        flips = rng.choice(64, size=rng.integers(0, max_flips + 1), replace=False)
        bits[row, flips] ^= 1
    return np.packbits(bits, axis=1)


def brute(codes: np.ndarray, k: int) -> set[tuple[int, int, int]]:
    d = np.bitwise_count(codes[:, None, :] ^ codes[None, :, :]).sum(-1)
    i, j = np.nonzero(np.triu(d <= k, 1))
    return {(int(a), int(b), int(d[a, b])) for a, b in zip(i, j)}


@pytest.mark.parametrize("backend", ["faiss", "numpy"])
@pytest.mark.parametrize("k", [0, 1, 6, 10, 16])
def test_pairs_within_equals_brute_force(backend: str, k: int) -> None:
    codes = clustered_codes(700, seed=k)
    i, j, d = pairs_within(codes, k, backend=backend, chunk=97)  # small chunks cross block edges
    got = set(zip(i.tolist(), j.tolist(), d.tolist()))
    want = brute(codes, k)
    assert got == want
    assert len(got) == len(i), "no pair reported twice"
    assert want, "the data must have pairs to find"


@pytest.mark.parametrize("backend", ["faiss", "numpy"])
def test_cross_within_equals_brute_force(backend: str) -> None:
    codes = clustered_codes(600, seed=7)
    q, r = codes[:150], codes[150:]
    qi, ri, d = cross_within(q, r, 10, backend=backend, chunk=41)
    full = np.bitwise_count(q[:, None, :] ^ r[None, :, :]).sum(-1)
    wi, wj = np.nonzero(full <= 10)
    assert set(zip(qi.tolist(), ri.tolist(), d.tolist())) == {(int(a), int(b), int(full[a, b])) for a, b in zip(wi, wj)}
    assert len(wi) > 0


@pytest.mark.parametrize("backend", ["faiss", "numpy"])
def test_radius_is_inclusive_at_the_boundary(backend: str) -> None:
    rng = np.random.default_rng(3)
    for k in (0, 5, 10, 20):
        base = rng.integers(0, 256, (1, 8), dtype=np.uint8)
        bits = np.unpackbits(base, axis=1)
        at_k, past_k = bits.copy(), bits.copy()
        flips = rng.choice(64, size=k + 1, replace=False)
        at_k[0, flips[:k]] ^= 1
        past_k[0, flips] ^= 1
        codes = np.concatenate([base, np.packbits(at_k, axis=1), np.packbits(past_k, axis=1)])
        i, j, d = pairs_within(codes, k, backend=backend)
        found = {(a, b): dist for a, b, dist in zip(i.tolist(), j.tolist(), d.tolist())}
        assert found.get((0, 1)) == k, f"distance {k} must be found at radius {k}"
        assert (0, 2) not in found, f"distance {k + 1} must not be found at radius {k}"
        qi, ri, _ = cross_within(codes[:1], codes[1:], k, backend=backend)
        assert ri.tolist() == [0]


def test_identical_codes_are_expanded_to_every_pair() -> None:
    codes = codes_from_hex(["ffff0000ffff0000"] * 5 + ["ffff0000ffff0001"] * 3 + ["0123456789abcdef"])
    i, j, d = pairs_within(codes, 1)
    assert len(i) == 36 - 8 and set(d.tolist()) == {0, 1}  # all pairs among the first 8 rows
    assert 8 not in set(i.tolist()) | set(j.tolist())
    uniq, inverse = unique_codes(codes)
    assert len(uniq) == 3 and np.array_equal(uniq[inverse], codes)


def test_codes_from_hex_round_trip_and_errors() -> None:
    codes = codes_from_hex(["00000000000000ff", "8000000000000000"])
    assert hamming(codes[0], codes[1]).item() == 9
    with pytest.raises(ValueError, match="different lengths"):
        codes_from_hex(["00", "0000"])
    with pytest.raises(ValueError, match="hex"):
        codes_from_hex(["zz"])
    with pytest.raises(ValueError, match="radius"):
        pairs_within(codes, 65)
    assert pairs_within(codes[:1], 10)[0].size == 0
    assert cross_within(codes, codes[:0], 10)[0].size == 0
