"""`fit-head`: a scikit-learn SVM or logistic regression on the features of a run's network (or a backbone).

The features are what the network's last Linear classifies (or a torchvision backbone's pooled features),
of the plain centre crops of data/split/train and valid. The classifier is saved as
runs/<run>/heads/<classifier>.pkl with a .json beside it; `evaluate` and `predict` use it with
`--head-from <classifier>`. The .pkl is a pickle: load only heads you fitted yourself.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from datacurate.core.terminal import progress
from datacurate.core.errors import UserError
from datacurate.core.fsutil import atomic_path, atomic_write_text
from datacurate.vision.data import ImageSet, make_loader, scan_folder, to_input
from datacurate.vision.features import backbone_model, features
from datacurate.vision.runs import load_run
from datacurate.core.workspace import Workspace

CLASSIFIERS = ("svm", "logreg")


@dataclass
class FitHeadResult:
    run: str
    classifier: str
    features: str  # "run" or the backbone's name
    dim: int
    train_images: int
    valid_images: int
    valid_acc: float
    network_valid_acc: float
    path: Path


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise UserError("fit-head needs scikit-learn (a datacurate dependency): pip install scikit-learn") from None


def make_classifier(kind: str, c: float, seed: int, smallest_class: int = 5):
    """A scaler + SVM (RBF, sigmoid-calibrated probabilities) or logistic regression pipeline."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if kind == "svm":
        if smallest_class < 2:
            raise UserError("fit-head --classifier svm calibrates its probabilities by cross-validation: every class needs 2 train images")
        svm = CalibratedClassifierCV(SVC(C=c, random_state=seed), ensemble=False, cv=min(5, smallest_class))
        return make_pipeline(StandardScaler(), svm)
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))


def extract(model, samples, pre, batch_size: int, workers: int, device, quiet: bool, desc: str,
            net=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(features, labels, the network's predictions when `net` is given) of the plain crops of `samples`."""
    loader = make_loader(ImageSet(samples, pre), batch_size, workers, shuffle=False)
    feats, labels, preds = [], [], []
    for images, y, _bad in progress(loader, total=len(loader), desc=desc, quiet=quiet):
        if not len(y):
            continue
        x = to_input(images, device, pre, False)
        feats.append(features(model, x).cpu())
        labels.append(y)
        if net is not None:
            with torch.no_grad():
                preds.append(net(x).argmax(1).cpu())
    if not feats:
        raise UserError(f"no image of {desc} could be decoded")
    return torch.cat(feats), torch.cat(labels), torch.cat(preds) if preds else None


def fit_head(ws: Workspace, run: str, *, classifier: str = "svm", backbone: str | None = None,
             backbone_weights: str = "imagenet", c: float = 1.0, batch_size: int = 32, workers: int = 0,
             device: str = "auto", quiet: bool = False) -> FitHeadResult:
    """Fit `classifier` on train features, score it and the network's own head on valid, save it in the run."""
    if classifier not in CLASSIFIERS:
        raise UserError(f"--classifier {classifier!r} is not one of {', '.join(CLASSIFIERS)}")
    if not c > 0:
        raise UserError(f"-C must be above 0, got {c}")
    _sklearn()
    lr = load_run(ws, run, device)
    dev = next(lr.model.parameters()).device
    classes, train_samples = scan_folder(ws.split_dir / "train", lr.classes)
    _, valid_samples = scan_folder(ws.split_dir / "valid", lr.classes)
    if not train_samples or not valid_samples:
        raise UserError(f"fit-head needs images in {ws.split_dir / 'train'} and {ws.split_dir / 'valid'}")
    feat_model = backbone_model(backbone, backbone_weights, dev) if backbone else lr.model
    xt, yt, _ = extract(feat_model, train_samples, lr.pre, batch_size, workers, dev, quiet, "train features")
    xv, yv, pv = extract(feat_model, valid_samples, lr.pre, batch_size, workers, dev, quiet, "valid features", net=lr.model)
    if len(set(yt.tolist())) < 2:
        raise UserError("fit-head needs train images of at least two classes")
    seed = int(lr.config.get("seed", 0))
    smallest = int(torch.bincount(yt)[torch.bincount(yt) > 0].min())
    clf = make_classifier(classifier, c, seed, smallest).fit(xt.numpy(), yt.numpy())
    acc = float((torch.as_tensor(clf.predict(xv.numpy())) == yv).float().mean())
    net_acc = float((pv == yv).float().mean())
    out = lr.run_dir / "heads" / f"{classifier}.pkl"
    with atomic_path(out) as tmp:
        tmp.write_bytes(pickle.dumps(clf))
    meta = {"classifier": classifier, "C": c, "features": "backbone" if backbone else "run", "backbone": backbone,
            "backbone_weights": backbone_weights if backbone else None, "dim": int(xt.shape[1]), "classes": classes,
            "train_images": len(yt), "valid_images": len(yv), "valid_acc": acc, "network_valid_acc": net_acc}
    atomic_write_text(out.with_suffix(".json"), json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return FitHeadResult(lr.name, classifier, backbone or "run", int(xt.shape[1]), len(yt), len(yv), acc, net_acc, out)


def load_classic(run_dir: Path, name: str):
    """(classifier, meta) saved by fit_head in `run_dir`; a missing one is a UserError saying how to fit it."""
    if name not in CLASSIFIERS:
        raise UserError(f"--head-from {name!r} is not one of {', '.join(CLASSIFIERS)}")
    path = run_dir / "heads" / f"{name}.pkl"
    if not path.is_file():
        raise UserError(f"run {run_dir.name!r} has no fitted {name} head; fit one with `datacurate fit-head {run_dir.name} --classifier {name}`")
    _sklearn()
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        clf = pickle.loads(path.read_bytes())
    except Exception as exc:  # noqa: BLE001 - any unreadable file means "fit it again"
        raise UserError(f"{path} could not be read ({type(exc).__name__}); fit it again with `datacurate fit-head`") from None
    return clf, meta
