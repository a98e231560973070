"""CLI: `datacurate split` and `datacurate stats` (`datacurate report split` is in datacurate.report)."""

from __future__ import annotations

import click

from datacurate.cli.context import json_option, pass_ctx
from datacurate.cli.flags import model_options
from datacurate.results import TERMINAL
from datacurate.split.options import SplitOptions


@click.command("split")
@model_options(SplitOptions)
@click.option("--fresh", is_flag=True, help="Forget earlier assignments and draw anew (images may change split).")
@click.option("--dry-run", is_flag=True, help="Show what the split would be; write nothing.")
@json_option
@pass_ctx
def split(ctx, fresh, dry_run, as_json, **flags):
    """Build data/split/train|valid/<class>/ from data/original and data/scraped (ImageFolder layout)."""
    from datacurate import api

    run = api.split(ctx.workspace(), fresh=fresh, dry_run=dry_run, quiet=ctx.quiet or as_json, **flags)
    TERMINAL.show(run, as_json)


@click.command("stats")
@model_options(SplitOptions, command="stats")
@json_option
@pass_ctx
def stats(ctx, as_json, stats_size):
    """Per-channel mean and std of the train split, written to data/split/stats.json for the trainer."""
    from datacurate import api

    run = api.stats(ctx.workspace(), size=stats_size, quiet=ctx.quiet or as_json)
    TERMINAL.show(run, as_json)


COMMANDS = [split, stats]
