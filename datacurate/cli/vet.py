"""CLI for `datacurate vet`."""

from __future__ import annotations

import click

from datacurate.results import TERMINAL
from datacurate.cli.context import json_option, pass_ctx
from datacurate.cli.flags import model_options
from datacurate.cli.ray import ray_flag, ray_options
from datacurate.vet.options import VetOptions


@click.command()
@model_options(VetOptions)
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
    TERMINAL.show(run, as_json)


COMMANDS = [vet]
