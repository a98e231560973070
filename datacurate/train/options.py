"""Training options: defaults (the characters seed's recipe), parsing and validation of groups and stages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Mapping

from pydantic import ValidationInfo, field_validator, model_validator

from datacurate.core.errors import UserError
from datacurate.core.options import StageOptions, opt
from datacurate.vision.augment import parse_policy
from datacurate.vision.numbers import number
from datacurate.vision.sizes import check_input_size

OPTIMIZERS = ("adam", "adamw", "sgd", "nadam")
SCHEDULES = ("constant", "step", "multistep", "cosine", "plateau")
METRICS = ("valid_acc", "valid_loss", "train_acc", "train_loss", "valid_acc_ema", "valid_loss_ema")  # = Metric below
DEVICES = ("auto", "cpu", "cuda", "mps")  # = Device below

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

HEADS = ("linear", "mlp", "se", "cbam", "bilinear")  # = Head below
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
            lr=number(g.get("lr", 1e-4), f"train.groups[{name}].lr", lo=0),
            weight_decay=number(g.get("weight_decay", 0.0), f"train.groups[{name}].weight_decay", lo=0),
            momentum=number(g.get("momentum", 0.9), f"train.groups[{name}].momentum", lo=0),
            betas=(number(betas[0], "betas[0]", lo=0), number(betas[1], "betas[1]", lo=0)),
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
    gamma = [number(x, f"{where}.schedule.gamma", lo=0) for x in gamma] if isinstance(gamma, list) else number(gamma, f"{where}.schedule.gamma", lo=0)
    milestones = [number(m, f"{where}.schedule.milestones", lo=1, integer=True) for m in raw.get("milestones", []) or []]
    if milestones != sorted(set(milestones)):
        raise UserError(f"{where}.schedule.milestones must increase, got {milestones}")
    if kind == "multistep" and isinstance(gamma, list) and len(gamma) != len(milestones):
        raise UserError(f"{where}.schedule: {len(gamma)} gammas for {len(milestones)} milestones")
    metric = str(raw.get("metric", "valid_loss"))
    if metric not in METRICS:
        raise UserError(f"{where}.schedule.metric {metric!r} is not one of {', '.join(METRICS)}")
    return ScheduleSpec(
        kind=kind, step_size=number(raw.get("step_size", 1), f"{where}.schedule.step_size", lo=1, integer=True),
        milestones=milestones, gamma=gamma,
        warmup_epochs=number(raw.get("warmup_epochs", 0.0), f"{where}.schedule.warmup_epochs", lo=0),
        min_factor=number(raw.get("min_factor", 0.0), f"{where}.schedule.min_factor", lo=0),
        patience=number(raw.get("patience", 1), f"{where}.schedule.patience", lo=0, integer=True), metric=metric)


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
            name=name, epochs=number(s.get("epochs", 1), f"{where}.epochs", lo=0, integer=True),
            freeze_until=str(s["freeze_until"]), lr={str(k): number(v, f"{where}.lr.{k}", lo=0) for k, v in lr.items()},
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


def to_jsonable(obj: Any) -> Any:
    """Dataclasses and tuples to plain JSON-able values (for config.json and checkpoints)."""
    if hasattr(obj, "__dataclass_fields__"):
        return to_jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


# -- the options models of train, evaluate and predict (datacurate/core/options.py) ---------------------------
Device = Literal["auto", "cpu", "cuda", "mps"]
Metric = Literal["valid_acc", "valid_loss", "train_acc", "train_loss", "valid_acc_ema", "valid_loss_ema"]
Tta = Literal["flip", "crops", "policy"]
Head = Literal["linear", "mlp", "se", "cbam", "bilinear"]
Norm = Literal["batch", "group"]
PROBABILITY = dict(ge=0, le=1)


class TrainOptions(StageOptions):
    """Validated train options (the characters seed's recipe by default); keys are flags (stages.FLAGS_ELSEWHERE: the exceptions)."""

    SECTION = "train"
    arch: str = opt("resnext101_32x8d", "any torchvision classification architecture", min_length=1)
    weights: str = opt("imagenet", "imagenet | imagenet:IMAGENET1K_V1 | none | PATH to a state dict or checkpoint", min_length=1)
    freeze_until: str | None = opt(None, "stage 2 trains this module and everything after it (None: by architecture, "
                                   "layer3.18 for resnext101_32x8d; --plan names it)", min_length=1)
    head_epochs: int = opt(2, "stage 1: epochs training the new head alone", ge=0)
    epochs: int = opt(8, "stage 2: epochs unfrozen from freeze_until", ge=0)
    milestones: list[int] = opt([3, 6], "stage-2 epochs where the learning rate drops")
    gamma: float | list[float] = opt([0.2, 0.1], "the factor of each drop (one, or one per milestone)")
    img_size: int = opt(224, "crop size", ge=16)
    resize: int | None = opt(None, "resize before the crop (None: img_size * 255 / 224)", ge=16)
    augment: str | dict[str, Any] = opt("characters", "a preset (none, characters, garbage, fine-grained, strong) or {preset: NAME, key: value, ...}")
    brightness: float | None = opt(None, "older key: augment's brightness, laid over the policy", ge=0)
    batch_size: int = opt(32, "images per batch", ge=1)
    workers: int | None = opt(None, "DataLoader worker processes (None: CPUs - 1, at most 16)", ge=0)
    seed: int = opt(0, "random seed", ge=0)
    label_smoothing: float = opt(0.0, "cross-entropy label smoothing", ge=0, lt=1)
    device: Device = opt("auto", "where training runs")
    amp: bool = opt(True, "mixed precision on CUDA: bf16 where supported, else fp16")
    channels_last: bool = opt(True, "channels-last memory format on CUDA")
    bn_update: bool = opt(False, "let frozen BatchNorm layers update their running statistics")
    early_stop: Metric = opt("valid_acc", "metric for best.pt and early stopping")
    patience: int = opt(0, "stop a stage after this many epochs without improvement (0: never)", ge=0)
    restore_best: bool = opt(True, "end with best.pt's weights")
    normalize: str = opt("auto", "auto: data/split/stats.json when present, else imagenet", min_length=1)
    groups: list[dict[str, Any]] | None = opt(None, "parameter groups (None: the seed's three, or body/head)")
    stages: list[dict[str, Any]] | None = opt(None, "training stages (None: head-only for head_epochs, then from freeze_until)")
    name: str | None = opt(None, "run folder under runs/ (None: the architecture, numbered when taken)")
    tensorboard: bool = opt(False, "log scalars to runs/NAME/tensorboard/ (needs datacurate[tensorboard])")
    head: Head = opt("linear", "classifier head")
    head_hidden: int = opt(512, "mlp head: hidden units", ge=1)
    head_dropout: float = opt(0.0, "dropout before the head's last Linear", **PROBABILITY)
    bilinear: Literal["compact", "full"] = opt("compact", "bilinear head: compact (tensor sketch) or full")
    bilinear_dim: int | None = opt(None, "compact: sketch size (8192); full: channels after a 1x1 reduction (256)", ge=1)
    norm: Norm = opt("batch", "group: GroupNorm in place of BatchNorm, for small batches")
    zero_gamma: bool = opt(False, "zero the last norm weight of each residual block (fresh weights only)")
    mixup: float = opt(0.0, "mixup with Beta(alpha, alpha); 0: off", ge=0)
    cutmix: float = opt(0.0, "cutmix with Beta(alpha, alpha); 0: off", ge=0)
    mix_switch: float = opt(0.5, "with both on: probability that a batch uses cutmix instead of mixup", **PROBABILITY)
    no_bias_decay: bool = opt(True, "no weight decay on biases and norm parameters")
    ema: float = opt(0.0, "exponential moving average of the weights with this decay (e.g. 0.999); 0: off", ge=0, lt=1,
                     rule="a decay between 0 and 1, below 1 (e.g. 0.999; 0 turns it off)")
    teacher: str | None = opt(None, "a run whose softened predictions the student also learns from")
    teacher_temperature: float = opt(4.0, "distillation temperature", gt=0)
    teacher_weight: float = opt(0.5, "share of the distillation term in the loss", **PROBABILITY)
    sync_bn: bool = opt(False, "SyncBatchNorm: BatchNorm statistics over the global batch (CUDA, several processes)")
    dist_timeout: float = opt(60.0, "seconds to wait for every process to join the rendezvous", ge=0.1)

    @field_validator("groups", "stages")
    @classmethod
    def _schedule(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None:  # kept as written; the plan parses them again against the model
            (parse_groups if info.field_name == "groups" else parse_stages)(value)
        return value

    @field_validator("augment")
    @classmethod
    def _policy(cls, value: Any) -> Any:
        parse_policy(value, "train.augment")
        return value

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: Any) -> Any:
        if value is not None and (not value or "/" in value or value.startswith(".")):
            raise UserError(f"train.name {value!r} must be a plain folder name")
        return value

    @model_validator(mode="after")
    def _together(self) -> "TrainOptions":
        if self.early_stop.endswith("_ema") and not self.ema:
            raise UserError(f"train: early_stop {self.early_stop} needs ema (a decay such as 0.999)")
        if self.resize is not None and self.resize < self.img_size:
            raise UserError(f"train: resize must be at least img_size ({self.img_size}), got {self.resize}")
        check_input_size(self.arch, self.img_size, "train: img_size")
        return self


class _Views(StageOptions):
    """What evaluate and predict add to a trained run's predictions."""

    batch_size: int = opt(32, "images per batch", ge=1)
    device: Device = opt("auto", "where the model runs")
    tta: Tta | None = opt(None, "test-time augmentation: mirror, five crops, or views under the run's policy")
    tta_views: int = opt(8, "tta policy: augmented views per image", ge=1)
    head_from: Literal["svm", "logreg"] | None = opt(None, "use the classifier `fit-head` fitted on the run's features")
    ema: bool = opt(False, "use the run's averaged weights (trained with ema)")


class EvaluateOptions(_Views):
    """Options of `datacurate evaluate` (and the pipeline's evaluate stage)."""

    SECTION = "evaluate"
    run: str | None = opt(None, "the run to score (a pipeline: its own run)")
    data: str | None = opt(None, "an ImageFolder tree (None: data/split/valid)")
    workers: int = opt(0, "DataLoader worker processes", ge=0)
    pairs: int = opt(10, "most-confused pairs to list", ge=0)
    worst: int = opt(8, "errors.html: most confidently wrong images per class", ge=0)
    examples: int = opt(3, "errors.html: images of the class a wrong image was taken for, shown beside it", ge=0)


class PredictOptions(_Views):
    """Options of `datacurate predict`."""

    SECTION = "predict"
    top: int = opt(5, "classes per image in `top`", ge=1)
    label_map: str | None = opt(None, "JSON object mapping class names to display names")
    format: Literal["jsonl", "csv"] = opt("jsonl", "jsonl: one JSON line per image; csv: a submission with the columns")
    columns: str = opt("id,label", "csv: columns among id, path, label, probability; KEY:HEADER renames")

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: Any) -> Any:
        from datacurate.train.submission import parse_columns

        try:
            parse_columns(value)
        except UserError as exc:
            raise UserError(f"predict.columns: {str(exc).removeprefix('--columns').lstrip(': ')}") from None
        return value


DEFAULTS: dict[str, Any] = TrainOptions.defaults()
