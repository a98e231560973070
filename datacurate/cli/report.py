"""CLI for `datacurate report [STAGE...]`."""

from __future__ import annotations

import json

import click

from datacurate.cli.context import pass_ctx
from datacurate.cli.flags import model_options
from datacurate.regenerate import ALIASES, STAGES
from datacurate.split.options import SplitOptions


@click.command("report")
@click.argument("stages", nargs=-1, type=click.Choice(STAGES + tuple(ALIASES)))
@model_options(SplitOptions, only=["min_per_class"])
@click.option("--page-size", type=int, default=None, help="clean, vet: cards per page (default 200).")
@click.option("--json", "as_json", is_flag=True, help="Print the paths written as JSON.")
@pass_ctx
def report(ctx, stages, min_per_class, page_size, as_json):
    """Write the reports of STAGES (clean, vet, split, scrape; default: every stage with results) again from the catalog."""
    from datacurate.regenerate import report as write_reports

    out = write_reports(ctx.workspace(), stages, min_per_class=min_per_class, page_size=page_size,
                        quiet=ctx.quiet or as_json)
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if not out:
        click.echo("nothing to report: the catalog holds no stage's results yet")
    for stage, paths in out.items():
        for name in ("table", "summary"):  # split: the class table, as `split` prints it, then its summary line
            if name in paths:
                click.echo(paths[name])
        for name, path in paths.items():
            if name not in ("table", "summary"):
                click.echo(f"report: {path}")


COMMANDS = [report]
