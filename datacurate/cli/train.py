"""CLI: `datacurate train`, `datacurate evaluate`, `datacurate predict` (flags only; the work is in the library)."""

from __future__ import annotations

import json
import sys

import click

from datacurate.core.terminal import echo_json
from datacurate.results import TERMINAL
from datacurate.cli.context import json_option, pass_ctx
from datacurate.cli.flags import model_options
from datacurate.core.errors import UserError
from datacurate.train.options import EvaluateOptions, PredictOptions, TrainOptions


@click.command()
@model_options(TrainOptions)
@click.option("--gpus", type=int, metavar="N", help="Train on N GPUs of this machine: one process each, DDP (--batch-size is per GPU).")
@click.option("--processes", type=int, metavar="N", help="Train in N processes on this machine (with --device cpu: gloo on the CPU).")
@click.option("--resume", is_flag=True, help="Continue run --name (default: the latest run) from its last.pt.")
@click.option("--plan", "plan_only", is_flag=True, help="Print the stages, frozen/trained modules and groups; train nothing.")
@json_option
@pass_ctx
def train(ctx, resume, plan_only, as_json, gpus, processes, **flags):
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
    say = (lambda s: None) if ctx.quiet else (lambda s: click.echo(s, err=True))
    if nproc and not plan_only:
        api.train_preflight(ws, resume=resume, **flags)
        code = launch.launch(_child_argv(click.get_current_context(), ctx, ws), nproc, debug=ctx.debug)
        raise click.exceptions.Exit(code)
    run = api.train(ws, plan=plan_only, resume=resume, quiet=ctx.quiet or as_json, echo=say, processes=nproc,
                    lock=not follower, **flags)
    if run.raw.main:
        TERMINAL.show(run, as_json)


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


_EMA = click.option("--ema", is_flag=True, default=None, help="Use the run's averaged weights (trained with --ema).")


@click.command()
@click.argument("run")
@click.argument("data", required=False)
@model_options(EvaluateOptions)
@json_option
@pass_ctx
def evaluate(ctx, run, data, as_json, **flags):
    """Accuracy, per-class precision/recall and confusion matrix of RUN on DATA (default data/split/valid)."""
    from datacurate import api

    TERMINAL.show(api.evaluate(ctx.workspace(), run, data, quiet=ctx.quiet or as_json, **flags), as_json)


@click.command()
@click.argument("args", nargs=-1, required=True, metavar="[RUN] IMAGE_OR_DIR...")
@click.option("--model", "model_file", metavar="FILE", help="An exported .onnx or TorchScript file (then no RUN argument).")
@model_options(PredictOptions)
@pass_ctx
def predict(ctx, args, model_file, run=None, inputs=(), **flags):
    """One JSON line per image: {"path", "result", "top": [[label, prob], ...]}; or a CSV submission (--format csv)."""
    from datacurate import api
    from datacurate.train import submission

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
