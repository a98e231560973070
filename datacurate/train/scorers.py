"""What turns a batch of images into class probabilities for evaluate and predict.

A run's network (best.pt, or its EMA weights), a classic classifier fitted on the network's features by
`fit-head` (`--head-from svm`), or an exported ONNX / TorchScript file (`predict --model`). Each takes
uint8 batches, normalises them with the run's preprocessing, and returns softmax probabilities; with
test-time augmentation the views are scored in one batch and averaged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from datacurate.core.errors import UserError
from datacurate.train.export import onnx_session, quiet_jit, sidecar
from datacurate.train.fithead import load_classic
from datacurate.vision.data import Preprocess, to_input
from datacurate.vision.device import pick_device
from datacurate.vision.features import backbone_model, features
from datacurate.vision.runs import load_run
from datacurate.vision.tta import average


@dataclass
class Scorer:
    """Normalised float batch -> probabilities (N, K) on the CPU."""

    name: str
    classes: list[str]
    pre: Preprocess
    device: torch.device
    fn: Callable[[torch.Tensor], torch.Tensor]
    run_dir: Path | None = None
    config: dict = field(default_factory=dict)  # the run's training options

    def probs(self, images: torch.Tensor, views: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 (N, C, H, W) or (N, V, C, H, W) -> (plain probabilities, view-averaged ones or None)."""
        n = len(images)
        if images.ndim == 5:
            images = images.flatten(0, 1)
        with torch.no_grad():
            p = self.fn(to_input(images, self.device, self.pre, False)).float().cpu()
        if views == 1:
            return p, None
        return average(p, n, views)


def network(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: torch.softmax(model(x).float(), 1)


def classic(model: nn.Module, clf, num_classes: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Probabilities of a scikit-learn classifier on the network's features (columns in the run's class order)."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        p = clf.predict_proba(features(model, x).cpu().numpy())
        out = torch.zeros(len(p), num_classes)
        out[:, torch.as_tensor(clf.classes_, dtype=torch.long)] = torch.as_tensor(p, dtype=torch.float32)
        return out

    return fn


def open_scorer(ws, run: str, *, device: str = "auto", head_from: str | None = None, ema: bool = False) -> Scorer:
    """The scorer of a run: its network, or the classic classifier `head_from` fitted by `datacurate fit-head`."""
    if head_from and ema:
        raise UserError("--head-from uses the classifier fitted on the run's own weights; it does not combine with --ema")
    lr = load_run(ws, run, device, ema=ema)
    dev = next(lr.model.parameters()).device
    if not head_from:
        return Scorer(lr.name, lr.classes, lr.pre, dev, network(lr.model), lr.run_dir, lr.config)
    clf, meta = load_classic(lr.run_dir, head_from)
    if meta.get("features") != "run":
        model = backbone_model(meta["backbone"], meta["backbone_weights"], dev)
    else:
        model = lr.model
    return Scorer(f"{lr.name} ({head_from})", lr.classes, lr.pre, dev, classic(model, clf, len(lr.classes)), lr.run_dir, lr.config)


def exported_scorer(path: str, device: str = "auto") -> tuple[Scorer, dict]:
    """An exported model file (ONNX or TorchScript) with the sidecar `export` wrote beside it."""
    p = Path(path)
    meta_path = sidecar(p)
    if not meta_path.exists() and p.with_suffix(".json").is_file():
        meta_path = p.with_suffix(".json")  # an export made before each format had its own description
    if not p.is_file():
        raise UserError(f"--model {path}: no such file")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        classes, pre = list(meta["classes"]), Preprocess.from_dict(meta["preprocess"])
    except FileNotFoundError:
        raise UserError(f"--model {path}: {meta_path.name} (classes and preprocessing, written by `datacurate export`) is missing") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"--model {path}: {meta_path} is not an export description ({exc})") from None
    if meta.get("format") == "onnx":
        sess = onnx_session(p)
        fn = lambda x: torch.softmax(torch.from_numpy(sess.run(None, {"input": x.cpu().numpy()})[0]), 1)  # noqa: E731
        return Scorer(p.name, classes, pre, torch.device("cpu"), fn, None, meta.get("config") or {}), meta
    dev = pick_device(device, False, False).device
    try:
        with quiet_jit():
            module = torch.jit.load(str(p), map_location=dev).eval()
    except Exception as exc:  # noqa: BLE001 - any load failure means "not a TorchScript file"
        raise UserError(f"--model {path} is not a loadable TorchScript file ({type(exc).__name__})") from None
    return Scorer(p.name, classes, pre, dev, network(module), None, meta.get("config") or {}), meta
