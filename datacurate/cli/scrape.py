"""`datacurate scrape`: flags onto scrape(), then the summary."""

from __future__ import annotations

import click

from datacurate.results import TERMINAL
from datacurate.cli.context import json_option, pass_ctx
from datacurate.cli.flags import model_options
from datacurate.cli.ray import ray_flag, ray_options
from datacurate.scrape.options import ScrapeOptions


@click.command()
@model_options(ScrapeOptions)
@click.option("--dry-run", is_flag=True, help="Print the queries and result-page URLs; fetch nothing.")
@json_option
@ray_options
@pass_ctx
def scrape(ctx, dry_run, as_json, ray, no_ray, **flags) -> None:
    """More images per class from image search, by query template, into data/scraped/<class>/.

    Engines: bing (default), baidu, wikimedia and openverse (both say each image's licence and author,
    no key), flickr (an API key; new keys need a Pro account), greedy (one site), urls (a list). Google
    image search is not offered: it needs JavaScript and does not work from a command-line client.
    An engine that refuses (blocked, bad key) is named with its own words; exit 3 when no class got an
    image because an engine blocked this client, 4 for a rejected key, 5 for a page format that changed.
    """
    from datacurate import api

    flags["base_url"] = list(flags["base_url"]) or None
    flags["allow_host"] = list(flags["allow_host"]) or None
    warn = lambda msg: click.echo(f"datacurate: warning: {msg}", err=True)  # noqa: E731
    run = api.scrape(ctx.workspace(), dry_run=dry_run, quiet=ctx.quiet or as_json, warn=warn, ray=ray_flag(ray, no_ray), **flags)
    TERMINAL.show(run, as_json)
    failure = run.failure()
    if failure:
        error = click.ClickException(failure[0])
        error.exit_code = failure[1]
        raise error


COMMANDS = [scrape]
