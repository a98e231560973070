"""Learning-rate schedules within a stage: constant, step, multistep, cosine with warmup, reduce-on-plateau.

A schedule is a factor applied to each group's stage learning rate, computed from (epoch, step) and,
for plateau, a small state; everything it needs is in state_dict(), so a resumed run matches.
"""

from __future__ import annotations

import math

from datacurate.train.options import ScheduleSpec


class StageSchedule:
    """The learning-rate factor for one stage of `epochs` epochs of `steps` steps each."""

    def __init__(self, spec: ScheduleSpec, epochs: int, steps: int):
        self.spec, self.epochs, self.steps = spec, max(epochs, 1), max(steps, 1)
        self.plateau_factor = 1.0
        self.plateau_best: float | None = None
        self.plateau_bad = 0

    def _gammas(self, drops: int) -> float:
        g = self.spec.gamma
        if isinstance(g, list):
            out = 1.0
            for i in range(drops):
                out *= g[min(i, len(g) - 1)] if g else 1.0
            return out
        return float(g) ** drops

    def factor(self, epoch: int, step: int = 0) -> float:
        """Factor for step `step` of epoch `epoch` (both counted from 0 within the stage)."""
        s = self.spec
        if s.kind == "step":
            return self._gammas(epoch // s.step_size)
        if s.kind == "multistep":
            return self._gammas(sum(epoch >= m for m in s.milestones))
        if s.kind == "cosine":
            total, warm = self.epochs * self.steps, s.warmup_epochs * self.steps
            t = epoch * self.steps + step
            if t < warm:
                return (t + 1) / warm
            progress = min(1.0, (t - warm) / max(1.0, total - warm))
            return s.min_factor + (1 - s.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
        if s.kind == "plateau":
            return self.plateau_factor
        return 1.0

    def epoch_end(self, metrics: dict[str, float]) -> None:
        """Reduce-on-plateau bookkeeping: multiply by gamma after `patience` epochs without improvement."""
        if self.spec.kind != "plateau":
            return
        value = metrics[self.spec.metric]
        better = self.plateau_best is None or (value < self.plateau_best if "loss" in self.spec.metric else value > self.plateau_best)
        if better:
            self.plateau_best, self.plateau_bad = value, 0
            return
        self.plateau_bad += 1
        if self.plateau_bad > self.spec.patience:
            self.plateau_factor *= self._gammas(1)
            self.plateau_bad = 0

    def state_dict(self) -> dict:
        return {"factor": self.plateau_factor, "best": self.plateau_best, "bad": self.plateau_bad}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_factor, self.plateau_best, self.plateau_bad = state["factor"], state["best"], state["bad"]
