"""Training options: defaults (the characters seed's recipe), parsing and validation of groups and stages."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from datacurate.errors import UserError

OPTIMIZERS = ("adam", "adamw", "sgd", "nadam")
SCHEDULES = ("constant", "step", "multistep", "cosine", "plateau")
METRICS = ("valid_acc", "valid_loss", "train_acc", "train_loss", "valid_acc_ema", "valid_loss_ema")
DEVICES = ("auto", "cpu", "cuda", "mps")
TTA_MODES = ("flip", "crops", "policy")  # evaluate/predict --tta (here, not in tta.py: config checks import no torch)

# The seed's three groups: layer3[18:] and layer4 at 5e-5, the new head at 5e-4, each with Adam.
SEED_GROUPS = [
    {"name": "layer3.18-", "modules": ["layer3.18-"], "optimizer": "adam", "lr": 5e-5, "weight_decay": 0.0},
    {"name": "layer4", "modules": ["layer4"], "optimizer": "adam", "lr": 5e-5, "weight_decay": 0.0},
    {"name": "fc", "modules": ["head"], "optimizer": "adam", "lr": 5e-4, "weight_decay": 0.0},
]
# For models without those modules: everything not in the head, and the head.
GENERIC_GROUPS = [
    {"name": "body", "modules": ["*"], "optimizer": "adam", "lr": 5e-5, "weight_decay": 0.0},
    {"name": "head", "modules": ["head"], "optimizer": "adam", "lr": 5e-4, "weight_decay": 0.0},
]

DEFAULTS: dict[str, Any] = {
    "arch": "resnext101_32x8d",
    "weights": "imagenet",
    "freeze_until": "layer3.18",
    "head_epochs": 2,
    "epochs": 8,
    "milestones": [3, 6],
    "gamma": [0.2, 0.1],
    "img_size": 224,
    "resize": None,  # default: img_size * 255 / 224 (255 for 224)
    "augment": "characters",  # a preset name, or {preset: NAME, key: value, ...} (datacurate/train/augment.py)
    "brightness": None,  # older key: the same as augment's brightness, laid over the policy
    "batch_size": 32,
    "workers": None,  # default: CPU count - 1, at most 16
    "seed": 0,
    "label_smoothing": 0.0,
    "device": "auto",
    "amp": True,
    "channels_last": True,
    "bn_update": False,
    "early_stop": "valid_acc",
    "patience": 0,  # 0: no early stopping
    "restore_best": True,
    "normalize": "auto",  # auto: data/split/stats.json when present, else imagenet
    "groups": None,  # default: SEED_GROUPS when the model has those modules, else GENERIC_GROUPS
    "stages": None,  # default: head-only for head_epochs, then unfrozen from freeze_until for epochs
    "name": None,
    "tensorboard": False,  # log scalars to runs/<run>/tensorboard/ (the tensorboard extra)
    # heads and norms (datacurate/train/heads.py)
    "head": "linear",  # linear | mlp | se | cbam | bilinear
    "head_hidden": 512,  # mlp: hidden units
    "head_dropout": 0.0,  # mlp, se, cbam, bilinear: dropout before the last Linear
    "bilinear": "compact",  # compact (tensor sketch) | full
    "bilinear_dim": None,  # compact: sketch size (8192); full: channels after a 1x1 reduction (256)
    "norm": "batch",  # batch | group (GroupNorm in place of BatchNorm)
    "zero_gamma": False,  # zero the last norm layer's weight in each residual block (fresh weights only)
    # the tricks
    "mixup": 0.0,  # Beta(alpha, alpha) mixup; 0: off
    "cutmix": 0.0,  # Beta(alpha, alpha) cutmix; 0: off
    "mix_switch": 0.5,  # with both on: probability that a batch uses cutmix instead of mixup
    "no_bias_decay": True,  # no weight decay on biases and norm parameters
    "ema": 0.0,  # exponential moving average of the weights with this decay (e.g. 0.999); 0: off
    "teacher": None,  # a run whose softened predictions the student also learns from
    "teacher_temperature": 4.0,
    "teacher_weight": 0.5,  # share of the distillation term in the loss
}

HEADS = ("linear", "mlp", "se", "cbam", "bilinear")
NORMS = ("batch", "group")


@dataclass
class GroupSpec:
    """A named set of modules with its own optimizer kind, learning rate and weight decay."""

    name: str
    modules: list[str]
    optimizer: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    betas: tuple[float, float] = (0.9, 0.999)  # adam, adamw, nadam


@dataclass
class ScheduleSpec:
    """How the learning rate moves within one stage."""

    kind: str = "constant"
    step_size: int = 1
    milestones: list[int] = field(default_factory=list)
    gamma: float | list[float] = 0.1
    warmup_epochs: float = 0.0
    min_factor: float = 0.0
    patience: int = 1
    metric: str = "valid_loss"


@dataclass
class StageSpec:
    """One stage: train from module `freeze_until` on (or the head alone) for `epochs` epochs."""

    name: str
    epochs: int
    freeze_until: str  # a module name, "head" (head only) or "none" (nothing frozen)
    lr: dict[str, float] = field(default_factory=dict)  # per-group learning rate for this stage
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)


def _num(value: Any, what: str, *, lo: float | None = None, integer: bool = False) -> Any:
    try:
        out = int(value) if integer else float(value)
        if integer and float(value) != out:
            raise ValueError
        if isinstance(value, bool) or not math.isfinite(out):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{what} must be {'an integer' if integer else 'a finite number'}, got {value!r}") from None
    if lo is not None and out < lo:
        raise UserError(f"{what} must be at least {lo}, got {value!r}")
    return out


def parse_groups(raw: Any) -> list[GroupSpec]:
    """Validate `train.groups` (a list of mappings) into GroupSpecs."""
    if not isinstance(raw, list) or not raw:
        raise UserError("train.groups must be a non-empty list of mappings (name, modules, optimizer, lr, weight_decay)")
    known = {"name", "modules", "optimizer", "lr", "weight_decay", "momentum", "betas"}
    out, names = [], set()
    for i, g in enumerate(raw):
        if not isinstance(g, Mapping):
            raise UserError(f"train.groups[{i}] must be a mapping, got {g!r}")
        extra = sorted(set(g) - known)
        if extra:
            raise UserError(f"train.groups[{i}]: unknown key {extra[0]!r}; known: {', '.join(sorted(known))}")
        modules = g.get("modules")
        modules = [modules] if isinstance(modules, str) else modules
        if not modules or not all(isinstance(m, str) and m for m in modules):
            raise UserError(f"train.groups[{i}]: modules must be a list of module names, e.g. [layer4]")
        name = str(g.get("name") or modules[0])
        if name in names:
            raise UserError(f"train.groups: two groups are named {name!r}")
        names.add(name)
        opt = str(g.get("optimizer", "adam")).lower()
        if opt not in OPTIMIZERS:
            raise UserError(f"train.groups[{name}]: optimizer {opt!r} is not one of {', '.join(OPTIMIZERS)}")
        betas = g.get("betas", (0.9, 0.999))
        if not isinstance(betas, (list, tuple)) or len(betas) != 2:
            raise UserError(f"train.groups[{name}]: betas must be two numbers, got {betas!r}")
        out.append(GroupSpec(
            name=name, modules=list(modules), optimizer=opt,
            lr=_num(g.get("lr", 1e-4), f"train.groups[{name}].lr", lo=0),
            weight_decay=_num(g.get("weight_decay", 0.0), f"train.groups[{name}].weight_decay", lo=0),
            momentum=_num(g.get("momentum", 0.9), f"train.groups[{name}].momentum", lo=0),
            betas=(_num(betas[0], "betas[0]", lo=0), _num(betas[1], "betas[1]", lo=0)),
        ))
    if sum("*" in g.modules for g in out) > 1:
        raise UserError("train.groups: only one group may use the catch-all module '*'")
    return out


def parse_schedule(raw: Any, where: str) -> ScheduleSpec:
    """Validate a stage's `schedule:` mapping (or a bare kind name)."""
    if raw is None:
        return ScheduleSpec()
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}.schedule must be a mapping like {{kind: step, step_size: 3, gamma: 0.1}}")
    known = {"kind", "step_size", "milestones", "gamma", "warmup_epochs", "min_factor", "patience", "metric"}
    extra = sorted(set(raw) - known)
    if extra:
        raise UserError(f"{where}.schedule: unknown key {extra[0]!r}; known: {', '.join(sorted(known))}")
    kind = str(raw.get("kind", "constant")).lower()
    if kind not in SCHEDULES:
        raise UserError(f"{where}.schedule.kind {kind!r} is not one of {', '.join(SCHEDULES)}")
    gamma = raw.get("gamma", 0.1)
    gamma = [_num(x, f"{where}.schedule.gamma", lo=0) for x in gamma] if isinstance(gamma, list) else _num(gamma, f"{where}.schedule.gamma", lo=0)
    milestones = [_num(m, f"{where}.schedule.milestones", lo=1, integer=True) for m in raw.get("milestones", []) or []]
    if milestones != sorted(set(milestones)):
        raise UserError(f"{where}.schedule.milestones must increase, got {milestones}")
    if kind == "multistep" and isinstance(gamma, list) and len(gamma) != len(milestones):
        raise UserError(f"{where}.schedule: {len(gamma)} gammas for {len(milestones)} milestones")
    metric = str(raw.get("metric", "valid_loss"))
    if metric not in METRICS:
        raise UserError(f"{where}.schedule.metric {metric!r} is not one of {', '.join(METRICS)}")
    return ScheduleSpec(
        kind=kind, step_size=_num(raw.get("step_size", 1), f"{where}.schedule.step_size", lo=1, integer=True),
        milestones=milestones, gamma=gamma,
        warmup_epochs=_num(raw.get("warmup_epochs", 0.0), f"{where}.schedule.warmup_epochs", lo=0),
        min_factor=_num(raw.get("min_factor", 0.0), f"{where}.schedule.min_factor", lo=0),
        patience=_num(raw.get("patience", 1), f"{where}.schedule.patience", lo=0, integer=True), metric=metric)


