"""CLI for `datacurate review [STAGE...]`: serve the review app on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import click

from datacurate import stages
from datacurate.cli.context import json_option, pass_ctx

STAGES = stages.REVIEWED


@click.command()
@click.argument("stages", nargs=-1, type=click.Choice(STAGES))
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0: a free one).")
@click.option("--host", default=None, help="Address to serve on (default 127.0.0.1; another one lets other machines in).")
@click.option("--no-browser", is_flag=True, help="Print the URL; do not open a browser.")
@json_option
@pass_ctx
def review(ctx, stages, port, host, no_browser, as_json):
    """Triage every flagged image by keyboard in a local web app: keep, set aside, relabel, undo.

    Prints the URL (with its token; --json: as {"url": ...}) and opens the browser; every decision is
    stored at once.
    """
    from datacurate.review.serve import serve

    def started(url: str) -> None:
        if as_json:
            import json

            return click.echo(json.dumps({"url": url}))
        click.echo(f"review: {url}")
        click.echo("Ctrl-C stops it; every decision is already stored")

    serve(ctx.workspace(), stages=tuple(stages), port=port, host=host, browser=not no_browser, started=started,
          warn=lambda s: click.echo(f"datacurate: warning: {s}", err=True))


COMMANDS = [review]
