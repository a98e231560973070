"""CLI: `datacurate train`, `datacurate evaluate`, `datacurate predict` (flags only; the work is in the library)."""

from __future__ import annotations

import json
import sys
import typing

import click

from datacurate.core.terminal import echo_json, echo_result, json_option, pass_ctx
from datacurate.core.errors import UserError
from datacurate.train.options import TTA_MODES, Metric
from datacurate.train.submission import FORMATS

_OPT = dict(default=None)


def _numbers(kind: type, single: bool = False):
    """A click callback: '3,6' -> [3, 6] (one number alone stays a number where `single`); one line when not numbers."""
    def parse(ctx: click.Context, param: click.Parameter, value: str | None):
        if value is None:
            return None
        try:
            out = [kind(v) for v in value.split(",")]
        except ValueError:
            raise UserError(f"{param.opts[0]} must be {'whole ' if kind is int else ''}numbers separated by commas, got {value!r}") from None
        return out[0] if single and len(out) == 1 else out
    return parse


@click.command()
@click.option("--arch", help="torchvision architecture (default resnext101_32x8d).", **_OPT)
@click.option("--weights", help="imagenet | imagenet:IMAGENET1K_V1 | none | PATH to a state dict or checkpoint (default imagenet).", **_OPT)
@click.option("--freeze-until", metavar="MODULE", help="Stage 2 trains MODULE and everything after it (default: by architecture, layer3.18 for resnext101_32x8d; --plan names it).", **_OPT)
@click.option("--head-epochs", type=int, help="Stage 1: epochs training the head alone (default 2).", **_OPT)
@click.option("--epochs", type=int, help="Stage 2: epochs unfrozen from --freeze-until (default 8).", **_OPT)
@click.option("--milestones", metavar="E1,E2", callback=_numbers(int), help="Stage-2 epochs where the learning rate drops (default 3,6).", **_OPT)
@click.option("--gamma", metavar="G[,G2]", callback=_numbers(float, single=True),
              help="The factor of each drop: one, or one per milestone (default 0.2,0.1).", **_OPT)
@click.option("--img-size", type=int, help="Crop size; images are resized to img_size*255/224 first (default 224).", **_OPT)
@click.option("--resize", type=int, metavar="PIXELS", help="Resize the short side to this before the crop (default img_size*255/224).", **_OPT)
@click.option("--normalize", type=click.Choice(["auto", "split", "imagenet"]),
              help="Mean/std: split (data/split/stats.json), imagenet, or auto: split when stats.json exists (default auto).", **_OPT)
@click.option("--batch-size", type=int, help="Batch size (default 32).", **_OPT)
@click.option("--workers", type=int, help="DataLoader worker processes (default CPUs - 1, at most 16).", **_OPT)
@click.option("--seed", type=int, help="Random seed (default 0).", **_OPT)
@click.option("--label-smoothing", type=float, help="Cross-entropy label smoothing (default 0).", **_OPT)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), help="Device (default auto).", **_OPT)
@click.option("--amp/--no-amp", default=None, help="Mixed precision on CUDA: bf16 where supported, else fp16 (default on).")
@click.option("--channels-last/--no-channels-last", default=None, help="Channels-last memory format on CUDA (default on).")
@click.option("--restore-best/--no-restore-best", default=None, help="End with best.pt's weights (default on).")
@click.option("--bn-update/--no-bn-update", default=None, help="Let frozen BatchNorm layers update running statistics (default off).")
@click.option("--early-stop", type=click.Choice(typing.get_args(Metric)),
              help="Metric for best.pt and early stopping; the _ema ones need --ema (default valid_acc).", **_OPT)
@click.option("--patience", type=int, help="Stop a stage after N epochs without improvement (default 0: never).", **_OPT)
@click.option("--augment", metavar="PRESET", help="Augmentation preset: none, characters (default: brightness 0.05 only), garbage, "
              "fine-grained, strong; train.augment in datacurate.yaml overrides it key by key (see `augment-preview`).", **_OPT)
