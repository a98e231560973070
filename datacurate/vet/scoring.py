"""Off-topic scores: how far an image lies from its class's originals, by faiss k-nearest neighbours.

An image's distance to a class is the mean cosine distance to its k nearest originals of that
class (an original leaves itself out). Thresholds are placed by vet.judge; the originals' own
leave-one-out distances are kept here for its fallback (few scraped images): each class's
distances are divided by their median (classes differ in spread), the ratios of all classes are
pooled, and a class's threshold is the pooled `quantile` times its own median.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Neighbourhood:
    """Distances of every image to every class's originals, and the thresholds."""

    distance: np.ndarray                 # (n images, n classes) mean cosine distance to the k nearest originals
    neighbours: list[np.ndarray]         # per class: (n images, k) row indices of those originals (-1: none)
    threshold: np.ndarray                # (n classes,) off-topic threshold per class (placed by vet.judge)
    loo: list[np.ndarray]                # per class: its originals' leave-one-out distances


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (cosine similarity becomes an inner product)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def neighbourhood(x: np.ndarray, labels: np.ndarray, is_original: np.ndarray, n_classes: int, k: int) -> Neighbourhood:
    """kNN distances of the rows of x (unit vectors) to each class's originals."""
    import faiss

    n = len(x)
    distance = np.full((n, n_classes), np.inf, dtype=np.float64)
    neighbours: list[np.ndarray] = []
    loo: list[np.ndarray] = []
    for c in range(n_classes):
        members = np.flatnonzero(is_original & (labels == c))
        kc = min(k, len(members) - 1)
        index = faiss.IndexFlatIP(x.shape[1])
        index.add(x[members])
        sims, found = index.search(x, kc + 1)
        ids = np.where(found >= 0, members[np.clip(found, 0, None)], -1)
        keep = _drop_self(ids, kc)
        near_sims = np.take_along_axis(sims, keep, axis=1)
        distance[:, c] = 1.0 - near_sims.mean(axis=1)
        neighbours.append(np.take_along_axis(ids, keep, axis=1))
        loo.append(distance[members, c])
    return Neighbourhood(distance, neighbours, np.zeros(n_classes), loo)


def _drop_self(ids: np.ndarray, kc: int) -> np.ndarray:
    """Column positions of the first kc neighbours of each row that are not the row itself."""
    n = len(ids)
    not_self = ids != np.arange(n)[:, None]
    order = np.argsort(~not_self, axis=1, kind="stable")  # the row's own entry (if found) goes last
    return order[:, :kc]


def leave_one_out_threshold(loo: list[np.ndarray], quantile: float) -> np.ndarray:
    """Per class: the pooled `quantile` of (leave-one-out distance / class median) times the class median."""
    medians = np.array([max(float(np.median(d)), 1e-6) for d in loo])
    ratios = np.concatenate([d / m for d, m in zip(loo, medians)])
    return float(np.quantile(ratios, quantile)) * medians
