"""CLI: `datacurate train`, `datacurate evaluate`, `datacurate predict` (flags only; the work is in the library)."""

from __future__ import annotations

import json
import sys

import click

from datacurate.clicommon import echo_table, pass_ctx
from datacurate.errors import UserError
from datacurate.train.options import TTA_MODES
from datacurate.train.submission import FORMATS

_OPT = dict(default=None)


@click.command()
@click.option("--arch", help="torchvision architecture (default resnext101_32x8d).", **_OPT)
@click.option("--weights", help="imagenet | imagenet:IMAGENET1K_V1 | none | PATH to a state dict or checkpoint (default imagenet).", **_OPT)
@click.option("--freeze-until", metavar="MODULE", help="Stage 2 trains MODULE and everything after it (default layer3.18).", **_OPT)
@click.option("--head-epochs", type=int, help="Stage 1: epochs training the head alone (default 2).", **_OPT)
@click.option("--epochs", type=int, help="Stage 2: epochs unfrozen from --freeze-until (default 8).", **_OPT)
@click.option("--img-size", type=int, help="Crop size; images are resized to img_size*255/224 first (default 224).", **_OPT)
@click.option("--batch-size", type=int, help="Batch size (default 32).", **_OPT)
@click.option("--workers", type=int, help="DataLoader worker processes (default CPUs - 1, at most 16).", **_OPT)
@click.option("--seed", type=int, help="Random seed (default 0).", **_OPT)
@click.option("--label-smoothing", type=float, help="Cross-entropy label smoothing (default 0).", **_OPT)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), help="Device (default auto).", **_OPT)
@click.option("--amp/--no-amp", default=None, help="Mixed precision on CUDA: bf16 where supported, else fp16 (default on).")
@click.option("--bn-update/--no-bn-update", default=None, help="Let frozen BatchNorm layers update running statistics (default off).")
@click.option("--early-stop", type=click.Choice(["valid_acc", "valid_loss", "train_acc", "train_loss"]),
              help="Metric for best.pt and early stopping (default valid_acc).", **_OPT)
@click.option("--patience", type=int, help="Stop a stage after N epochs without improvement (default 0: never).", **_OPT)
@click.option("--augment", metavar="PRESET", help="Augmentation preset: none, characters (default: brightness 0.05 only), garbage, "
              "fine-grained, strong; train.augment in datacurate.yaml overrides it key by key (see `augment-preview`).", **_OPT)
@click.option("--head", type=click.Choice(["linear", "mlp", "se", "cbam", "bilinear"]), help="Classifier head (default linear).", **_OPT)
@click.option("--head-hidden", type=int, help="mlp head: hidden units (default 512).", **_OPT)
@click.option("--head-dropout", type=float, help="Dropout before the head's last Linear (default 0).", **_OPT)
@click.option("--bilinear", type=click.Choice(["compact", "full"]), help="bilinear head: compact (tensor sketch) or full (default compact).", **_OPT)
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
@click.option("--name", help="Run folder under runs/ (default: the architecture, numbered when taken).", **_OPT)
@click.option("--tensorboard/--no-tensorboard", default=None,
              help="Log loss, accuracy, learning rates and images/s to runs/NAME/tensorboard/ (needs datacurate[tensorboard]).")
@click.option("--resume", is_flag=True, help="Continue run --name (default: the latest run) from its last.pt.")
@click.option("--plan", "plan_only", is_flag=True, help="Print the stages, frozen/trained modules and groups; train nothing.")
@pass_ctx
def train(ctx, resume, plan_only, amp, bn_update, zero_gamma, no_bias_decay, tensorboard, **flags):
    """Fine-tune a torchvision model on data/split/train, validating on data/split/valid."""
    from datacurate.train.run import train as run_train

    ws = ctx.workspace()
    flags.update(amp=amp, bn_update=bn_update, zero_gamma=zero_gamma, no_bias_decay=no_bias_decay, tensorboard=tensorboard)
    say = (lambda s: None) if ctx.quiet else (lambda s: click.echo(s, err=True))
    res = run_train(ws, flags, plan_only=plan_only, resume=resume, quiet=ctx.quiet, echo=say)
    if plan_only:
        for line in res.plan:
            click.echo(line)
        return
    b = res.best
    click.echo(f"run {res.name}: {res.epochs} epochs on {res.device}; best epoch {res.best_epoch}: "
               f"valid acc {b.get('valid_acc', float('nan')):.4f}, valid loss {b.get('valid_loss', float('nan')):.4f}"
               f"{' (stopped early)' if res.stopped_early else ''}")
    if res.skipped:
        click.echo(f"{len(res.skipped)} files could not be decoded and were skipped (listed in metrics.json)")
    click.echo(f"wrote {ws.rel(res.run_dir)}/: best.pt last.pt history.csv history.png metrics.json config.yaml report.html"
               + (" tensorboard/" if (res.run_dir / "tensorboard").is_dir() else ""))


