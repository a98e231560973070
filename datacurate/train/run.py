"""`train`: resolve options, build model, plan and loaders, run the loop, write the run folder."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

from datacurate.core.errors import UserError
from datacurate.core.fsutil import atomic_write_text
from datacurate.vision import checkpoint
from datacurate.train import distributed, tblog
from datacurate.vision.augment import parse_policy
from datacurate.vision.data import ImageSet, Preprocess, load_stats, make_loader, scan_folder
from datacurate.vision.device import pick_device
from datacurate.train.groups import build_optimizers
from datacurate.train.loop import Loop
from datacurate.vision.models import create_model, empty_weights
from datacurate.train.options import DEFAULTS, TrainOptions, to_jsonable
from datacurate.train.outputs import plot_history, write_json, write_history
from datacurate.train.plan import build_plan, describe, plan_summary, step_lines, steps_per_epoch
from datacurate.train.rundir import pick_run_dir, sweep_partials
from datacurate.train.tricks import load_teacher, make_ema, make_mix
from datacurate.core.workspace import Workspace

RESUME_KEEP = ("device", "workers", "dist_timeout", "tensorboard")  # options a resumed run may change; everything else comes from the run


@dataclass
class TrainResult:
    """What a run did (or, with plan_only, would do)."""

    name: str
    run_dir: Path | None
    plan: list[str]
    epochs: int = 0
    best_epoch: int = 0
    best: dict = field(default_factory=dict)
    last: dict = field(default_factory=dict)
    stopped_early: bool = False
    skipped: list[str] = field(default_factory=list)
    device: str = ""
    main: bool = True  # False on the ranks other than 0 of a run on several processes (they write nothing)


def resolve(ws: Workspace, flags: dict[str, Any]) -> dict[str, Any]:
    """Options: flag > datacurate.yaml `train:` > DEFAULTS, validated."""
    opts = ws.options(TrainOptions, flags).as_dict()
    if opts["stages"] and any(flags.get(k) is not None for k in ("head_epochs", "epochs", "freeze_until")):
        raise UserError("datacurate.yaml sets train.stages; --head-epochs, --epochs and --freeze-until only apply to the default two stages")
    if opts["brightness"] is not None:  # the older key, kept working: it overrides the policy's brightness
        raw = opts["augment"]
        opts["augment"] = {**({"preset": raw} if isinstance(raw, str) else dict(raw)), "brightness": opts["brightness"]}
        opts["brightness"] = None
    if opts["resize"] is None:
        opts["resize"] = round(opts["img_size"] * 255 / 224)
    jitter = parse_policy(opts["augment"]).crop_jitter
    if opts["resize"] < opts["img_size"] + 2 * jitter:
        raise UserError(f"train.augment.crop_jitter {jitter} needs train.resize of at least img_size + {2 * jitter} "
                        f"({opts['img_size'] + 2 * jitter}), got {opts['resize']}")
    if opts["zero_gamma"] and str(opts["weights"]) != "none":
        raise UserError("--zero-gamma initialises fresh residual blocks; with pretrained weights it would erase them (use --weights none)")
    if opts["workers"] is None:
        opts["workers"] = max(1, min(16, (os.cpu_count() or 2) - 1))
    return opts


def run_state(run_dir: Path) -> str:
    """empty (no checkpoint yet), training (last.pt mid-run), trained (done, outputs missing) or finished."""
    if not (run_dir / "last.pt").is_file():
        return "empty"
    if not checkpoint.load(run_dir / "last.pt").get("done"):
        return "training"
    return "finished" if (run_dir / "metrics.json").is_file() else "trained"


def train(ws: Workspace, flags: dict[str, Any], *, plan_only: bool = False, resume: bool = False, quiet: bool = False,
          echo: Callable[[str], None] = lambda s: None, on_step: Callable[[int], None] | None = None,
          processes: int | None = None) -> TrainResult:
    """Fine-tune on data/split/train, validating on data/split/valid; see docs/train.md.

    Under torchrun (RANK, WORLD_SIZE, ... in the environment) every process calls this: they join one process
    group, train one model with DistributedDataParallel, and rank 0 alone writes the run folder and prints.
    `processes` only tells --plan how many processes will train (for the global batch).
    """
    opts = resolve(ws, flags)
    if distributed.env_rank() not in (None, 0):  # under torchrun: rank 0 alone prints
        quiet, echo = True, (lambda s: None)
    ck = None
    if resume:
        name, run_dir = pick_run_dir(ws, flags.get("name") or opts.get("name"), opts["arch"], True)
        ck = checkpoint.load(run_dir / "last.pt")
        if ck.get("done") and (run_dir / "metrics.json").is_file():
            raise UserError(f"run {name!r} already finished; start a new one with another --name")
        if ck.get("done"):
            echo(f"run {name} finished training before it was interrupted: writing its outputs")
        _same_flags(flags, ck["config"], name)
        opts = {**DEFAULTS, **ck["config"], **{k: opts[k] for k in RESUME_KEEP if flags.get(k) is not None}}
    if opts["tensorboard"] and not plan_only:
        tblog.require()  # a missing extra stops here, before anything is written
    if plan_only:
        return TrainResult("", None, _plan(ws, opts, echo, processes=processes)[1])
    d, device_name = distributed.setup(str(opts["device"]), float(opts["dist_timeout"]))
    try:
        distributed.check_shared(d, ws.state_dir)
        if resume:
            if distributed.broadcast(d, name) != name:
                raise UserError(f"rank {d.rank} picked run {name!r} to resume, rank 0 another: pass --name")
        else:
            name, run_dir = distributed.broadcast(d, pick_run_dir(ws, opts.get("name"), opts["arch"], False) if d.main else None)
        return _train(ws, opts, ck, name, run_dir, d, device_name, quiet=quiet, echo=echo, on_step=on_step)
    finally:
        distributed.teardown(d)


def _same_flags(flags: dict[str, Any], config: dict[str, Any], name: str) -> None:
    """--resume continues a run as configured: a flag that would change anything but RESUME_KEEP is refused."""
    for key, value in flags.items():
        if value is None or key in RESUME_KEEP or key == "name":
            continue
        was = config.get(key, DEFAULTS.get(key))
        if to_jsonable(value) != to_jsonable(was):
            flag = "--" + key.replace("_", "-")
            raise UserError(f"--resume continues run {name!r} as it started: {flag} {value!r} differs from its {was!r} "
                            f"(a resumed run may change only {', '.join('--' + k.replace('_', '-') for k in RESUME_KEEP)}); "
                            "drop the flag, or train a new run with another --name")


def preflight(ws: Workspace, flags: dict[str, Any], *, resume: bool) -> None:
    """What `train --gpus N` checks before it starts N processes: the options, the split, the plan, the run name."""
    train(ws, flags, plan_only=True, resume=resume)
    split_samples(ws.split_dir)
    opts = resolve(ws, flags)
    if not resume and opts.get("name"):
        pick_run_dir(ws, opts["name"], opts["arch"], False)


def _plan(ws: Workspace, opts: dict[str, Any], echo: Callable[[str], None], classes: list[str] | None = None,
          processes: int | None = None):
    """(model without weights, plan lines) for --plan: the split's classes, or 2 when there is no split yet."""
    images = None
    if classes is None:
        if (ws.split_dir / "train").is_dir():
            classes, train_samples, _ = split_samples(ws.split_dir)
            images = len(train_samples)
        else:
            classes = ["class0", "class1"]
            echo(f"{ws.split_dir / 'train'} does not exist yet: the plan assumes 2 classes")
    with empty_weights():  # names and shapes only: the plan of the largest model takes milliseconds
        model = create_model(opts["arch"], len(classes), "none", options=opts)
    plan = build_plan(model, opts)
    steps = step_lines(plan, images, opts["batch_size"], processes or 1) if images else []
    return plan, describe(model, plan, opts["arch"]) + plan_summary(opts, processes) + steps


