"""Batch-level tricks: mixup / cutmix (torchvision v2), weight EMA, knowledge distillation from a teacher run."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from datacurate.core.errors import UserError
from datacurate.vision.augment import item_seed
from datacurate.vision.runs import load_run


class BatchMix:
    """torchvision.transforms.v2.MixUp and/or CutMix on a normalised batch; seeded per (seed, epoch, step)."""

    def __init__(self, mixup: float, cutmix: float, switch: float, num_classes: int, seed: int):
        from torchvision.transforms import v2

        ts, ps = [], []
        if mixup:
            ts.append(v2.MixUp(alpha=mixup, num_classes=num_classes))
            ps.append(1 - switch if cutmix else 1.0)
        if cutmix:
            ts.append(v2.CutMix(alpha=cutmix, num_classes=num_classes))
            ps.append(switch if mixup else 1.0)
        ps = [p if p > 0 else 0.0 for p in ps]
        if sum(ps) == 0:  # mix_switch 0 or 1 with one of them: the other one always
            ps = [1.0] * len(ps)
        self.t = ts[0] if len(ts) == 1 else v2.RandomChoice(ts, p=ps)
        self.seed = seed

    def __call__(self, x: torch.Tensor, y: torch.Tensor, epoch: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(item_seed(self.seed, epoch, step))
            return self.t(x, y)


def make_mix(opts: Mapping[str, Any], num_classes: int) -> BatchMix | None:
    if not (opts.get("mixup") or opts.get("cutmix")):
        return None
    return BatchMix(float(opts.get("mixup") or 0), float(opts.get("cutmix") or 0), float(opts.get("mix_switch", 0.5)),
                    num_classes, int(opts.get("seed", 0)))


def make_ema(model: nn.Module, decay: float):
    """An AveragedModel holding the exponential moving average of the weights and buffers (None when decay is 0)."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


class Distiller:
    """Hinton distillation: (1 - w) * loss + w * T^2 * KL(student/T || teacher/T); the teacher sees the student's crop."""

    def __init__(self, teacher: nn.Module, teacher_pre, student_pre, temperature: float, weight: float, device):
        self.teacher, self.t, self.w = teacher.to(device).eval(), temperature, weight
        s_mean, s_std = torch.tensor(student_pre.mean), torch.tensor(student_pre.std)
        t_mean, t_std = torch.tensor(teacher_pre.mean), torch.tensor(teacher_pre.std)
        # x_teacher = (x * s_std + s_mean - t_mean) / t_std, as one scale and shift per channel
        self.scale = (s_std / t_std).view(1, 3, 1, 1).to(device)
        self.shift = ((s_mean - t_mean) / t_std).view(1, 3, 1, 1).to(device)

    def loss(self, base: torch.Tensor, student_logits: torch.Tensor, x: torch.Tensor, dev) -> torch.Tensor:
        with torch.no_grad(), dev.autocast():
            t_logits = self.teacher(x * self.scale + self.shift).float()
        kd = nn.functional.kl_div(torch.log_softmax(student_logits.float() / self.t, 1), torch.softmax(t_logits / self.t, 1),
                                  reduction="batchmean") * self.t * self.t
        return (1 - self.w) * base + self.w * kd


def load_teacher(ws, run: str, classes: list[str], student_pre, opts: Mapping[str, Any], device) -> Distiller:
    """The teacher run's best weights; its classes must be this split's, in the same order."""
    lr = load_run(ws, run, str(device.type), what="--teacher")
    if lr.classes != classes:
        other = sorted(set(lr.classes) ^ set(classes))
        why = f"class {other[0]!r} is in one and not the other" if other else "the same classes in another order"
        raise UserError(f"--teacher {run}: its classes differ from this split's ({why})")
    for p in lr.model.parameters():
        p.requires_grad_(False)
    return Distiller(lr.model, lr.pre, student_pre, float(opts["teacher_temperature"]), float(opts["teacher_weight"]), device)