def parse_stages(raw: Any) -> list[StageSpec]:
    """Validate `train.stages` (a list of mappings) into StageSpecs."""
    if not isinstance(raw, list) or not raw:
        raise UserError("train.stages must be a non-empty list of mappings (name, epochs, freeze_until, lr, schedule)")
    known = {"name", "epochs", "freeze_until", "lr", "schedule"}
    out = []
    for i, s in enumerate(raw):
        if not isinstance(s, Mapping):
            raise UserError(f"train.stages[{i}] must be a mapping, got {s!r}")
        extra = sorted(set(s) - known)
        if extra:
            raise UserError(f"train.stages[{i}]: unknown key {extra[0]!r}; known: {', '.join(sorted(known))}")
        name = str(s.get("name") or f"stage{i + 1}")
        where = f"train.stages[{name}]"
        if "freeze_until" not in s:
            raise UserError(f"{where}: freeze_until is required (a module name, 'head' or 'none')")
        lr = s.get("lr") or {}
        if not isinstance(lr, Mapping):
            raise UserError(f"{where}.lr must map group names to learning rates")
        out.append(StageSpec(
            name=name, epochs=_num(s.get("epochs", 1), f"{where}.epochs", lo=0, integer=True),
            freeze_until=str(s["freeze_until"]), lr={str(k): _num(v, f"{where}.lr.{k}", lo=0) for k, v in lr.items()},
            schedule=parse_schedule(s.get("schedule"), where)))
    return out


