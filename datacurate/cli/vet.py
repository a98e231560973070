"""CLI for `datacurate vet`."""

from __future__ import annotations

import click

from datacurate.core.terminal import echo_result
from datacurate.cli.context import json_option, pass_ctx
from datacurate.cli.ray import ray_flag, ray_options


@click.command()
@click.option("--backbone", help="torchvision classification architecture (default resnet50).")
@click.option("--weights", help="imagenet | none | PATH: a local state dict or datacurate checkpoint for --backbone (default imagenet).")
@click.option("--run", help="Embed with a datacurate run's model (name under runs/, folder or .pt) instead of --backbone.")
@click.option("--train-first", is_flag=True, default=None, help="With --run NAME: train that run on the originals first when it does not exist.")
@click.option("--img-size", type=int, help="Backbone input size (default 224; a run uses its own).")
@click.option("--batch-size", type=int, help="Images per batch (default 64).")
@click.option("--workers", type=int, help="DataLoader workers (default min(8, CPUs - 1)).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), help="Where the backbone runs (default auto).")
@click.option("--neighbours", type=int, help="Nearest originals compared with (default 5).")
@click.option("--offtopic-z", type=float, help="Threshold: the class's median scraped distance + this many MADs (default 2.25).")
@click.option("--offtopic-quantile", type=float, help="Classes with under 12 scraped images: this quantile of the originals' own distances (default 0.98).")
@click.option("--offtopic-threshold", type=float, help="A fixed cosine distance instead of the calibrated threshold.")
@click.option("--folds", type=int, help="K of the K-fold logistic regression (default 5).")
@click.option("--move-originals", is_flag=True, default=None, help="Also move originals that look like another class.")
@click.option("--seed", type=int, help="Seed (default 0).")
@click.option("--dry-run", is_flag=True, help="Print the plan; move nothing.")
@json_option
@ray_options
@pass_ctx
def vet(ctx, dry_run, as_json, ray, no_ray, **flags):
    """Set aside scraped images that are off-topic or look like another class (originals are only listed)."""
    from datacurate import api

    quiet = ctx.quiet or as_json  # progress, like train's epoch lines, goes to stderr; -q silences it
    run = api.vet(ctx.workspace(), dry_run=dry_run, quiet=quiet, echo=(lambda s: None) if quiet else (lambda s: click.echo(s, err=True)),
                  ray=ray_flag(ray, no_ray), **flags)
    echo_result(run, as_json)


COMMANDS = [vet]