def split_samples(split: Path) -> tuple[list[str], list[tuple[str, int]], list[tuple[str, int]]]:
    """(classes, train samples, valid samples) of the split; one line when it cannot train."""
    classes, train_samples = scan_folder(split / "train")
    if len(classes) < 2 or not train_samples:
        raise UserError(f"{split / 'train'} needs at least 2 class folders with images (found {len(classes)} classes, {len(train_samples)} images)")
    _, valid_samples = scan_folder(split / "valid", classes)
    if not valid_samples:
        raise UserError(f"{split / 'valid'} has no images; `datacurate split --valid 0.2` makes a validation split")
    return classes, train_samples, valid_samples


def _train(ws: Workspace, opts: dict[str, Any], ck: dict | None, name: str, run_dir: Path, d: distributed.Dist, device_name: str, *,
           quiet: bool, echo: Callable[[str], None], on_step: Callable[[int], None] | None) -> TrainResult:
    split = ws.split_dir
    classes, train_samples, valid_samples = split_samples(split)
    torch.manual_seed(opts["seed"])
    model = create_model(opts["arch"], len(classes), "none" if ck else str(opts["weights"]), quiet=quiet, options=opts)
    if opts["sync_bn"]:
        model = distributed.sync_batchnorm(model, d, device_name)
    plan = build_plan(model, opts)
    steps = step_lines(plan, len(train_samples), opts["batch_size"], d.world_size)
    lines = describe(model, plan, opts["arch"]) + plan_summary(opts, d.world_size) + steps
    if plan.epochs == 0:
        raise UserError("every stage has 0 epochs: nothing to train")
    opts["name"] = name
    if d.main:
        sweep_partials(ws, run_dir, echo)
    dev = pick_device(device_name, bool(opts["amp"]), bool(opts["channels_last"]))
    if d.active and dev.device.type == "cuda":
        dev.device = torch.device("cuda", d.local_rank)
    mean, std, source = load_stats(split, str(opts["normalize"]))
    pre = Preprocess(opts["resize"], opts["img_size"], mean, std, source)
    if ck:
        pre = Preprocess.from_dict(ck["preprocess"])
    pin = dev.device.type == "cuda"
    train_ds = ImageSet(train_samples, pre, policy=parse_policy(opts["augment"]), seed=opts["seed"])
    valid_ds = ImageSet(valid_samples, pre)
    bs, workers, shard = opts["batch_size"], opts["workers"], {"rank": d.rank, "world": d.world_size}
    model.to(dev.device, memory_format=torch.channels_last if dev.channels_last else torch.preserve_format)
    teacher = load_teacher(ws, str(opts["teacher"]), classes, pre, opts, dev.device) if opts.get("teacher") else None
    loop = Loop(model=model, plan=plan, optimizers=build_optimizers(model, plan.groups, plan.members, bool(opts["no_bias_decay"])),
                mix=make_mix(opts, len(classes)), ema=make_ema(model, float(opts["ema"])), teacher=teacher,
                train_loader=make_loader(train_ds, bs, workers, shuffle=True, seed=opts["seed"], pin=pin, stream=True, **shard),
                valid_loader=make_loader(valid_ds, bs, workers, shuffle=False, pin=pin, **shard),
                pre=pre, dev=dev, run_dir=run_dir, label_smoothing=opts["label_smoothing"], bn_update=bool(opts["bn_update"]),
                monitor=opts["early_stop"], patience=opts["patience"], quiet=quiet, echo=echo, on_step=on_step,
                dist=d, seed=opts["seed"],
                meta={"classes": classes, "arch": opts["arch"], "config": to_jsonable(opts), "world_size": d.world_size})
    if d.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    if ck:
        loop.restore(ck)
        if not loop.done:
            echo(f"resuming {name} at epoch {loop.state.epoch + 1} (stage {plan.stages[loop.state.stage].spec.name})")
        if ck.get("world_size", 1) != d.world_size:
            echo(f"run {name} trained on {ck.get('world_size', 1)} process(es) so far and continues on {d.world_size}: the global "
                 f"batch is {bs * d.world_size} from here on, so it will not repeat an uninterrupted run exactly")
    elif d.main:
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump({"train": to_jsonable(opts)}, allow_unicode=True, sort_keys=False))
        atomic_write_text(run_dir / "plan.txt", "\n".join(lines) + "\n")
    procs = f" x {d.world_size} processes ({d.backend}), global batch {bs * d.world_size}" if d.active else ""
    total = plan.epochs * steps_per_epoch(len(train_samples), bs, d.world_size)
    echo(f"run {name}: {len(train_samples)} train / {len(valid_samples)} valid images, {len(classes)} classes, "
         f"{plan.epochs} epochs, {total} optimizer steps on {dev.device.type}{' ' + str(dev.amp_dtype).replace('torch.', '') if dev.amp_dtype else ''}{procs}")
    if d.main and not ck:
        for line in steps[1:]:  # the too-few-steps warning
            echo(line)
    if opts["tensorboard"] and d.main:
        loop.tensorboard = tblog.Scalars(run_dir)
    try:
        loop.fit()
    finally:
        if loop.tensorboard is not None:
            loop.tensorboard.close()
    if not d.main:
        st = loop.state
        return TrainResult(name, run_dir, [], st.epoch, st.best_epoch, {}, st.history[-1] if st.history else {}, st.stopped_early,
                           list(st.skipped), str(dev.device), main=False)
    return finish(loop, run_dir, name, bool(opts["restore_best"]), dev)


