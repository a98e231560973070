"""The training plan: per stage, which parameters train, in which group, at which learning rate.

`build_plan` is shared by `--plan` (printed, nothing trained) and the loop (which follows it).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from datacurate.core.errors import UserError
from datacurate.vision.augment import describe as describe_policy
from datacurate.vision.augment import parse_policy
from datacurate.vision.freeze import TRAIN_SHARE, default_freeze_until, frozen_before, summarize
from datacurate.vision.heads import describe as describe_head
from datacurate.vision.heads import head_name
from datacurate.train.groups import assign, default_groups, param_count
from datacurate.train.options import GroupSpec, StageSpec, default_stages, parse_groups, parse_stages


@dataclass
class StagePlan:
    spec: StageSpec
    trainable: set[str]
    lrs: dict[str, float]


@dataclass
class Plan:
    groups: list[GroupSpec]
    members: dict[str, list[str]]
    stages: list[StagePlan]
    head: str
    total_params: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return sum(s.spec.epochs for s in self.stages)


def build_plan(model: nn.Module, opts: dict[str, Any]) -> Plan:
    """Resolve groups and stages against the model; every mistake is a UserError naming it."""
    notes = []
    if not opts.get("stages") and opts.get("freeze_until") is None:
        opts = {**opts, "freeze_until": default_freeze_until(model)}
        notes.append(f"freeze_until {opts['freeze_until']}: the default for this architecture (the last {TRAIN_SHARE:.0%} of "
                     "the body's parameters train, as from layer3.18 of resnext101_32x8d); --freeze-until picks another module")
    groups = parse_groups(opts["groups"]) if opts.get("groups") else default_groups(model)
    stage_specs = parse_stages(opts["stages"]) if opts.get("stages") else default_stages(opts)
    members = assign(model, groups)
    grouped = {p for names in members.values() for p in names}
    all_params = [n for n, _ in model.named_parameters()]
    names = {g.name for g in groups}
    stages = []
    for st in stage_specs:
        unknown = sorted(set(st.lr) - names)
        if unknown:
            raise UserError(f"train.stages[{st.name}].lr names group {unknown[0]!r}; groups are {', '.join(sorted(names))}")
        frozen = frozen_before(model, st.freeze_until)
        free = [p for p in all_params if p not in frozen]
        orphans = [p for p in free if p not in grouped]
        if orphans:
            where = ", ".join(summarize(model, set(orphans))[:4])
            raise UserError(f"stage {st.name!r} (freeze_until {st.freeze_until}) would train {where}, which no parameter group names; "
                            "add a group for them in train.groups or freeze more")
        lrs = {g.name: st.lr.get(g.name, g.lr) for g in groups}
        stages.append(StagePlan(st, set(free), lrs))
    return Plan(groups, members, stages, head_name(model), param_count(model, all_params), notes)


def describe(model: nn.Module, plan: Plan, arch: str = "") -> list[str]:
    """Human-readable plan lines (what --plan prints)."""
    lines = [f"model: {arch or type(model).__name__}, {plan.total_params:,} parameters, head {plan.head}"]
    lines.append("groups:")
    for g in plan.groups:
        lines.append(f"  {g.name}: {', '.join(summarize(model, set(plan.members[g.name]))) or '(no parameters)'}")
    ungrouped = set(n for n, _ in model.named_parameters()) - {p for v in plan.members.values() for p in v}
    if ungrouped:
        lines.append(f"  (no group, always frozen): {', '.join(summarize(model, ungrouped))}")
    for i, st in enumerate(plan.stages, 1):
        s = st.spec
        sched = s.schedule
        how = sched.kind
        if sched.kind == "step":
            how += f" every {sched.step_size} epochs x{sched.gamma}"
        elif sched.kind == "multistep":
            how += f" at epochs {sched.milestones} x{sched.gamma}"
        elif sched.kind == "cosine":
            how += f" warmup {sched.warmup_epochs} epochs, to x{sched.min_factor}"
        elif sched.kind == "plateau":
            how += f" on {sched.metric}, patience {sched.patience}, x{sched.gamma}"
        frozen = set(n for n, _ in model.named_parameters()) - st.trainable
        lines.append(f"stage {i} {s.name}: {s.epochs} epochs, freeze until {s.freeze_until}, schedule {how}")
        lines.append(f"  frozen ({param_count(model, frozen):,}): {', '.join(summarize(model, frozen)) or '-'}")
        lines.append(f"  trains ({param_count(model, st.trainable):,}): {', '.join(summarize(model, st.trainable)) or '-'}")
        factors = _factors(st)
        for g in plan.groups:
            n = param_count(model, [p for p in plan.members[g.name] if p in st.trainable])
            state = f"{n:,} parameters train" if n else "frozen"
            lr = " -> ".join(f"{st.lrs[g.name] * f:.3g}" for f in factors)
            lines.append(f"  group {g.name}: {g.optimizer} lr {lr} weight_decay {g.weight_decay:g}, {state}")
    return lines + plan.notes


MIN_STEPS = 100  # fewer optimizer steps in all and a fine-tuned model underfits (issue 20: 12 steps, 0.6 vs 0.91)


def steps_per_epoch(images: int, batch: int, world: int = 1) -> int:
    """Optimizer steps in one epoch: one per global batch, the last one partial."""
    return math.ceil(images / (batch * world))


def step_lines(plan: Plan, images: int, batch: int, world: int = 1) -> list[str]:
    """The plan's line on optimizer steps per stage, and a warning with what to change when they are too few."""
    per = steps_per_epoch(images, batch, world)
    total = per * plan.epochs
    stages = ", ".join(f"stage {i} {s.spec.name} {s.spec.epochs * per}" for i, s in enumerate(plan.stages, 1))
    lines = [f"optimizer steps: {per} per epoch ({images} train images / batch {batch * world}); {stages}; {total} in all"]
    if total < MIN_STEPS:
        small = min(8, batch)
        hint = (f"a smaller --batch-size ({small} gives {steps_per_epoch(images, small, world)} steps per epoch), "
                if small < batch else "")
        lines.append(f"warning: {total} optimizer steps in all, fewer than {MIN_STEPS}: the model will likely underfit. "
                     f"Use {hint}more epochs (--epochs, --head-epochs or train.stages), or `datacurate fit-head RUN` "
                     "on the network's features (docs/train.md, Very small data)")
    return lines