@click.option("--head", type=click.Choice(["linear", "mlp", "se", "cbam", "bilinear"]), help="Classifier head (default linear).", **_OPT)
@click.option("--head-hidden", type=int, help="mlp head: hidden units (default 512).", **_OPT)
@click.option("--head-dropout", type=float, help="Dropout before the head's last Linear (default 0).", **_OPT)
@click.option("--bilinear", type=click.Choice(["compact", "full"]), help="bilinear head: compact (tensor sketch) or full (default compact).", **_OPT)
@click.option("--bilinear-dim", type=int, help="bilinear head: sketch size (compact, default 8192) or channels after a 1x1 reduction (full, default 256).", **_OPT)
@click.option("--norm", type=click.Choice(["batch", "group"]), help="group: GroupNorm in place of BatchNorm, for small batches (default batch).", **_OPT)
@click.option("--zero-gamma", is_flag=True, default=None, help="Zero the last norm weight of each residual block (fresh weights only).")
@click.option("--mixup", type=float, metavar="ALPHA", help="Mixup with Beta(ALPHA, ALPHA) (default 0: off).", **_OPT)
@click.option("--cutmix", type=float, metavar="ALPHA", help="CutMix with Beta(ALPHA, ALPHA) (default 0: off).", **_OPT)
@click.option("--mix-switch", type=float, metavar="P", help="With both: probability of cutmix rather than mixup per batch (default 0.5).", **_OPT)
@click.option("--no-bias-decay/--bias-decay", "no_bias_decay", default=None,
              help="No weight decay on biases and norm parameters (default on).")
@click.option("--ema", type=float, metavar="DECAY", help="Keep an exponential moving average of the weights (e.g. 0.999; default 0: off).", **_OPT)
@click.option("--teacher", metavar="RUN", help="Distil from this run's predictions (same classes).", **_OPT)
@click.option("--teacher-temperature", type=float, help="Distillation temperature (default 4).", **_OPT)
@click.option("--teacher-weight", type=float, help="Share of the distillation term in the loss (default 0.5).", **_OPT)
@click.option("--sync-bn/--no-sync-bn", default=None, help="Several processes: BatchNorm statistics over the global batch (CUDA).")
@click.option("--dist-timeout", type=float, metavar="SECONDS", help="Several processes: wait this long for all to join (default 60).", **_OPT)
@click.option("--gpus", type=int, metavar="N", help="Train on N GPUs of this machine: one process each, DDP (--batch-size is per GPU).")
@click.option("--processes", type=int, metavar="N", help="Train in N processes on this machine (with --device cpu: gloo on the CPU).")
@click.option("--name", help="Run folder under runs/ (default: the architecture, numbered when taken).", **_OPT)
@click.option("--tensorboard/--no-tensorboard", default=None,
              help="Log loss, accuracy, learning rates and images/s to runs/NAME/tensorboard/ (needs datacurate[tensorboard]).")
@click.option("--resume", is_flag=True, help="Continue run --name (default: the latest run) from its last.pt.")
@click.option("--plan", "plan_only", is_flag=True, help="Print the stages, frozen/trained modules and groups; train nothing.")
@json_option
@pass_ctx
def train(ctx, resume, plan_only, as_json, amp, bn_update, zero_gamma, no_bias_decay, sync_bn, channels_last, restore_best, gpus,
          processes, **flags):
    """Fine-tune a torchvision model on data/split/train, validating on data/split/valid."""
    from datacurate import api
    from datacurate.train import launch
    from datacurate.train.distributed import env_rank

    nproc = _processes(gpus, processes, flags, plan_only)
    # Launched by --gpus (the launcher holds the lock) or a rank other than 0 under torchrun: no lock here.
    follower = launch.launched_child() or env_rank() not in (None, 0)
    if follower:
        ctx.skip_lock()
    ws = ctx.workspace()
    flags.update(amp=amp, bn_update=bn_update, zero_gamma=zero_gamma, no_bias_decay=no_bias_decay, sync_bn=sync_bn,
                 channels_last=channels_last, restore_best=restore_best)
    say = (lambda s: None) if ctx.quiet else (lambda s: click.echo(s, err=True))
    if nproc and not plan_only:
        from datacurate.train.run import preflight

        preflight(ws, flags, resume=resume)
        code = launch.launch(_child_argv(click.get_current_context(), ctx, ws), nproc, debug=ctx.debug)
        raise click.exceptions.Exit(code)
    run = api.train(ws, plan=plan_only, resume=resume, quiet=ctx.quiet or as_json, echo=say, processes=nproc,
                    lock=not follower, **flags)
    if run.raw.main:
        echo_result(run, as_json)


