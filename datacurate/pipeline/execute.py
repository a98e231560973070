"""A pipeline run in a workspace: each stage through its Python API function, printed as its command prints.

`datacurate run` and `datacurate demo` run pipelines with this. A Session opens the workspace (the CLI's
way: the workspace lock held for the whole command), lays the pipeline's sections over its
datacurate.yaml for every stage, and prints through a datacurate.results.Terminal.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from typing import Any, Callable

from datacurate import api
from datacurate import stages as registry
from datacurate.core.errors import UserError
from datacurate.core.oserrors import user_error
from datacurate.core.workspace import CONFIG_NAME, Workspace
from datacurate.pipeline.runner import Pipeline, StageFailed, run_pipeline
from datacurate.results import TERMINAL, Result, Terminal


class StageExit(Exception):
    """A stage ended with an exit code of its own (scrape: no class got an image, and why)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class Stopped(StageExit):
    """The pipeline stopped at a stage that failed with a user's error: the line to print, the exit code."""


class Session:
    """How a pipeline reaches its workspace and the terminal.

    `open_workspace()` opens the workspace (the CLI's takes the workspace lock for the whole command);
    `overrides` are the sections laid over its datacurate.yaml (a pipeline file's); `quiet` silences
    progress; `term` is where the stages print.
    """

    def __init__(self, open_workspace: Callable[[], Workspace], *, quiet: bool = False, term: Terminal = TERMINAL):
        self.open_workspace = open_workspace
        self.quiet = quiet
        self.term = term
        self.overrides: dict[str, Any] = {}

    def workspace(self) -> Workspace:
        """The workspace as a stage sees it: opened afresh, the overrides laid over datacurate.yaml."""
        ws = self.open_workspace()
        for section, values in self.overrides.items():
            if isinstance(values, dict) and isinstance(ws.config.get(section), dict):
                ws.config[section] = {**ws.config[section], **values}
            else:
                ws.config[section] = values
        if "paths" in self.overrides:
            ws.relayout()
        return ws


def run_name(pipeline: Pipeline) -> str:
    """The training run a pipeline writes: train.name, else the pipeline file's name."""
    return (pipeline.config.get("train") or {}).get("name") or pipeline.path.stem


def execute(session: Session, pipeline: Pipeline, start: str | None = None, stop: str | None = None,
            force: bool = False, extra: dict | None = None, as_json: bool = False) -> dict:
    """Run a pipeline (returns its summary); a stage failing with a user's error raises Stopped.

    Every section (datacurate.yaml with the pipeline's laid over it) is checked before the first
    stage. `extra` holds options laid over the pipeline's that do not count as a change of options
    (the demo's loopback engine listens on a new port each time).
    """
    if "train" in pipeline.config and not (pipeline.config.get("train") or {}).get("name"):
        pipeline.config["train"] = {**pipeline.config["train"], "name": run_name(pipeline)}
    session.overrides = {k: v for k, v in pipeline.config.items() if k in registry.sections() and v is not None}
    for section, values in (extra or {}).items():
        session.overrides[section] = {**(session.overrides.get(section) or {}), **values}
    ws = session.workspace()
    registry.check_config(ws.config, f"{pipeline.path.name} laid over {CONFIG_NAME}")
    invoke = lambda stage, resume: run_stage(session, pipeline, stage, resume)  # noqa: E731
    try:  # with as_json the stages' own output goes to stderr; stdout gets the JSON summary alone
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            result = run_pipeline(ws, pipeline, invoke, start=start, stop=stop, force=force, echo=session.term.echo)
    except StageFailed as exc:
        cause = user_error(exc.cause) or exc.cause
        if isinstance(cause, (UserError, StageExit)):
            raise Stopped(f"pipeline stopped: stage {exc.stage} failed: {cause}", getattr(cause, "exit_code", 2)) from cause
        raise
    ran = [o.stage for o in result.outcomes if o.status == "ran"]
    skipped = [o.stage for o in result.outcomes if o.status == "skipped"]
    summary = {"pipeline": pipeline.path.name, "ran": ran, "up_to_date": skipped,
               "stages": [{"stage": o.stage, "status": o.status} for o in result.outcomes]}
    if as_json:
        session.term.echo(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    else:
        session.term.echo(f"pipeline {pipeline.path.name}: ran {', '.join(ran) or 'nothing'}"
                          + (f"; up to date: {', '.join(skipped)}" if skipped else ""))
    return summary


def run_stage(session: Session, pipeline: Pipeline, stage: str, resume: bool) -> None:
    """Run one stage with the pipeline's options and print its result, as its command does.

    `resume`: the stage was started on the same inputs and options and did not finish.
    """
    ws, term, quiet = session.workspace(), session.term, session.quiet
    progress = None if quiet else term.err  # vet's and train's progress lines go to stderr
    if stage == "train":
        resume_run = _prepare_run(ws, run_name(pipeline), resume, term)
        if resume_run is None:
            return
        result: Result = api.train(ws, resume=resume_run, quiet=quiet, echo=progress, processes=0, name=run_name(pipeline))
        if not result.raw.main:  # a rank other than 0 of a run on several processes prints nothing
            return
    elif stage == "evaluate":
        result = api.evaluate(ws, pipeline.section("evaluate").get("run") or run_name(pipeline), quiet=quiet)
    else:
        reports = {"scrape": {"warn": term.warn}, "vet": {"echo": progress}}  # what a stage says while it runs
        result = api.FUNCTIONS[stage](ws, quiet=quiet, **reports.get(stage, {}))
    term.show(result)
    failure = result.failure()
    if failure:
        raise StageExit(*failure)


def _prepare_run(ws: Workspace, name: str, interrupted: bool, term: Terminal) -> bool | None:
    """Whether the train stage resumes run `name` (None: it has nothing left to do).

    Only this pipeline's own run is ever resumed. An interrupted stage continues its run from
    last.pt, or only writes the outputs when training had finished; a run that never wrote a
    checkpoint starts afresh in its folder. Otherwise an earlier run of the name is kept as
    <name>.prev-N and the stage trains anew.
    """
    state = api.run_state(ws, name)
    if state == "empty":
        return False
    if interrupted and state == "finished":
        term.echo(f"run {name} had finished before the interruption: nothing left to train")
        return None
    if interrupted:
        return True
    n = 1
    while (ws.runs / f"{name}.prev-{n}").exists():
        n += 1
    shutil.move(str(ws.runs / name), str(ws.runs / f"{name}.prev-{n}"))
    term.echo(f"kept the earlier run as {ws.rel(ws.runs / f'{name}.prev-{n}')}")
    return False
