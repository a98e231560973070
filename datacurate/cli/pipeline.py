"""CLI: `datacurate run PIPELINE.yaml` and `datacurate demo [DIR]`."""

from __future__ import annotations

import contextlib
import shutil
import sys
from pathlib import Path

import click

from datacurate import stages as registry
from datacurate.core.terminal import echo_json, json_option, pass_ctx
from datacurate.core.errors import UserError
from datacurate.core.oserrors import user_error
from datacurate.pipeline.runner import STAGES, Pipeline, StageFailed, load_pipeline, run_pipeline
from datacurate.core.workspace import CONFIG_NAME, Workspace

def _invoker(click_ctx: click.Context, ctx, ws: Workspace, pipeline: Pipeline):
    """A function that runs one stage's command in-process with the pipeline's options."""

    def invoke(stage: str, resume: bool) -> None:
        command = click_ctx.find_root().command.get_command(click_ctx, stage)
        kwargs = {}
        if stage == "train":
            kwargs["resume"] = _prepare_run(ws, run_name(pipeline), resume)
            if kwargs["resume"] is None:
                return
            kwargs["name"] = run_name(pipeline)
        if stage == "evaluate":
            kwargs = {k: v for k, v in pipeline.section("evaluate").items() if k != "run"}
            kwargs["run"] = pipeline.section("evaluate").get("run") or run_name(pipeline)
        code = click_ctx.invoke(command, **kwargs)
        if isinstance(code, int) and code:
            raise click.ClickException(f"exit code {code}")

    return invoke


def run_name(pipeline: Pipeline) -> str:
    """The training run a pipeline writes: train.name, else the pipeline file's name."""
    return (pipeline.config.get("train") or {}).get("name") or pipeline.path.stem


def _prepare_run(ws: Workspace, name: str, interrupted: bool) -> bool | None:
    """Whether the train stage resumes run `name` (None: it has nothing left to do).

    Only this pipeline's own run is ever resumed. An interrupted stage continues its run from
    last.pt, or only writes the outputs when training had finished; a run that never wrote a
    checkpoint starts afresh in its folder. Otherwise an earlier run of the name is kept as
    <name>.prev-N and the stage trains anew.
    """
    from datacurate.train.run import run_state

    folder = ws.runs / name
    state = run_state(folder)
    if state == "empty":
        return False
    if interrupted and state == "finished":
        click.echo(f"run {name} had finished before the interruption: nothing left to train")
        return None
    if interrupted:
        return True
    n = 1
    while (ws.runs / f"{name}.prev-{n}").exists():
        n += 1
    shutil.move(str(folder), str(ws.runs / f"{name}.prev-{n}"))
    click.echo(f"kept the earlier run as {ws.rel(ws.runs / f'{name}.prev-{n}')}")
    return False


def execute(click_ctx: click.Context, ctx, pipeline: Pipeline, start=None, stop=None, force=False,
            extra: dict | None = None, as_json: bool = False) -> dict:
    """Run a pipeline in the context's workspace (returns its summary); a failing stage stops it with its message.

    Every section (datacurate.yaml with the pipeline's laid over it) is checked before the first
    stage. `extra` holds options laid over the pipeline's that do not count as a change of options
    (the demo's loopback engine listens on a new port each time).
    """
    if "train" in pipeline.config and not (pipeline.config.get("train") or {}).get("name"):
        pipeline.config["train"] = {**pipeline.config["train"], "name": run_name(pipeline)}
    ctx.overrides = {k: v for k, v in pipeline.config.items() if k in registry.sections() and v is not None}
    for section, values in (extra or {}).items():
        ctx.overrides[section] = {**(ctx.overrides.get(section) or {}), **values}
    ws = ctx.workspace()  # takes the workspace lock for the whole pipeline
    registry.check_config(ws.config, f"{pipeline.path.name} laid over {CONFIG_NAME}")
    invoke = _invoker(click_ctx, ctx, ws, pipeline)
    try:
        if as_json:  # the stages' own output goes to stderr; stdout gets the JSON summary alone
            with contextlib.redirect_stdout(sys.stderr):
                result = run_pipeline(ws, pipeline, invoke, start=start, stop=stop, force=force, echo=click.echo)
        else:
            result = run_pipeline(ws, pipeline, invoke, start=start, stop=stop, force=force, echo=click.echo)
    except StageFailed as exc:
        cause = user_error(exc.cause) or exc.cause
        if isinstance(cause, (UserError, click.ClickException)):
            code = getattr(cause, "exit_code", 2)
            raise _StageError(f"pipeline stopped: stage {exc.stage} failed: {_text(cause)}", code) from cause
        raise
    ran = [o.stage for o in result.outcomes if o.status == "ran"]
    skipped = [o.stage for o in result.outcomes if o.status == "skipped"]
    summary = {"pipeline": pipeline.path.name, "ran": ran, "up_to_date": skipped,
               "stages": [{"stage": o.stage, "status": o.status} for o in result.outcomes]}
    if as_json:
        echo_json(summary)
        return summary
    click.echo(f"pipeline {pipeline.path.name}: ran {', '.join(ran) or 'nothing'}"
               + (f"; up to date: {', '.join(skipped)}" if skipped else ""))
    return summary


def _text(exc: BaseException) -> str:
    fmt = getattr(exc, "format_message", None)
    return fmt() if callable(fmt) else str(exc)


class _StageError(click.ClickException):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.exit_code = code if code else 1


@click.command("run")
@click.argument("pipeline_file", metavar="PIPELINE.yaml")
@click.option("--from", "start", type=click.Choice(STAGES), help="First stage to run.")
@click.option("--to", "stop", type=click.Choice(STAGES), help="Last stage to run.")
@click.option("--force", is_flag=True, help="Run stages even when nothing they read changed.")
@json_option
@pass_ctx
@click.pass_context
def run(click_ctx, ctx, pipeline_file, start, stop, force, as_json):
    """Run scrape, clean, vet, split, train and evaluate with the options in PIPELINE.yaml (resumable)."""
    execute(click_ctx, ctx, load_pipeline(pipeline_file), start, stop, force, as_json=as_json)


@click.command()
@click.argument("directory", default="datacurate-demo", required=False)
@click.option("--per-class", type=click.IntRange(4, 500), default=40, show_default=True, help="Original images per class.")
@click.option("--force", is_flag=True, help="Run every stage again.")
@json_option
@pass_ctx
@click.pass_context
def demo(click_ctx, ctx, directory, per_class, force, as_json):
    """The whole job on built-in data, offline: scrape a loopback image search, clean, vet, split, train, evaluate, predict."""
    from datacurate.demo.run import run_demo

    run_demo(click_ctx, ctx, Path(directory), per_class=per_class, force=force, as_json=as_json)


COMMANDS = [run, demo]