_TTA = click.option("--tta", type=click.Choice(TTA_MODES),
                    help="Test-time augmentation: average the softmax over the mirror, five crops, or views under the run's policy.")
_TTA_VIEWS = click.option("--tta-views", type=int, default=8, show_default=True, help="--tta policy: augmented views per image.")
_HEAD_FROM = click.option("--head-from", type=click.Choice(["svm", "logreg"]), help="Use the classifier `fit-head` fitted on the run's features.")
_EMA = click.option("--ema", is_flag=True, help="Use the run's averaged weights (trained with --ema).")


@click.command()
@click.argument("run")
@click.argument("data", required=False)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--workers", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@click.option("--pairs", type=int, default=10, show_default=True, help="Most-confused pairs to list.")
@click.option("--worst", type=int, default=8, show_default=True, help="errors.html: most confidently wrong images per class.")
@click.option("--examples", type=int, default=3, show_default=True,
              help="errors.html: images of the class a wrong image was taken for, shown beside it.")
@_TTA
@_TTA_VIEWS
@_HEAD_FROM
@_EMA
@pass_ctx
def evaluate(ctx, run, data, batch_size, workers, device, pairs, worst, examples, tta, tta_views, head_from, ema):
    """Accuracy, per-class precision/recall and confusion matrix of RUN on DATA (default data/split/valid)."""
    from datacurate.train.evaluate import evaluate as run_eval

    if batch_size < 1 or workers < 0:
        raise UserError("--batch-size must be at least 1 and --workers at least 0")
    if worst < 0 or examples < 0:
        raise UserError("--worst and --examples must be at least 0")
    ws = ctx.workspace()
    res = run_eval(ws, run, data, batch_size=batch_size, workers=workers, device=device, top_pairs=pairs, quiet=ctx.quiet,
                   tta=tta, tta_views=tta_views, head_from=head_from, ema=ema, worst=worst, examples=examples)
    tail = f", with TTA ({res.tta}) {res.accuracy_tta:.4f}" if res.tta else ""
    click.echo(f"{res.run} on {res.data}: {res.images} images, accuracy {res.accuracy:.4f}{tail}")
    echo_table(res.per_class, ["class", "support", "precision", "recall", "f1"])
    if res.confused:
        click.echo("most confused (true -> predicted):")
        for c in res.confused:
            click.echo(f"  {c['true']} -> {c['predicted']}: {c['count']}")
    if res.skipped:
        click.echo(f"{len(res.skipped)} files could not be decoded and were skipped")
    wrong = sum(p.wrong for p in res.predictions)
    click.echo(f"wrote {res.out_dir}/: predictions.csv errors.html ({wrong} wrong) confusion.csv confusion_normalized.csv "
               "confusion.png confusion.svg confusion_normalized.svg per_class.csv metrics.json")
    if res.report:
        click.echo(f"run report: {res.report}")


@click.command()
@click.argument("args", nargs=-1, required=True, metavar="[RUN] IMAGE_OR_DIR...")
@click.option("--model", "model_file", metavar="FILE", help="An exported .onnx or TorchScript file (then no RUN argument).")
@click.option("--format", "format", type=click.Choice(FORMATS), default="jsonl", show_default=True,
              help="jsonl: one JSON line per image; csv: a submission with the --columns.")
@click.option("--columns", default="id,label", show_default=True,
              help="--format csv: columns among id (file name without extension), path, label, probability; KEY:HEADER renames.")