def _processes(gpus: int | None, processes: int | None, flags: dict, plan_only: bool = False) -> int:
    """How many local processes --gpus / --processes ask for (0: none, train here); --plan needs no GPU."""
    from datacurate.train import launch

    if gpus is not None and processes is not None:
        raise UserError("--gpus and --processes both given: --gpus N is --processes N on CUDA; pick one")
    if gpus is not None:
        if flags.get("device") not in (None, "auto", "cuda"):
            raise UserError(f"--gpus with --device {flags['device']}: GPUs train on CUDA; for the CPU use --processes N --device cpu")
        launch.check_processes(gpus, "--gpus")
        if not plan_only:
            launch.check_gpus(gpus)
            flags["device"] = "cuda"
        return gpus
    if processes is not None:
        launch.check_processes(processes)
        if not plan_only and (flags.get("device") == "cuda" or (flags.get("device") in (None, "auto") and _cuda())):
            launch.check_gpus(processes)
        return processes
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _child_argv(click_ctx: click.Context, ctx, ws) -> list[str]:
    """The same `train` command line for each launched process, without --gpus/--processes."""
    argv = ["-C", str(ws.root)] + (["-q"] if ctx.quiet else []) + (["--debug"] if ctx.debug else []) + ["train"]
    for p in click_ctx.command.params:
        if not isinstance(p, click.Option) or p.name in ("gpus", "processes"):
            continue
        value = click_ctx.params.get(p.name)
        if p.name == "device" and click_ctx.params.get("gpus") is not None:
            value = "cuda"
        if value is None or (p.is_flag and not value and not p.secondary_opts):
            continue
        if p.is_flag:
            argv.append(p.opts[0] if value else p.secondary_opts[0])
        else:
            argv += [p.opts[0], ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return argv


_TTA = click.option("--tta", type=click.Choice(TTA_MODES),
                    help="Test-time augmentation: average the softmax over the mirror, five crops, or views under the run's policy.")
_TTA_VIEWS = click.option("--tta-views", type=int, help="--tta policy: augmented views per image (default 8).")
_HEAD_FROM = click.option("--head-from", type=click.Choice(["svm", "logreg"]), help="Use the classifier `fit-head` fitted on the run's features.")
_EMA = click.option("--ema", is_flag=True, default=None, help="Use the run's averaged weights (trained with --ema).")


@click.command()
@click.argument("run")
@click.argument("data", required=False)
@click.option("--batch-size", type=int, help="Images per batch (default 32).")
@click.option("--workers", type=int, help="DataLoader worker processes (default 0).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), help="Device (default auto).")
@click.option("--pairs", type=int, help="Most-confused pairs to list (default 10).")
@click.option("--worst", type=int, help="errors.html: most confidently wrong images per class (default 8).")
@click.option("--examples", type=int, help="errors.html: images of the class a wrong image was taken for, shown beside it (default 3).")
@_TTA
@_TTA_VIEWS
@_HEAD_FROM
@_EMA
@json_option
@pass_ctx
def evaluate(ctx, run, data, as_json, **flags):
    """Accuracy, per-class precision/recall and confusion matrix of RUN on DATA (default data/split/valid)."""
    from datacurate import api

    echo_result(api.evaluate(ctx.workspace(), run, data, quiet=ctx.quiet or as_json, **flags), as_json)


@click.command()
@click.argument("args", nargs=-1, required=True, metavar="[RUN] IMAGE_OR_DIR...")
@click.option("--model", "model_file", metavar="FILE", help="An exported .onnx or TorchScript file (then no RUN argument).")
@click.option("--format", "format", type=click.Choice(FORMATS), help="jsonl: one JSON line per image (default); csv: a submission with the --columns.")
@click.option("--columns", help="--format csv: columns among id (file name without extension), path, label, probability; "
              "KEY:HEADER renames (default id,label).")
@click.option("--top", type=int, help="Classes per image in `top` (default 5).")
@click.option("--label-map", metavar="FILE", help="JSON object mapping class names to display names.")
@click.option("--batch-size", type=int, help="Images per batch (default 32).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), help="Device (default auto).")
@_TTA
@_TTA_VIEWS
@_HEAD_FROM
@_EMA
@pass_ctx
def predict(ctx, args, model_file, run=None, inputs=(), **flags):
    """One JSON line per image: {"path", "result", "top": [[label, prob], ...]}; or a CSV submission (--format csv)."""
    from datacurate import api
    from datacurate.train import submission
    from datacurate.train.options import PredictOptions

    if run is not None:  # invoked in-process as predict(run=..., inputs=...) (the demo does)
        args = (run, *inputs)
    run, inputs = (None, list(args or ())) if model_file else (args[0], list(args[1:]))
    if not inputs:
        raise UserError("predict needs RUN and at least one IMAGE_OR_DIR (or --model FILE and images)")
    ws = ctx.workspace()
    opts = ws.options(PredictOptions, flags)
    records = api.predictions(ws, run, inputs, model_file=model_file, **flags)
    if opts.format == "csv":
        _predict_csv(records, submission.parse_columns(opts.columns))
        return
    failed = 0
    for rec in records:
        failed += "error" in rec
        click.echo(json.dumps(rec, ensure_ascii=False))
        sys.stdout.flush()
    if failed:
        raise UserError(f"{failed} images could not be decoded (their lines carry an \"error\")")


def _predict_csv(records, cols) -> None:
    """The submission on stdout; undecodable images named on stderr (no row), then exit 2."""
    from datacurate.train import submission

    errors: list[dict] = []
    ids: list[str] = []
    for line in submission.lines(records, cols, errors, ids):
        click.echo(line, nl=False)
    sys.stdout.flush()
    for dup in submission.duplicate_ids(ids)[:5]:
        click.echo(f"warning: id {dup!r} occurs more than once (files of the same name in different folders)", err=True)
    for rec in errors:
        click.echo(f"{rec['path']}: {rec['error']}", err=True)
    if errors:
        raise UserError(f"{len(errors)} images could not be decoded and have no row in the submission")


@click.command("fit-head")
@click.argument("run")
@click.option("--classifier", type=click.Choice(["svm", "logreg"]), default="svm", show_default=True)
@click.option("--backbone", metavar="ARCH", help="Features from this torchvision backbone instead of the run's network.")
@click.option("--backbone-weights", default="imagenet", show_default=True, help="--backbone's weights: imagenet, none or a file.")
@click.option("-C", "c", type=float, default=1.0, show_default=True, help="Inverse regularisation strength.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--workers", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@json_option
@pass_ctx
def fit_head(ctx, run, classifier, backbone, backbone_weights, c, batch_size, workers, device, as_json):
    """Fit an SVM or logistic regression on RUN's features of data/split/train; compare with its own head on valid."""
    from datacurate.train.fithead import fit_head as run_fit

    if batch_size < 1 or workers < 0:
        raise UserError("--batch-size must be at least 1 and --workers at least 0")
    ws = ctx.workspace()
    res = run_fit(ws, run, classifier=classifier, backbone=backbone, backbone_weights=backbone_weights, c=c,
                  batch_size=batch_size, workers=workers, device=device, quiet=ctx.quiet or as_json)
    if as_json:
        echo_json({"run": res.run, "classifier": res.classifier, "features": res.features, "dim": res.dim,
                   "train_images": res.train_images, "valid_images": res.valid_images, "valid_acc": res.valid_acc,
                   "network_valid_acc": res.network_valid_acc, "path": str(res.path)})
        return
    click.echo(f"{res.run}: {res.classifier} on {res.dim} features ({'the run' if res.features == 'run' else res.features}) of "
               f"{res.train_images} train images: valid accuracy {res.valid_acc:.4f}; the network's own head {res.network_valid_acc:.4f} "
               f"({res.valid_images} valid images)")
    click.echo(f"wrote {ws.rel(res.path) if str(res.path).startswith(str(ws.root)) else res.path}; use it with "
               f"`datacurate predict {res.run} IMAGE --head-from {res.classifier}`")


@click.command("export")
@click.argument("run")
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript"]), default="onnx", show_default=True)
@click.option("-o", "--output", metavar="FILE", help="Where to write (default: the run folder's model.onnx / model.torchscript.pt).")
@click.option("--label-map", metavar="FILE", help="JSON object of class name to display name, stored beside the model.")
@_EMA
@click.option("--check", type=int, default=16, show_default=True, help="Split images to compare PyTorch and the export on.")
@json_option
@pass_ctx
def export(ctx, run, fmt, output, label_map, ema, check, as_json):
    """Write RUN as ONNX or TorchScript, with a .json of the same name (classes, label map, preprocessing), and check it on real images."""
    from datacurate.train.export import TOLERANCE
    from datacurate.train.export import export as run_export

    res = run_export(ctx.workspace(), run, fmt=fmt, out=output, label_map=label_map, ema=bool(ema), check=check)
    if as_json:
        echo_json({"path": str(res.path), "meta": str(res.meta_path), "checked": res.checked, "max_diff": res.max_diff,
                   "ok": res.ok, "note": res.note})
    else:
        click.echo(f"wrote {res.path} and {res.meta_path.name}")
        click.echo(f"parity: {res.note}" if res.max_diff is None else
                   f"parity on {res.checked} split images: max |logit difference| {res.max_diff:.2e} (limit {TOLERANCE:g})")
    if not res.ok:
        raise click.ClickException(f"the {fmt} export differs from the PyTorch model by {res.max_diff:.2e} (> {TOLERANCE:g})")


@click.command("augment-preview")
@click.option("--augment", metavar="PRESET", help="Preset to show, as train --augment (default: train.augment of datacurate.yaml, "
              "else characters).")
@click.option("--policy", "policy_alias", metavar="PRESET", hidden=True, help="The older name of --augment.")
@click.option("-n", "n", type=click.IntRange(1, 64), default=8, show_default=True, help="Augmented versions per image.")
@click.option("--per-class", type=click.IntRange(1, 100), default=2, show_default=True, help="Train images shown per class.")
@click.option("--max-classes", type=click.IntRange(0, 100000), default=0, show_default=True, help="Show the first N classes only (0: all).")
@click.option("--seed", type=int, help="Seed (default: train.seed).")
@json_option
@pass_ctx
def augment_preview(ctx, augment, policy_alias, n, per_class, max_classes, seed, as_json):
    """See what the augmentation policy does to train images before training on it (reports/augment.html)."""
    from datacurate.train.preview import augment_preview as run_preview

    if augment and policy_alias and augment != policy_alias:
        raise UserError(f"--augment {augment} and --policy {policy_alias} disagree; give --augment alone")
    ws = ctx.workspace()
    res = run_preview(ws, policy=augment or policy_alias, n=n, per_class=per_class, seed=seed, max_classes=max_classes)
    if as_json:
        echo_json({"policy": res.description, "html": str(res.html), "png": str(res.png), "images": res.images,
                   "classes": res.classes, "versions": n})
        return
    click.echo(f"policy: {res.description}")
    click.echo(f"wrote {ws.rel(res.html)} and {ws.rel(res.png)}: {res.images} images of {res.classes} classes, {n} versions each")


COMMANDS = [train, evaluate, predict, fit_head, export, augment_preview]
