"""CLI: `datacurate split` and `datacurate stats` (`datacurate report split` is in datacurate.report)."""

from __future__ import annotations

import click

from datacurate.cli.context import json_option, pass_ctx
from datacurate.cli.flags import model_options
from datacurate.core.errors import UserError
from datacurate.split.options import SplitOptions

MAX_WARNINGS = 12


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
    for line in [run.to_json()] if as_json else run.lines():
        click.echo(line)
    _warn(run.warnings())


def _show(ws, path) -> str:
    """A path as the user reads it: workspace-relative when inside the workspace."""
    try:
        return ws.rel(path)
    except UserError:
        return str(path)


def _warn(lines: list[str]) -> None:
    for line in lines[:MAX_WARNINGS]:
        click.echo(f"datacurate: warning: {line}", err=True)
    if len(lines) > MAX_WARNINGS:
        click.echo(f"datacurate: warning: ... and {len(lines) - MAX_WARNINGS} more", err=True)


@click.command("stats")
@model_options(SplitOptions, command="stats")
@json_option
@pass_ctx
def stats(ctx, as_json, stats_size):
    """Per-channel mean and std of the train split, written to data/split/stats.json for the trainer."""
    from datacurate import api

    run = api.stats(ctx.workspace(), size=stats_size, quiet=ctx.quiet or as_json)
    for line in [run.to_json()] if as_json else run.lines():
        click.echo(line)
    _warn(run.warnings())


COMMANDS = [split, stats]
