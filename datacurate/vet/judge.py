"""vet's verdicts from embeddings alone: off-topic, wrong-class or keep, each with the rule that decided.

Chosen by measuring on real photographs with real ImageNet features (benchmarks/bench_vet_methods.py,
table in benchmarks/RESULTS.md), not on generated pictures:

- **off-topic**: an image's score is its mean cosine distance to the k nearest originals of its class.
  The threshold is placed on the scraped pool itself, which is mostly on-topic and far larger than
  a handful of originals: per class the median of its scraped images' scores plus `offtopic_z`
  times the median absolute deviation (x1.4826) pooled over all classes. A class with fewer than
  MIN_POOL scraped images falls back to the originals' own leave-one-out distances (pooled
  `offtopic_quantile`). The pool includes the images vet already holds in quarantine, so a second
  run judges the rest the same way.
- **wrong-class**: a logistic regression on the originals' embeddings (K-fold out of sample for the
  originals). A scraped image is wrong-class when another class is likelier than its own and that
  probability reaches the bar at which at most WRONG_CLASS_RATE of the originals themselves
  (out of fold) would be flagged: a weak classifier raises its own bar.
- **the judge**: the classifier's out-of-fold accuracy on the originals; no better than chance
  (binomial test) means the embeddings cannot tell the classes apart and nothing may move.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from datacurate.vet.options import VetOptions
from datacurate.vet.scoring import Neighbourhood, leave_one_out_threshold, neighbourhood

MIN_POOL = 12            # scraped images a class needs to calibrate on its pool
WRONG_CLASS_RATE = 0.03  # share of the originals the wrong-class bar may flag (out of fold)
MIN_BAR = 0.5
JUDGE_P = 0.01           # the judge must beat chance at this significance


@dataclass
class Verdict:
    """Why one image is set aside (reason empty: kept) and which rule said so."""

    reason: str
    rule: str
    score: float
    threshold: float
    looks_like: int | None = None


@dataclass
class Judge:
    """The classifier's quality on the originals it has not seen."""

    accuracy: float | None   # out-of-fold accuracy on the originals (None with one class)
    chance: float
    p_value: float | None
    originals: int

    @property
    def trusted(self) -> bool:
        return self.p_value is None or self.p_value < JUDGE_P

    def describe(self) -> str:
        if self.accuracy is None:
            return "one class: no classifier to check"
        return (f"out-of-fold accuracy {self.accuracy:.2f} on {self.originals} originals "
                f"(chance {self.chance:.2f}, p={self.p_value:.2g})")


@dataclass
class Judgement:
    """Everything vet decided about a set of embeddings."""

    near: Neighbourhood
    probs: np.ndarray | None          # (n, classes) out-of-sample class probabilities
    original_issues: np.ndarray       # originals cleanlab ranks as label issues (listed only)
    bar: np.ndarray | None            # per class: the wrong-class probability bar
    calibration: list[str]            # per class: how the off-topic threshold was set
    judge: Judge
    verdicts: dict[int, Verdict] = field(default_factory=dict)


def judge_all(x: np.ndarray, labels: np.ndarray, source: np.ndarray, n_classes: int, opts: VetOptions,
              *, judged: np.ndarray | None = None) -> Judgement:
    """Verdicts for the rows of x (unit vectors) filed under `labels`, from `source` original|scraped|test.

    `judged` (bool per row, default all): rows that get a verdict; the others (vet's own quarantine)
    only help calibrate.
    """
    judged = np.ones(len(x), dtype=bool) if judged is None else judged
    is_original = source == "original"
    near = neighbourhood(x, labels, is_original, n_classes, opts.neighbours)
    calibration = _place_thresholds(near, labels, source, n_classes, opts)
    probs, issues, bar, judge = _classifier(x, labels, is_original, n_classes, opts)
    out = Judgement(near, probs, issues, bar, calibration, judge)
    for i in np.flatnonzero(judged & (source != "test")):
        v = _verdict(i, labels[i], source[i], out)
        if v is not None:
            out.verdicts[i] = v
    return out


