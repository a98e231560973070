"""Off-topic scores: how far an image lies from its class's originals, by faiss k-nearest neighbours.

An image's distance to a class is the mean cosine distance to its k nearest originals of that
class (an original leaves itself out). The threshold is calibrated on the originals: each class's
leave-one-out distances are divided by their median (classes differ in spread), the ratios of all
classes are pooled, and a class's threshold is the pooled `quantile` times its own median. An
image further than that from its own class is off-topic unless it lies within another class's
threshold, which makes it a candidate for wrong-class instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Neighbourhood:
    """Distances of every image to every class's originals, and the thresholds."""

    distance: np.ndarray                 # (n images, n classes) mean cosine distance to the k nearest originals
    neighbours: list[np.ndarray]         # per class: (n images, k) row indices of those originals (-1: none)
    threshold: np.ndarray                # (n classes,) off-topic threshold per class
    calibrated: bool                     # False when --offtopic-threshold fixed it


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (cosine similarity becomes an inner product)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def neighbourhood(x: np.ndarray, labels: np.ndarray, is_original: np.ndarray, n_classes: int, k: int,
                  quantile: float, fixed: float | None = None) -> Neighbourhood:
    """kNN distances of the rows of x (unit vectors) to each class's originals, with calibrated thresholds."""
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
    threshold = _calibrate(loo, quantile) if fixed is None else np.full(n_classes, fixed)
    return Neighbourhood(distance, neighbours, threshold, fixed is None)


def _drop_self(ids: np.ndarray, kc: int) -> np.ndarray:
    """Column positions of the first kc neighbours of each row that are not the row itself."""
    n = len(ids)
    not_self = ids != np.arange(n)[:, None]
    order = np.argsort(~not_self, axis=1, kind="stable")  # the row's own entry (if found) goes last
    return order[:, :kc]


def _calibrate(loo: list[np.ndarray], quantile: float) -> np.ndarray:
    """Per class: the pooled `quantile` of (leave-one-out distance / class median) times the class median."""
    medians = np.array([max(float(np.median(d)), 1e-6) for d in loo])
    ratios = np.concatenate([d / m for d, m in zip(loo, medians)])
    return float(np.quantile(ratios, quantile)) * medians


def nearest_other(distance: np.ndarray, threshold: np.ndarray, own: int) -> int | None:
    """The other class whose originals an image (one row of distances) lies within, closest first."""
    rel = distance / threshold
    rel[own] = np.inf
    best = int(np.argmin(rel))
    return best if rel[best] <= 1.0 else None
