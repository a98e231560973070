"""Ways to calibrate vet's off-topic verdict, compared on real photographs with real ImageNet features.

Each method sees what vet sees (unit embeddings of the originals and of the scraped images of a
task, the class each is filed under) and says off-topic / wrong-class / keep for each scraped
image. Figures per task x originals per class, mean over seeds: off-topic recall, wrong-class
recall, share of good scraped photos set aside, precision of "set aside".

    python benchmarks/bench_vet_methods.py --data ../shared/realdata \
        --weights ../shared/realdata/mnv2_imagenet_float.pth [--seeds 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import realdata  # noqa: E402

from datacurate.vet.options import VetOptions  # noqa: E402


def shipped(keep_recognised: bool, quantile: float = 0.98, k: int = 5, prob: float = 0.9, within: float = 3.0) -> Callable:
    """The rule vet shipped with before 2026-12 (kept here to compare): a threshold at the pooled `quantile`
    of the originals' leave-one-out distances; far images near another class's originals and classified
    as it are wrong-class; far images the classifier confidently calls their own class are kept (the
    "recognised member" rule); cleanlab's confident thresholds for wrong-class."""
    def judge(x, labels, is_orig, classes):
        from datacurate.vet.scoring import leave_one_out_threshold, neighbourhood

        near = neighbourhood(x, labels, is_orig, len(classes), k)
        thr = leave_one_out_threshold(near.loo, quantile)
        probs, conf = _originals_classifier(x, labels, is_orig, len(classes))
        out = {}
        for i in np.flatnonzero(~is_orig):
            own = labels[i]
            dist = near.distance[i, own]
            above = probs[i] >= conf
            looks = int(np.argmax(np.where(above, probs[i], -1.0))) if above.any() else None
            looks = None if looks == own else looks
            if dist > thr[own]:
                rel = near.distance[i] / thr
                rel[own] = np.inf
                other = int(np.argmin(rel)) if rel.min() <= 1 else None
                other = other if other is not None and looks == other else None
                recognised = (keep_recognised and dist <= within * thr[own]
                              and probs[i, own] >= min(float(conf[own]), prob))
                if other is not None:
                    out[i] = "wrong-class"
                elif not recognised:
                    out[i] = "off-topic"
                elif looks is not None:
                    out[i] = "wrong-class"
            elif looks is not None:
                out[i] = "wrong-class"
        return out
    return judge


def _originals_classifier(x, labels, is_orig, n_classes):
    """Probabilities of a logistic regression fitted on the originals, and cleanlab's confident thresholds."""
    import warnings

    from cleanlab.count import get_confident_thresholds
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from datacurate.vet.judge import _model

    orig = np.flatnonzero(is_orig)
    k = max(2, min(5, int(np.bincount(labels[orig]).min())))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oof = cross_val_predict(_model(0), x[orig], labels[orig], cv=StratifiedKFold(k, shuffle=True, random_state=0),
                                method="predict_proba")
        probs = _model(0).fit(x[orig], labels[orig]).predict_proba(x)
    probs[orig] = oof
    return probs, get_confident_thresholds(labels[orig], oof)


def current(**over) -> Callable:
    """vet as it is now in the package (its defaults, or `over`)."""
    def judge(x, labels, is_orig, classes):
        from datacurate.vet.judge import judge_all

        source = np.where(is_orig, "original", "scraped")
        j = judge_all(x, labels, source, len(classes), VetOptions(**over))
        return {i: v.reason for i, v in j.verdicts.items() if not is_orig[i]}
    return judge


METHODS: dict[str, Callable] = {
    "shipped (recognised rule)": shipped(True),
    "shipped, no recognised rule": shipped(False),
}


def figures(flags: dict[int, str], truth: list[str]) -> dict[str, float]:
    t = np.array(truth)
    got = np.array([flags.get(i, "") for i in range(len(truth))])
    out = {}
    for kind in ("off-topic", "wrong-class"):
        out[kind] = float(((got != "") & (t == kind)).sum() / max(1, (t == kind).sum()))  # set aside, any reason
    out["good set aside"] = float(((got != "") & (t == "good")).sum() / max(1, (t == "good").sum()))
    out["precision"] = float(((got != "") & (t != "good")).sum() / max(1, (got != "").sum()))
    return out


def run(data: Path, weights: Path, work: Path, seeds: int, originals: list[int], methods: dict[str, Callable]) -> list:
    rows = []
    for task in realdata.tasks(data, work / "offtopic"):
        files = sorted({f for fs in task.classes.values() for f in fs} | set(task.offtopic))
        vec = realdata.embeddings(files, weights, work / "emb")
        classes = list(task.classes)
        for n_orig in originals:
            per: dict[str, list[dict]] = {m: [] for m in methods}
            for seed in range(seeds):
                d = realdata.draw(task, n_orig, seed)
                items = [(f, c, True, "original") for c in classes for f in d.originals[c]]
                items += [(f, c, False, t) for c in classes for f, t in d.scraped[c]]
                x = np.stack([vec[f] for f, *_ in items])
                x /= np.linalg.norm(x, axis=1, keepdims=True)
                labels = np.array([classes.index(c) for _, c, _, _ in items])
                is_orig = np.array([o for _, _, o, _ in items])
                scraped = np.flatnonzero(~is_orig)
                truth = [items[i][3] for i in scraped]
                for name, judge in methods.items():
                    flags = judge(x, labels, is_orig, classes)
                    per[name].append(figures({k: flags[i] for k, i in enumerate(scraped) if i in flags}, truth))
            for name, figs in per.items():
                mean = {k: float(np.mean([f[k] for f in figs])) for k in figs[0]}
                spread = {k: float(np.std([f[k] for f in figs])) for k in figs[0]}
                rows.append((task.name, n_orig, name, mean, spread))
                print(f"{task.name:7s} {n_orig:3d}  {name:40s} " + "  ".join(
                    f"{k} {mean[k]:.3f}±{spread[k]:.3f}" for k in mean), flush=True)
    return rows


def markdown(rows: list) -> str:
    out = ["| task | originals/class | method | off-topic recall | wrong-class recall | good set aside | precision |",
           "|---|---|---|---|---|---|---|"]
    for task, n, name, m, s in rows:
        out.append(f"| {task} | {n} | {name} | " + " | ".join(
            f"{m[k]:.2f} ± {s[k]:.2f}" for k in ("off-topic", "wrong-class", "good set aside", "precision")) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/datacurate-vetbench"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--originals", type=int, nargs="+", default=[10, 40])
    args = ap.parse_args()
    methods = {**METHODS, **{f"scraped pool, z {z}": current(offtopic_z=z) for z in (2.0, 2.5, 3.0)},
               "scraped pool, z 2.25 (vet now)": current()}
    print(markdown(run(args.data, args.weights, args.work, args.seeds, args.originals, methods)))


if __name__ == "__main__":
    main()