def _place_thresholds(near: Neighbourhood, labels, source, n_classes: int, opts: VetOptions) -> list[str]:
    """Fill near.threshold per class; returns how each was set."""
    own = near.distance[np.arange(len(labels)), labels]
    scraped = source == "scraped"
    if opts.offtopic_threshold is not None:
        near.threshold[:] = opts.offtopic_threshold
        return [f"fixed by offtopic_threshold {opts.offtopic_threshold}"] * n_classes
    loo = leave_one_out_threshold(near.loo, opts.offtopic_quantile)
    pools = [own[scraped & (labels == c)] for c in range(n_classes)]
    big = [c for c in range(n_classes) if len(pools[c]) >= MIN_POOL]
    notes = []
    if big:
        medians = {c: float(np.median(pools[c])) for c in big}
        spread = 1.4826 * float(np.median(np.concatenate([np.abs(pools[c] - medians[c]) for c in big])))
        n_pool = sum(len(pools[c]) for c in big)
    for c in range(n_classes):
        if c in big:
            near.threshold[c] = medians[c] + opts.offtopic_z * spread
            notes.append(f"scraped pool: median {medians[c]:.3f} of {len(pools[c])} images + {opts.offtopic_z:g} x MAD "
                         f"{spread:.3f} of {n_pool}")
        else:
            near.threshold[c] = loo[c]
            notes.append(f"originals: quantile {opts.offtopic_quantile:g} of {len(near.loo[c])} leave-one-out distances "
                         f"(under {MIN_POOL} scraped images)")
    return notes


def _classifier(x, labels, is_original, n_classes: int, opts: VetOptions):
    """Out-of-sample probabilities, listed originals, the wrong-class bar per class, and the judge."""
    n_orig = int(is_original.sum())
    if n_classes < 2:
        return None, np.zeros(len(x), dtype=bool), None, Judge(None, 1.0, None, n_orig)
    from cleanlab.filter import find_label_issues
    from scipy.stats import binomtest
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    orig = np.flatnonzero(is_original)
    xo, yo = x[orig], labels[orig]
    k = max(2, min(opts.folds, int(np.bincount(yo, minlength=n_classes).min())))
    probs = np.zeros((len(x), n_classes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn convergence chatter goes nowhere near the terminal
        oof = cross_val_predict(_model(opts.seed), xo, yo, cv=StratifiedKFold(k, shuffle=True, random_state=opts.seed),
                                method="predict_proba")
        rest = np.flatnonzero(~is_original)
        if len(rest):
            probs[rest] = _model(opts.seed).fit(xo, yo).predict_proba(x[rest])
        issues = np.zeros(len(x), dtype=bool)
        issues[orig] = find_label_issues(yo, oof)
    probs[orig] = oof
    hits = int((oof.argmax(1) == yo).sum())
    chance = float(np.bincount(yo).max() / len(yo))
    p = float(binomtest(hits, len(yo), chance, alternative="greater").pvalue)
    return probs, issues, _bars(oof, yo, n_classes), Judge(hits / len(yo), chance, p, len(yo))


def _bars(oof: np.ndarray, yo: np.ndarray, n_classes: int) -> np.ndarray:
    """The probability of another class at which at most WRONG_CLASS_RATE of the originals would be flagged."""
    other = oof.copy()
    other[np.arange(len(yo)), yo] = 0.0
    strongest = np.sort(other.max(axis=1))[::-1]
    allowed = int(WRONG_CLASS_RATE * len(strongest))  # originals the bar may flag (0 with fewer than 34)
    bar = max(MIN_BAR, float(strongest[min(allowed, len(strongest) - 1)]) + 1e-6)
    return np.full(n_classes, min(bar, 1.0))


def _model(seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


def _verdict(i: int, own: int, source: str, j: Judgement) -> Verdict | None:
    dist, thr = float(j.near.distance[i, own]), float(j.near.threshold[own])
    if source == "original":
        return _listed_original(i, own, j)
    other = _likelier_other(i, own, j)
    far = dist > thr
    if other is not None and (not far or j.near.distance[i, other] <= j.near.threshold[other]):
        rule = (f"another class is likelier, over the bar where at most {WRONG_CLASS_RATE:.0%} of the originals would "
                "be flagged out of fold" + ("" if not far else ", and it lies within that class's threshold"))
        return Verdict("wrong-class", rule, float(j.probs[i, other]), float(j.bar[other]), other)
    if far:
        return Verdict("off-topic", "distance to its class's originals over the threshold", dist, thr)
    return None


def _likelier_other(i: int, own: int, j: Judgement) -> int | None:
    """Another class likelier than its own, with a probability over that class's bar; else None."""
    if j.probs is None:
        return None
    row = j.probs[i].copy()
    row[own] = -1.0
    other = int(np.argmax(row))
    return other if row[other] > j.probs[i, own] and row[other] >= j.bar[other] else None


def _listed_original(i: int, own: int, j: Judgement) -> Verdict | None:
    """An original cleanlab ranks as a label issue, with the class it looks like (listed, not moved)."""
    if j.probs is None or not j.original_issues[i]:
        return None
    other = int(np.argmax(j.probs[i]))
    if other == own:
        return None
    return Verdict("wrong-class", "cleanlab ranks this original as a label issue", float(j.probs[i, other]),
                   float(j.bar[other]), other)
