"""CLI: `datacurate run PIPELINE.yaml` and `datacurate demo [DIR]` (the work is in datacurate.pipeline and datacurate.demo)."""

from __future__ import annotations

from pathlib import Path

import click

from datacurate.cli.context import json_option, pass_ctx
from datacurate.pipeline.execute import Session, Stopped, execute
from datacurate.pipeline.runner import STAGES, load_pipeline
from datacurate.results import TERMINAL


def _session(ctx) -> Session:
    """The pipeline's way to the workspace: the command's own (it holds the workspace lock until the command ends)."""
    return Session(ctx.workspace, quiet=ctx.quiet, term=TERMINAL)


class _StageError(click.ClickException):
    def __init__(self, stopped: Stopped):
        super().__init__(str(stopped))
        self.exit_code = stopped.exit_code or 1


@click.command("run")
@click.argument("pipeline_file", metavar="PIPELINE.yaml")
@click.option("--from", "start", type=click.Choice(STAGES), help="First stage to run.")
@click.option("--to", "stop", type=click.Choice(STAGES), help="Last stage to run.")
@click.option("--force", is_flag=True, help="Run stages even when nothing they read changed.")
@json_option
@pass_ctx
def run(ctx, pipeline_file, start, stop, force, as_json):
    """Run scrape, clean, vet, split, train and evaluate with the options in PIPELINE.yaml (resumable)."""
    try:
        execute(_session(ctx), load_pipeline(pipeline_file), start, stop, force, as_json=as_json)
    except Stopped as exc:
        raise _StageError(exc) from exc.__cause__


@click.command()
@click.argument("directory", default="datacurate-demo", required=False)
@click.option("--per-class", type=click.IntRange(4, 500), default=40, show_default=True, help="Original images per class.")
@click.option("--force", is_flag=True, help="Run every stage again.")
@json_option
@pass_ctx
def demo(ctx, directory, per_class, force, as_json):
    """The whole job on built-in data, offline: scrape a loopback image search, clean, vet, split, train, evaluate, predict."""
    from datacurate.demo.run import run_demo

    root = Path(directory)
    ctx.workspace_arg = str(root)  # the demo's workspace, whatever -C says
    try:
        run_demo(_session(ctx), root, per_class=per_class, force=force, as_json=as_json)
    except Stopped as exc:
        raise _StageError(exc) from exc.__cause__


COMMANDS = [run, demo]
