"""CLI: `datacurate train`, `datacurate evaluate`, `datacurate predict` (flags only; the work is in the library)."""

from __future__ import annotations

import json
import sys

import click

from datacurate.clicommon import echo_table, pass_ctx
from datacurate.errors import UserError

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
@click.option("--resume", is_flag=True, help="Continue run --name (default: the latest run) from its last.pt.")
@click.option("--plan", "plan_only", is_flag=True, help="Print the stages, frozen/trained modules and groups; train nothing.")
@pass_ctx
def train(ctx, resume, plan_only, amp, bn_update, zero_gamma, no_bias_decay, **flags):
    """Fine-tune a torchvision model on data/split/train, validating on data/split/valid."""
    from datacurate.train.run import train as run_train

    ws = ctx.workspace()
    flags.update(amp=amp, bn_update=bn_update, zero_gamma=zero_gamma, no_bias_decay=no_bias_decay)
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
    click.echo(f"wrote {ws.rel(res.run_dir)}/: best.pt last.pt history.csv history.png metrics.json config.yaml")


@click.command()
@click.argument("run")
@click.argument("data", required=False)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--workers", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@click.option("--pairs", type=int, default=10, show_default=True, help="Most-confused pairs to list.")
@pass_ctx
def evaluate(ctx, run, data, batch_size, workers, device, pairs):
    """Accuracy, per-class precision/recall and confusion matrix of RUN on DATA (default data/split/valid)."""
    from datacurate.train.evaluate import evaluate as run_eval

    if batch_size < 1 or workers < 0:
        raise UserError("--batch-size must be at least 1 and --workers at least 0")
    ws = ctx.workspace()
    res = run_eval(ws, run, data, batch_size=batch_size, workers=workers, device=device, top_pairs=pairs, quiet=ctx.quiet)
    click.echo(f"{res.run} on {res.data}: {res.images} images, accuracy {res.accuracy:.4f}")
    echo_table(res.per_class, ["class", "support", "precision", "recall", "f1"])
    if res.confused:
        click.echo("most confused (true -> predicted):")
        for c in res.confused:
            click.echo(f"  {c['true']} -> {c['predicted']}: {c['count']}")
    if res.skipped:
        click.echo(f"{len(res.skipped)} files could not be decoded and were skipped")
    click.echo(f"wrote {res.out_dir}/: confusion.csv confusion.png per_class.csv metrics.json")


@click.command()
@click.argument("run")
@click.argument("inputs", nargs=-1, required=True, metavar="IMAGE_OR_DIR...")
@click.option("--top", type=int, default=5, show_default=True, help="Classes per image in `top`.")
@click.option("--label-map", metavar="FILE", help="JSON object mapping class names to display names.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@pass_ctx
def predict(ctx, run, inputs, top, label_map, batch_size, device):
    """One JSON line per image: {"path", "result", "top": [[label, prob], ...]}."""
    from datacurate.train.predict import predict as run_predict

    if top < 1 or batch_size < 1:
        raise UserError("--top and --batch-size must be at least 1")
    failed = 0
    for rec in run_predict(ctx.workspace(), run, list(inputs), top=top, label_map=label_map, batch_size=batch_size, device=device):
        failed += "error" in rec
        click.echo(json.dumps(rec, ensure_ascii=False))
        sys.stdout.flush()
    if failed:
        raise UserError(f"{failed} images could not be decoded (their lines carry an \"error\")")


COMMANDS = [train, evaluate, predict]