def default_stages(opts: Mapping[str, Any]) -> list[StageSpec]:
    """The two-stage shorthand: the head alone for head_epochs, then from freeze_until for epochs, step drops."""
    gamma = opts["gamma"]
    milestones = [m for m in opts["milestones"]]
    sched = parse_schedule({"kind": "multistep", "milestones": milestones, "gamma": gamma}, "train")
    stages = []
    if opts["head_epochs"]:
        stages.append(StageSpec("head", int(opts["head_epochs"]), "head"))
    stages.append(StageSpec("finetune", int(opts["epochs"]), str(opts["freeze_until"]), schedule=sched))
    return stages


def check_scalars(opts: dict[str, Any]) -> dict[str, Any]:
    """Validate scalar options in place; returns opts."""
    for key, lo in (("head_epochs", 0), ("epochs", 0), ("img_size", 16), ("batch_size", 1), ("seed", 0), ("patience", 0)):
        opts[key] = _num(opts[key], f"train.{key} (--{key.replace('_', '-')})", lo=lo, integer=True)
    if opts["workers"] is not None:
        opts["workers"] = _num(opts["workers"], "--workers", lo=0, integer=True)
    if opts["resize"] is not None:
        opts["resize"] = _num(opts["resize"], "train.resize", lo=opts["img_size"], integer=True)
    opts["label_smoothing"] = _num(opts["label_smoothing"], "--label-smoothing", lo=0)
    if opts["label_smoothing"] >= 1:
        raise UserError(f"--label-smoothing must be below 1, got {opts['label_smoothing']}")
    for key in ("head_hidden",):
        opts[key] = _num(opts[key], f"train.{key} (--{key.replace('_', '-')})", lo=1, integer=True)
    if opts["bilinear_dim"] is not None:
        opts["bilinear_dim"] = _num(opts["bilinear_dim"], "train.bilinear_dim", lo=1, integer=True)
    for key in ("mixup", "cutmix", "teacher_temperature"):
        opts[key] = _num(opts[key], f"train.{key} (--{key.replace('_', '-')})", lo=0)
    if opts["teacher_temperature"] == 0:
        raise UserError("--teacher-temperature must be above 0")
    for key in ("head_dropout", "mix_switch", "teacher_weight", "ema"):
        opts[key] = probability(opts[key], f"train.{key} (--{key.replace('_', '-')})")
    if opts["ema"] == 1:
        raise UserError("--ema must be below 1 (a decay such as 0.999; 0 turns it off)")
    _choice(opts, "head", HEADS)
    _choice(opts, "norm", NORMS)
    _choice(opts, "bilinear", ("compact", "full"))
    for key in ("zero_gamma", "no_bias_decay", "amp", "channels_last", "bn_update", "restore_best", "tensorboard"):
        if not isinstance(opts[key], bool):
            raise UserError(f"train.{key} must be true or false, got {opts[key]!r}")
    if str(opts["device"]) not in DEVICES:
        raise UserError(f"--device {opts['device']!r} is not one of {', '.join(DEVICES)}")
    if opts["early_stop"] not in METRICS:
        raise UserError(f"--early-stop {opts['early_stop']!r} is not one of {', '.join(METRICS)}")
    if opts["early_stop"].endswith("_ema") and not opts["ema"]:
        raise UserError(f"--early-stop {opts['early_stop']} needs --ema DECAY")
    if not isinstance(opts["milestones"], list) or not isinstance(opts["gamma"], (list, float, int)):
        raise UserError("train.milestones must be a list of epochs and train.gamma a number or a list")
    return opts


def probability(value: Any, what: str) -> float:
    """A finite number in [0, 1]."""
    out = _num(value, what, lo=0)
    if out > 1:
        raise UserError(f"{what} must be between 0 and 1, got {value!r}")
    return out


def _choice(opts: dict[str, Any], key: str, allowed: tuple[str, ...]) -> None:
    if str(opts[key]) not in allowed:
        raise UserError(f"--{key.replace('_', '-')} {opts[key]!r} is not one of {', '.join(allowed)}")
    opts[key] = str(opts[key])


def to_jsonable(obj: Any) -> Any:
    """Dataclasses and tuples to plain JSON-able values (for config.json and checkpoints)."""
    if hasattr(obj, "__dataclass_fields__"):
        return to_jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj
