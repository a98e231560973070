"""Options of `datacurate vet` (datacurate.yaml section `vet:`), validated into one record."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from datacurate.errors import UserError

SECTION = "vet"
DEFAULTS: dict[str, Any] = {
    "backbone": "resnet50",        # any torchvision classification architecture
    "weights": "imagenet",         # imagenet | none | PATH (state dict or datacurate checkpoint)
    "run": None,                   # a datacurate run's model instead of a backbone (name, folder or .pt)
    "train_first": False,          # with `run`: train that run on the originals first when it does not exist
    "img_size": 224,               # Resize(img_size*255/224), CenterCrop(img_size); a run uses its own
    "batch_size": 64,
    "workers": None,               # DataLoader workers (None: min(8, CPUs - 1))
    "device": "auto",              # auto | cpu | cuda | mps
    "neighbours": 5,               # originals compared with per image (k of the kNN)
    "offtopic_quantile": 0.98,     # the threshold: this quantile of the originals' own leave-one-out distances
    "offtopic_threshold": None,    # a fixed cosine distance instead of the calibrated one
    "keep_recognised": True,       # far, but the classifier confidently finds its own class: not off-topic
    "recognised_prob": 0.9,        # ... confidently: own-class probability >= min(this, cleanlab's threshold)
    "recognised_within": 3.0,      # ... and no further than this many times its class's threshold
    "folds": 5,                    # K of the K-fold logistic regression on the originals
    "move_originals": False,       # originals are only listed unless this is true
    "seed": 0,
}


@dataclass(frozen=True)
class VetOptions:
    """Validated vet options (every key is also a flag: underscores become dashes)."""

    backbone: str = "resnet50"
    weights: str = "imagenet"
    run: str | None = None
    train_first: bool = False
    img_size: int = 224
    batch_size: int = 64
    workers: int | None = None
    device: str = "auto"
    neighbours: int = 5
    offtopic_quantile: float = 0.98
    offtopic_threshold: float | None = None
    keep_recognised: bool = True
    recognised_prob: float = 0.9
    recognised_within: float = 3.0
    folds: int = 5
    move_originals: bool = False
    seed: int = 0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "VetOptions":
        """Validate a resolved options dict (flag > yaml > default); bad values raise UserError."""
        v = dict(DEFAULTS, **values)
        opts = cls(
            backbone=_text("backbone", v["backbone"]),
            weights=_text("weights", v["weights"]),
            run=None if v["run"] is None else _text("run", v["run"]),
            train_first=_boolean("train_first", v["train_first"]),
            img_size=_integer("img_size", v["img_size"], 16),
            batch_size=_integer("batch_size", v["batch_size"], 1),
            workers=None if v["workers"] is None else _integer("workers", v["workers"], 0),
            device=_choice("device", v["device"], ("auto", "cpu", "cuda", "mps")),
            neighbours=_integer("neighbours", v["neighbours"], 1),
            offtopic_quantile=_number("offtopic_quantile", v["offtopic_quantile"], 0.5, 1.0),
            offtopic_threshold=None if v["offtopic_threshold"] is None else _number("offtopic_threshold", v["offtopic_threshold"], 0.0, 2.0),
            keep_recognised=_boolean("keep_recognised", v["keep_recognised"]),
            recognised_prob=_number("recognised_prob", v["recognised_prob"], 0.5, 1.0),
            recognised_within=_number("recognised_within", v["recognised_within"], 1.0, 1000.0),
            folds=_integer("folds", v["folds"], 2),
            move_originals=_boolean("move_originals", v["move_originals"]),
            seed=_integer("seed", v["seed"], 0),
        )
        if opts.train_first and not opts.run:
            raise UserError("vet: train_first needs run (the name of the run to train on the originals)")
        return opts

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise UserError(f"vet: {_flag(name)} must be a non-empty text, got {value!r}")
    return value


def _integer(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"vet: {_flag(name)} must be a whole number of at least {low}, got {value!r}")
    return value


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise UserError(f"vet: {_flag(name)} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"vet: {_flag(name)} must be true or false, got {value!r}")
    return value


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UserError(f"vet: {_flag(name)} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)
