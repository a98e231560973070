"""The training loop: stages, epochs, steps; validation, early stopping, checkpoints, exact resume."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from datacurate.core.fsutil import deferred_signals
from datacurate.vision import checkpoint
from datacurate.vision.data import Preprocess, set_epoch, to_input
from datacurate.vision.device import Device
from datacurate.train.distributed import SINGLE, Dist, all_gather, all_sum, wrap
from datacurate.vision.freeze import apply_trainable, set_train_mode
from datacurate.train.groups import set_lrs
from datacurate.train.meter import Meter, format_lrs
from datacurate.train.plan import Plan
from datacurate.train.schedules import StageSchedule


@contextlib.contextmanager
def norms_frozen(model: nn.Module):
    """Batch norm layers use their running statistics for the block: a training batch of one image (the
    last of an epoch of k x batch + 1 images) cannot be normalised by its own statistics."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    for m in layers:
        m.eval()
    try:
        yield
    finally:
        for m in layers:
            m.train()


@dataclass
class LoopState:
    """Where the run stands; saved in every checkpoint."""

    stage: int = 0
    stage_epoch: int = 0
    epoch: int = 0
    step: int = 0
    best_value: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    schedule: dict | None = None
    history: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Loop:
    """Everything one run trains with."""

    model: nn.Module
    plan: Plan
    optimizers: dict[str, torch.optim.Optimizer]
    train_loader: Any
    valid_loader: Any
    pre: Preprocess
    dev: Device
    run_dir: Path
    meta: dict  # classes, config, arch: written into every checkpoint
    label_smoothing: float = 0.0
    bn_update: bool = False
    monitor: str = "valid_acc"
    patience: int = 0
    quiet: bool = False
    echo: Callable[[str], None] = lambda s: None
    on_step: Callable[[int], None] | None = None
    mix: Any = None  # tricks.BatchMix
    ema: Any = None  # torch.optim.swa_utils.AveragedModel
    teacher: Any = None  # tricks.Distiller
    tensorboard: Any = None  # tblog.Scalars
    state: LoopState = field(default_factory=LoopState)
    scaler: Any = None
    dist: Dist = SINGLE  # several processes: rank 0 alone saves; metrics are summed over ranks
    seed: int = 0
    lrs: dict[str, float] = field(default_factory=dict)  # the current step's learning rate of each group that trains
    train_rate: float = 0.0  # images/s of the last training pass: shown and logged, not in history.csv (it varies)

    def __post_init__(self):
        self.criterion = nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)
        self.net = self.model  # what training steps call: the model, or DDP around it (re-wrapped per stage)
        if self.dev.amp_dtype == torch.float16:
            self.scaler = torch.amp.GradScaler("cuda")

    # -- checkpoints ---------------------------------------------------------------------------
    def payload(self) -> dict:
        return {"model": self.model.state_dict(), "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "scaler": self.scaler.state_dict() if self.scaler else None, "state": self.state.as_dict(),
                "rng": checkpoint.rng_state(), "preprocess": self.pre.as_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None, **self.meta}

    def restore(self, ck: dict) -> None:
        """Continue from a checkpoint written at the end of an epoch."""
        self.model.load_state_dict(ck["model"])
        for k, o in self.optimizers.items():
            o.load_state_dict(ck["optimizers"][k])
        if self.scaler and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        if self.ema is not None and ck.get("ema"):
            self.ema.load_state_dict(ck["ema"])
        self.state = LoopState(**ck["state"])
        checkpoint.set_rng_state(ck["rng"])
        last, best = self.run_dir / "last.pt", self.run_dir / "best.pt"
        if self.dist.main and self.state.best_epoch == self.state.epoch and last.is_file():
            checkpoint.copy(last, best)  # killed between writing last.pt and copying it to best.pt

    # -- the loop ------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.state.stage >= len(self.plan.stages)

    def fit(self) -> LoopState:
        st = self.state
        while not self.done:
            sp = self.plan.stages[st.stage]
            if sp.spec.epochs == 0:
                st.stage, st.stage_epoch = st.stage + 1, 0
                continue
            apply_trainable(self.model, sp.trainable)
            self.net = self.model  # drop the last stage's DDP (and its gradient hooks) before wrapping again
            self.net = wrap(self.model, self.dist, self.dev.device)  # DDP tracks the parameters that train in this stage
            sched = StageSchedule(sp.spec.schedule, sp.spec.epochs, len(self.train_loader))
            if st.stage_epoch and st.schedule:
                sched.load_state_dict(st.schedule)
            while True:
                row = self.run_epoch(sp, sched)
                sched.epoch_end(row)
                stop = self.after_epoch(row)
                st.schedule = sched.state_dict()
                if stop or st.stage_epoch >= sp.spec.epochs:
                    st.stage, st.stage_epoch, st.bad_epochs, st.schedule = st.stage + 1, 0, 0, None
                    self.save(improved=row["best"])
                    break
                self.save(improved=row["best"])
        return st

    def run_epoch(self, sp, sched: StageSchedule) -> dict:
        st, t0 = self.state, time.perf_counter()
        for loader in (self.train_loader, self.valid_loader):
            set_epoch(loader, st.epoch)
        lrs = {}
        if self.dist.active:  # dropout and other draws: per (seed, epoch, rank), so a resumed run repeats them on every rank
            from datacurate.vision.augment import item_seed

            torch.manual_seed(item_seed(self.seed, st.epoch, self.dist.rank))
        training = [g.name for g in self.plan.groups if sp.trainable.intersection(self.plan.members[g.name])]
        self.lrs = {}

        def step(i: int) -> None:
            lrs.update(self.set_lr(sp, sched, st.stage_epoch, i))
            self.lrs = {g: lrs[g] for g in training}

        set_train_mode(self.model, self.bn_update)
        tr = self.pass_over(self.train_loader, f"{sp.spec.name} {st.stage_epoch + 1}/{sp.spec.epochs} train", step=step)
        self.model.eval()
        va = self.pass_over(self.valid_loader, f"{sp.spec.name} {st.stage_epoch + 1}/{sp.spec.epochs} valid", step=None)
        ema = {}
        if self.ema is not None:
            self.ema.eval()
            ev = self.pass_over(self.valid_loader, f"{sp.spec.name} {st.stage_epoch + 1}/{sp.spec.epochs} valid ema", step=None,
                                model=self.ema.module)
            ema = {"valid_loss_ema": ev[0], "valid_acc_ema": ev[1]}
        st.epoch, st.stage_epoch = st.epoch + 1, st.stage_epoch + 1
        self.train_rate = tr[3]
        row = {"epoch": st.epoch, "stage": sp.spec.name, "stage_epoch": st.stage_epoch,
               "train_loss": tr[0], "train_acc": tr[1], "valid_loss": va[0], "valid_acc": va[1], **ema,
               **{f"lr_{g}": lr for g, lr in lrs.items()}, "skipped": tr[2] + va[2],
               "seconds": round(time.perf_counter() - t0, 2)}
        return row

    def set_lr(self, sp, sched: StageSchedule, epoch: int, step: int) -> dict[str, float]:
        f = sched.factor(epoch, step)
        lrs = {g: lr * f for g, lr in sp.lrs.items()}
        set_lrs(self.optimizers, lrs)
        return lrs

    def pass_over(self, loader, desc: str, step: Callable[[int], None] | None,
                  model: nn.Module | None = None) -> tuple[float, float, int, float]:
        """One pass; trains when `step` is given. Returns (mean loss, accuracy, files skipped, images/s).

        Loss and hits are summed on the device and read once at the end (and once per bar refresh). Training
        applies mixup/cutmix (accuracy then counts the larger share of each mixed target) and distillation.
        On several processes each rank's loss is weighted by its share of the global batch, so DDP's mean
        of gradients is the gradient of the global batch's mean loss; a rank with no image in a step steps
        with a zero-weight stand-in; the sums are reduced over ranks at the end.
        """
        train = step is not None
        model = model or (self.net if train else self.model)
        shared = train and self.dist.active
        total, skipped = 0, 0
        loss_sum = torch.zeros((), device=self.dev.device, dtype=torch.float64)
        correct = torch.zeros((), device=self.dev.device, dtype=torch.long)
        grad = torch.enable_grad() if train else torch.no_grad()
        meter = Meter(loader, len(loader), desc, quiet=self.quiet, echo=self.echo, lrs=(lambda: self.lrs) if train else None)
        with grad, contextlib.closing(meter):
            for i, (images, labels, bad) in enumerate(meter):
                skipped += len(bad)
                self.note_skipped(loader, bad)
                n = len(labels)
                if not n:
                    if not shared:
                        continue
                    images, labels = self.blank()
                x = to_input(images, self.dev.device, self.pre, self.dev.channels_last)
                y = labels.to(self.dev.device, non_blocking=True)
                target = y
                if train:
                    step(i)
                    if self.mix is not None and n:
                        x, target = self.mix(x, y, self.state.epoch, i)
                        y = target.argmax(1)
                with self.dev.autocast(), norms_frozen(model) if train and x.shape[0] == 1 else contextlib.nullcontext():
                    out = model(x)
                loss = self.criterion(out.float(), target)
                if train and self.teacher is not None:
                    loss = self.teacher.loss(loss, out, x, self.dev)
                if train:
                    self.backward(loss * self.share(n) if shared else loss)
                    if self.ema is not None:
                        self.ema.update_parameters(self.model)
                    self.state.step += 1
                    if self.on_step:
                        self.on_step(self.state.step)
                if not n:
                    continue
                total += n
                loss_sum += loss.detach() * n
                correct += (out.argmax(1) == y).sum()
                meter.update(loss_sum, total)
        loss_total, hits = loss_sum.item(), correct.item()
        if self.dist.active:
            loss_total, hits, total, skipped = all_sum(self.dist, [loss_total, hits, total, skipped], self.dev.device)
            total, skipped = int(total), int(skipped)
            self.merge_skipped()
        if not total:
            return math.nan, math.nan, skipped, 0.0
        return loss_total / total, hits / total, skipped, meter.rate * self.dist.world_size

    def share(self, n: int) -> torch.Tensor:
        """This rank's loss weight: n x world / images in the global step (DDP then averages over ranks)."""
        import torch.distributed as dist

        count = torch.tensor(float(n), device=self.dev.device)
        dist.all_reduce(count)
        return n * self.dist.world_size / count.clamp(min=1)

    def blank(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One black image of the crop size, label 0: the zero-weight stand-in of a rank with no image in a step."""
        c = self.pre.crop
        return torch.zeros(1, 3, c, c, dtype=torch.uint8), torch.zeros(1, dtype=torch.long)

    def merge_skipped(self) -> None:
        """Files another rank could not decode, added to this rank's list (rank 0's goes into metrics.json)."""
        for paths in all_gather(self.dist, list(self.state.skipped)):
            for path in paths:
                if path not in self.state.skipped:
                    self.state.skipped.append(path)
                    self.echo(f"skipped {path}: it could not be decoded (on another rank)")

    def backward(self, loss: torch.Tensor) -> None:
        for o in self.optimizers.values():
            o.zero_grad(set_to_none=True)
        if self.scaler:
            self.scaler.scale(loss).backward()
            for o in self.optimizers.values():
                self.scaler.step(o)
            self.scaler.update()
        else:
            loss.backward()
            for o in self.optimizers.values():
                o.step()

    def note_skipped(self, loader, bad: dict[int, str]) -> None:
        for i, why in bad.items():
            path = loader.dataset.samples[i][0]
            if path not in self.state.skipped:
                self.state.skipped.append(path)
                self.echo(f"skipped {path}: it could not be decoded ({why})")

    def after_epoch(self, row: dict) -> bool:
        """Record the epoch, track the best; True when early stopping ends the stage."""
        st = self.state
        value = row[self.monitor]
        lower = "loss" in self.monitor
        improved = not math.isnan(value) and (st.best_value is None or (value < st.best_value if lower else value > st.best_value))
        if improved:
            st.best_value, st.best_epoch, st.bad_epochs = value, row["epoch"], 0
        else:
            st.bad_epochs += 1
        row["best"] = improved
        st.history.append(row)
        self.echo(f"epoch {row['epoch']} {row['stage']} {row['stage_epoch']}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}"
                  f" | valid loss {row['valid_loss']:.4f} acc {row['valid_acc']:.4f}{' *' if improved else ''}"
                  + (f" | ema valid acc {row['valid_acc_ema']:.4f}" if "valid_acc_ema" in row else "")
                  + f" | {row['seconds']:.1f} s, {self.train_rate:.0f} img/s | lr {format_lrs(self.lrs)}")
        if self.tensorboard is not None:
            self.tensorboard.epoch(row, self.train_rate)
        if self.patience and st.bad_epochs >= self.patience:
            st.stopped_early = True
            self.echo(f"early stop: {self.monitor} did not improve for {st.bad_epochs} epochs")
            return True
        return False

    def save(self, improved: bool) -> None:
        if not self.dist.main:
            return
        last, best = self.run_dir / "last.pt", self.run_dir / "best.pt"
        with deferred_signals():  # Ctrl-C cannot fall between last.pt and best.pt
            checkpoint.save(last, {**self.payload(), "done": self.done})
            if improved:
                checkpoint.copy(last, best)
        from datacurate.train.outputs import write_history

        write_history(self.run_dir, self.state.history)