def finish(loop: Loop, run_dir: Path, name: str, restore_best: bool, dev) -> TrainResult:
    """Restore the best weights if asked, write metrics.json, history.csv and the plot."""
    st = loop.state
    best_row = next((r for r in st.history if r["epoch"] == st.best_epoch), {})
    restored = False
    if restore_best and (run_dir / "best.pt").is_file() and st.best_epoch != st.history[-1]["epoch"]:
        best = checkpoint.load(run_dir / "best.pt")
        loop.model.load_state_dict(best["model"])
        if loop.ema is not None and best.get("ema"):
            loop.ema.load_state_dict(best["ema"])
        restored = True
    write_history(run_dir, st.history)
    plot_history(run_dir, st.history)
    metrics = {"run": name, "arch": loop.meta["arch"], "classes": loop.meta["classes"], "epochs": st.epoch,
               "monitor": loop.monitor, "best_epoch": st.best_epoch, "best": best_row, "last": st.history[-1],
               "stopped_early": st.stopped_early, "restored_best": restored, "skipped_files": st.skipped,
               "device": str(dev.device), "amp": str(dev.amp_dtype).replace("torch.", "") if dev.amp_dtype else None,
               "processes": loop.dist.world_size, "global_batch": loop.meta["config"]["batch_size"] * loop.dist.world_size,
               "data": {split: class_counts(loader.dataset.samples, loop.meta["classes"])
                        for split, loader in (("train", loop.train_loader), ("valid", loop.valid_loader))}}
    write_json(run_dir / "metrics.json", metrics)
    from datacurate.train.report import write_run_report

    write_run_report(run_dir)
    return TrainResult(name, run_dir, [], st.epoch, st.best_epoch, best_row, st.history[-1], st.stopped_early,
                       list(st.skipped), str(dev.device))


def class_counts(samples: list[tuple[str, int]], classes: list[str]) -> dict[str, int]:
    """Images per class name, in class order."""
    counts = [0] * len(classes)
    for _, label in samples:
        counts[label] += 1
    return dict(zip(classes, counts))
