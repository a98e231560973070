"""Wrong-class scores: out-of-sample class probabilities from a logistic regression on the embeddings,
judged by cleanlab's confident learning.

The regression learns from the originals only (the user's labels). Originals get K-fold
out-of-sample probabilities; scraped and test images get the probabilities of the model fitted on
all originals, which never saw them. cleanlab's per-class confident thresholds come from the
originals, so a scraped image's verdict does not depend on which other scraped images are there
(a second run after the moves judges the rest the same way). A scraped image is wrong-class when
some other class is the likeliest of the classes it clears the confident threshold of. Originals
are ranked by cleanlab.filter.find_label_issues and only listed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass
class ClassProbabilities:
    probs: np.ndarray            # (n images, n classes), out of sample for every image
    quality: np.ndarray          # cleanlab label quality (self-confidence) of each image's own label
    thresholds: np.ndarray       # (n classes,) cleanlab confident thresholds from the originals
    original_issues: np.ndarray  # bool per image: originals cleanlab ranks as label issues


def class_probabilities(x: np.ndarray, labels: np.ndarray, is_original: np.ndarray, n_classes: int, folds: int,
                        seed: int) -> ClassProbabilities:
    """K-fold probabilities for originals, fitted-on-all-originals probabilities for the rest."""
    from cleanlab.count import get_confident_thresholds
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    orig = np.flatnonzero(is_original)
    xo, yo = x[orig], labels[orig]
    smallest = int(np.bincount(yo, minlength=n_classes).min())
    k = max(2, min(folds, smallest))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn convergence chatter goes nowhere near the terminal
        oof = cross_val_predict(_model(seed), xo, yo, cv=StratifiedKFold(k, shuffle=True, random_state=seed),
                                method="predict_proba")
        probs = np.zeros((len(x), n_classes))
        rest = np.flatnonzero(~is_original)
        if len(rest):
            probs[rest] = _model(seed).fit(xo, yo).predict_proba(x[rest])
        probs[orig] = oof
        thresholds = get_confident_thresholds(yo, oof)
        issues = np.zeros(len(x), dtype=bool)
        issues[orig] = find_label_issues(yo, oof)
    quality = get_label_quality_scores(labels, probs)
    return ClassProbabilities(probs, quality, thresholds, issues)


def _model(seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


def looks_like(probs: np.ndarray, thresholds: np.ndarray, own: int) -> int | None:
    """The class an image (one row of probabilities) looks like when it is not its own, else None.

    Confident learning's rule: of the classes whose probability reaches their confident threshold,
    the likeliest; no class reaching its threshold means no verdict.
    """
    above = probs >= thresholds
    if not above.any():
        return None
    best = int(np.argmax(np.where(above, probs, -1.0)))
    return best if best != own else None