@click.option("--top", type=int, default=5, show_default=True, help="Classes per image in `top`.")
@click.option("--label-map", metavar="FILE", help="JSON object mapping class names to display names.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@_TTA
@_TTA_VIEWS
@_HEAD_FROM
@_EMA
@pass_ctx
def predict(ctx, args, model_file, top, label_map, batch_size, device, tta, tta_views, head_from, ema, run=None, inputs=(),
            format="jsonl", columns="id,label"):
    """One JSON line per image: {"path", "result", "top": [[label, prob], ...]}; or a CSV submission (--format csv)."""
    from datacurate.train import submission
    from datacurate.train.predict import predict as run_predict

    if top < 1 or batch_size < 1:
        raise UserError("--top and --batch-size must be at least 1")
    if run is not None:  # invoked in-process as predict(run=..., inputs=...) (the demo does)
        args = (run, *inputs)
    run, inputs = (None, list(args or ())) if model_file else (args[0], list(args[1:]))
    if not inputs:
        raise UserError("predict needs RUN and at least one IMAGE_OR_DIR (or --model FILE and images)")
    if model_file and (head_from or ema):
        raise UserError("--head-from and --ema apply to a run, not to an exported --model file")
    cols = submission.parse_columns(columns) if format == "csv" else None
    records = run_predict(ctx.workspace(), run, inputs, top=top, label_map=label_map, batch_size=batch_size, device=device,
                          tta=tta, tta_views=tta_views, head_from=head_from, ema=ema, model_file=model_file)
    if cols:
        _predict_csv(records, cols)
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
@pass_ctx
def fit_head(ctx, run, classifier, backbone, backbone_weights, c, batch_size, workers, device):
    """Fit an SVM or logistic regression on RUN's features of data/split/train; compare with its own head on valid."""
    from datacurate.train.fithead import fit_head as run_fit

    if batch_size < 1 or workers < 0:
        raise UserError("--batch-size must be at least 1 and --workers at least 0")
    ws = ctx.workspace()
    res = run_fit(ws, run, classifier=classifier, backbone=backbone, backbone_weights=backbone_weights, c=c,
                  batch_size=batch_size, workers=workers, device=device, quiet=ctx.quiet)
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
@pass_ctx
def export(ctx, run, fmt, output, label_map, ema, check):
    """Write RUN as ONNX or TorchScript with FILE.json (classes, label map, preprocessing) and check it on real images."""
    from datacurate.train.export import TOLERANCE
    from datacurate.train.export import export as run_export

    res = run_export(ctx.workspace(), run, fmt=fmt, out=output, label_map=label_map, ema=ema, check=check)
    click.echo(f"wrote {res.path} and {res.meta_path.name}")
    if res.max_diff is None:
        click.echo(f"parity: {res.note}")
        return
    click.echo(f"parity on {res.checked} split images: max |logit difference| {res.max_diff:.2e} (limit {TOLERANCE:g})")
    if not res.ok:
        raise click.ClickException(f"the {fmt} export differs from the PyTorch model by {res.max_diff:.2e} (> {TOLERANCE:g})")


@click.command("augment-preview")
@click.option("--policy", metavar="PRESET", help="Preset to show (default: train.augment of datacurate.yaml, else characters).")
@click.option("-n", "n", type=click.IntRange(1, 64), default=8, show_default=True, help="Augmented versions per image.")
@click.option("--per-class", type=click.IntRange(1, 100), default=2, show_default=True, help="Train images shown per class.")
@click.option("--max-classes", type=click.IntRange(0, 100000), default=0, show_default=True, help="Show the first N classes only (0: all).")
@click.option("--seed", type=int, help="Seed (default: train.seed).")
@pass_ctx
def augment_preview(ctx, policy, n, per_class, max_classes, seed):
    """See what the augmentation policy does to train images before training on it (reports/augment.html)."""
    from datacurate.train.preview import augment_preview as run_preview

    ws = ctx.workspace()
    res = run_preview(ws, policy=policy, n=n, per_class=per_class, seed=seed, max_classes=max_classes)
    click.echo(f"policy: {res.description}")
    click.echo(f"wrote {ws.rel(res.html)} and {ws.rel(res.png)}: {res.images} images of {res.classes} classes, {n} versions each")


COMMANDS = [train, evaluate, predict, fit_head, export, augment_preview]
