"""`datacurate run PIPELINE.yaml`: the stages in order, each with the file's options, resumable.

A pipeline file holds the same sections as datacurate.yaml (scrape:, clean:, vet:, split:, train:,
evaluate:, paths:) plus an optional `stages:` list. Its sections are laid over the workspace's
datacurate.yaml. After a stage finishes, a fingerprint of its options and of its inputs as they
stand is saved in .datacurate/pipeline.json; a later run skips a stage whose fingerprint is the
same (nothing it reads changed), unless --force.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from datacurate import stages as registry
from datacurate.core.errors import UserError
from datacurate.core.fsutil import atomic_write_text
from datacurate.core.workspace import Workspace, load_config

# The stages, their order, sections and inputs are listed once, in datacurate/stages.py.
STAGES = registry.stage_names()
DEFAULT_STAGES = tuple(registry.default_stages())
# Stages that move files other stages read (vet sets scraped images aside): the earlier stages that
# were up to date before such a stage ran stay up to date after it (see _upstream_current).
MOVES_INPUTS = ("vet",)


@dataclass
class Pipeline:
    """A parsed pipeline file."""

    path: Path
    config: dict[str, Any]
    stages: list[str]

    def section(self, stage: str) -> dict:
        return dict(self.config.get(stage) or {})


@dataclass
class StageOutcome:
    stage: str
    status: str            # ran | skipped | failed
    seconds: float = 0.0
    message: str = ""


@dataclass
class RunResult:
    outcomes: list[StageOutcome] = field(default_factory=list)

    @property
    def failed(self) -> StageOutcome | None:
        return next((o for o in self.outcomes if o.status == "failed"), None)


def load_pipeline(path: str | os.PathLike) -> Pipeline:
    """Read and check a pipeline file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"pipeline file {path} does not exist")
    config = load_config(p)
    stages = config.get("stages") or list(DEFAULT_STAGES)
    if not isinstance(stages, list) or any(s not in STAGES for s in stages):
        raise UserError(f"{path}: stages must be a list drawn from {', '.join(STAGES)}")
    if len(set(stages)) != len(stages):
        raise UserError(f"{path}: stages lists a stage twice")
    registry.check_config(config, str(path), extra=registry.PIPELINE_KEYS)
    return Pipeline(p, config, list(stages))


def select(stages: list[str], start: str | None, stop: str | None) -> list[str]:
    """The stages from `start` to `stop` (inclusive) in pipeline order."""
    for name, value in (("--from", start), ("--to", stop)):
        if value is not None and value not in stages:
            raise UserError(f"{name} {value!r} is not a stage of this pipeline ({', '.join(stages)})")
    first = stages.index(start) if start else 0
    last = stages.index(stop) if stop else len(stages) - 1
    if first > last:
        raise UserError(f"--from {start} comes after --to {stop}")
    return stages[first:last + 1]


def fingerprint(ws: Workspace, stage: str, options: dict) -> str:
    """Hash of a stage's options and of the listing of what it reads."""
    digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode())
    for name in registry.BY_NAME[stage].inputs:
        if name == "classes":  # scrape reads only the class names (clean's moves must not re-trigger it)
            digest.update("\0".join(ws.class_names("original")).encode("utf-8", "surrogateescape"))
            continue
        head, _, rest = name.partition("/")
        base = ws.path(head) / rest if rest else ws.path(head)
        for line in _listing(base):
            digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _listing(base: Path):
    if base.is_file():
        st = base.stat()
        yield f"{base.name}\0{st.st_size}\0{st.st_mtime_ns}\n"
        return
    for folder, dirs, files in os.walk(base):
        dirs.sort()
        for name in sorted(files):
            if name.startswith("."):
                continue
            st = os.stat(os.path.join(folder, name))
            yield f"{os.path.relpath(os.path.join(folder, name), base)}\0{st.st_size}\0{st.st_mtime_ns}\n"


class State:
    """Fingerprints of finished stages, in .datacurate/pipeline.json."""

    def __init__(self, ws: Workspace):
        self.path = ws.state_dir / "pipeline.json"
        try:
            self.data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            self.data = {}

    def done(self, stage: str, fp: str) -> bool:
        return self.data.get(stage, {}).get("fingerprint") == fp

    def interrupted(self, stage: str, fp: str) -> bool:
        """Whether this stage was started on these very inputs and did not finish."""
        entry = self.data.get(stage, {})
        return entry.get("started") == fp and "fingerprint" not in entry

    def start(self, stage: str, fp: str) -> None:
        self.data[stage] = {"started": fp}
        self._save()

    def mark(self, stage: str, fp: str) -> None:
        self.data[stage] = {"fingerprint": fp, "finished": time.time()}
        self._save()

    def _save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=1))


def run_pipeline(ws: Workspace, pipeline: Pipeline, invoke: Callable[[str, bool], None], *, start: str | None = None,
                 stop: str | None = None, force: bool = False, echo: Callable[[str], None] = print) -> RunResult:
    """Run the selected stages; `invoke(stage, resume)` runs one (raising on failure).

    `resume` is true when the stage was started on the same inputs and options and did not
    finish (a killed training run continues from its last checkpoint).
    """
    state = State(ws)
    result = RunResult()
    for stage in select(pipeline.stages, start, stop):
        options = {"stage": pipeline.section(stage), "paths": pipeline.config.get("paths")}
        before = fingerprint(ws, stage, options)
        if not force and state.done(stage, before):
            echo(f"== {stage}: up to date, skipped (--force runs it again)")
            result.outcomes.append(StageOutcome(stage, "skipped"))
            continue
        resume = not force and state.interrupted(stage, before)
        echo(f"== {stage}" + (" (resuming)" if resume else ""))
        state.start(stage, before)
        t0 = time.perf_counter()
        current = _upstream_current(ws, pipeline, state, stage)
        try:
            invoke(stage, resume)
        except Exception as exc:  # noqa: BLE001 - reported as the stage's failure, then re-raised by the CLI
            result.outcomes.append(StageOutcome(stage, "failed", time.perf_counter() - t0, _message(exc)))
            raise StageFailed(stage, exc) from exc
        state.mark(stage, fingerprint(ws, stage, options))
        for earlier, opts in current.items():
            state.mark(earlier, fingerprint(ws, earlier, opts))
        result.outcomes.append(StageOutcome(stage, "ran", time.perf_counter() - t0))
    return result


def _upstream_current(ws: Workspace, pipeline: Pipeline, state: State, stage: str) -> dict[str, dict]:
    """{earlier stage: options} of the stages up to date now, when `stage` moves what they read."""
    if stage not in MOVES_INPUTS:
        return {}
    out = {}
    for earlier in pipeline.stages[:pipeline.stages.index(stage)]:
        opts = {"stage": pipeline.section(earlier), "paths": pipeline.config.get("paths")}
        if state.done(earlier, fingerprint(ws, earlier, opts)):
            out[earlier] = opts
    return out


def _message(exc: BaseException) -> str:
    fmt = getattr(exc, "format_message", None)
    return fmt() if callable(fmt) else str(exc)


class StageFailed(Exception):
    """A stage of a pipeline failed; carries the stage name and the cause."""

    def __init__(self, stage: str, cause: BaseException):
        super().__init__(f"stage {stage} failed: {_message(cause)}")
        self.stage = stage
        self.cause = cause


def dump_example(config: dict) -> str:
    return yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