def _factors(st: StagePlan) -> list[float]:
    """The distinct learning-rate factors a step/multistep stage goes through (others: the starting one)."""
    from datacurate.train.schedules import StageSchedule

    if st.spec.schedule.kind not in ("step", "multistep"):
        return [1.0]
    sched = StageSchedule(st.spec.schedule, st.spec.epochs, 1)
    out: list[float] = []
    for e in range(max(st.spec.epochs, 1)):
        f = sched.factor(e)
        if not out or f != out[-1]:
            out.append(f)
    return out


def plan_summary(opts: dict[str, Any], world_size: int | None = None) -> list[str]:
    """--plan's lines on the augmentation, the head and the tricks (and the global batch on several processes)."""
    raw = opts["augment"]
    preset = raw if isinstance(raw, str) else f"{raw.get('preset', 'none')} + overrides"
    tricks = [f"label smoothing {opts['label_smoothing']:g}"] if opts["label_smoothing"] else []
    if opts["mixup"]:
        tricks.append(f"mixup alpha {opts['mixup']:g}")
    if opts["cutmix"]:
        tricks.append(f"cutmix alpha {opts['cutmix']:g}")
    if opts["mixup"] and opts["cutmix"]:
        tricks.append(f"cutmix instead of mixup p={opts['mix_switch']:g}")
    tricks.append("no weight decay on biases and norms" if opts["no_bias_decay"] else "weight decay on every parameter")
    if opts["zero_gamma"]:
        tricks.append("zero-gamma residual init")
    if opts["norm"] == "group":
        tricks.append("GroupNorm in place of BatchNorm")
    if opts["ema"]:
        tricks.append(f"weight EMA decay {opts['ema']:g} (evaluated and checkpointed beside the raw weights)")
    if opts["teacher"]:
        tricks.append(f"distillation from run {opts['teacher']} (temperature {opts['teacher_temperature']:g}, weight {opts['teacher_weight']:g})")
    if opts.get("sync_bn"):
        tricks.append("SyncBatchNorm across processes")
    lines = [f"augmentation ({preset}): {describe_policy(parse_policy(raw))}",
             f"head: {describe_head(opts)}", f"tricks: {', '.join(tricks)}"]
    world = world_size or int(os.environ.get("WORLD_SIZE") or 1)
    if world > 1:
        bs = opts["batch_size"]
        lines.append(f"batch: {bs} per process x {world} processes = global batch {bs * world} (learning rates as given, not scaled)")
    return lines
