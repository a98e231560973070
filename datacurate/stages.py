"""The stages in pipeline order and the config sections: the one list to extend when adding a stage.

Read by the CLI (its command list), the API (the callable stage packages, each function's options),
the pipeline runner (order, inputs) and `datacurate report` (which stages it writes again). Each stage
names what it reads (the pipeline's fingerprint covers those folders) and its options model
("module:Model", a datacurate.core.options.StageOptions imported only when a config is checked: the
one definition of the section's keys, the command's flags and the Python API's keywords).
datacurate.yaml and pipeline files may hold only these sections; every section is checked whole when
the workspace opens (check_config, handed to core by datacurate/__init__.py) and before a pipeline's
first stage, so a bad value surfaces even where a flag would override it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from datacurate.core.errors import UserError, cut
from datacurate.core.workspace import CONFIG_NAME

if TYPE_CHECKING:
    from datacurate.core.options import StageOptions


@dataclass(frozen=True)
class Stage:
    name: str
    inputs: tuple[str, ...]   # what it reads: layout names, "a/b" under one, or "classes"
    check: str                # "module:Model": its options model (datacurate/core/options.py), validating its section
    default: bool = True      # in a pipeline that lists no `stages:`
    package: bool = True      # datacurate.<name> is its package, callable as its API function: datacurate.clean(ws)
    cli: str = ""             # the module of datacurate/cli/ that defines its command (default: its name)

    @property
    def command_module(self) -> str:
        return f"datacurate.cli.{self.cli or self.name}"


STAGES: tuple[Stage, ...] = (
    Stage("scrape", ("classes",), "datacurate.scrape.options:ScrapeOptions"),
    Stage("clean", ("original", "scraped", "test"), "datacurate.clean.options:CleanOptions"),
    Stage("vet", ("original", "scraped", "test"), "datacurate.vet.options:VetOptions"),
    Stage("split", ("original", "scraped"), "datacurate.split.options:SplitOptions"),
    Stage("stats", ("split/train",), "datacurate.split.options:StatsOptions", default=False, package=False, cli="split"),
    Stage("train", ("split/train", "split/valid", "split/stats.json"), "datacurate.train.options:TrainOptions"),
    Stage("evaluate", ("runs",), "datacurate.train.options:EvaluateOptions", package=False, cli="train"),
)
BY_NAME = {s.name: s for s in STAGES}
# Sections that configure a command but are not pipeline stages.
OTHER_SECTIONS = {"paths": "datacurate.core.paths:PathsOptions", "predict": "datacurate.train.options:PredictOptions",
                  "ray": "datacurate.executors.options:RayOptions"}
# Keys a pipeline file may hold besides the sections.
PIPELINE_KEYS = ("stages", "description")
# The stages whose reports `datacurate report` writes again from the catalog, in the order it writes them.
REPORTED = ("clean", "vet", "split", "scrape")


def stage_names() -> tuple[str, ...]:
    return tuple(s.name for s in STAGES)


def default_stages() -> list[str]:
    return [s.name for s in STAGES if s.default]


def packages() -> list[str]:
    """The stages that are a package of their own (datacurate.scrape, ...): callable as their API function."""
    return [s.name for s in STAGES if s.package]


def commands_in(module: str) -> list[str]:
    """The stage commands `module` (datacurate.cli.<name>) defines, in pipeline order."""
    return [s.name for s in STAGES if s.command_module == module]


def sections() -> list[str]:
    return list(OTHER_SECTIONS) + [s.name for s in STAGES]


def check_config(config: Mapping[str, Any], where: str = CONFIG_NAME, *, extra: tuple[str, ...] = ()) -> None:
    """Raise UserError for an unknown section or a bad value in any section of `config`."""
    known = sections()
    for key in config:
        if key not in known and key not in extra:
            raise UserError(f"{where}: unknown section {cut(repr(key), 100)}; known: {', '.join(known + list(extra))}")
    for key, value in config.items():
        if key in extra or value is None:
            continue
        if not isinstance(value, Mapping):
            raise UserError(f"{where}: `{key}:` must be a mapping of options, got {cut(repr(value))}")
        try:
            options_model(key).check(value)
        except UserError as exc:
            text = str(exc).removeprefix(f"{CONFIG_NAME}: ")
            raise UserError(f"{where}: {text}") from None


def _model(spec: str) -> type[StageOptions]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def options_model(section: str) -> type[StageOptions]:
    """The options model of a datacurate.yaml section (a stage's or paths/predict)."""
    return _model(OTHER_SECTIONS.get(section) or BY_NAME[section].check)


# -- which flag sets a key ----------------------------------------------------------------------
# Every key of a section is its command's flag `--key-with-dashes`, except these: "COMMAND --FLAG"
# (or "COMMAND ARG", an argument) where the flag is named otherwise or sits on another command, None where the key lives in
# datacurate.yaml (or a pipeline file) alone. "section.*" covers the section's other keys.
FLAGS_ELSEWHERE: dict[str, str | None] = {
    "paths.*": None,                  # the layout is the workspace's: -C picks the workspace, its file moves folders
    "ray.address": "clean --ray",     # and vet --ray, scrape --ray
    "ray.*": None,                    # tuning of the cluster's tasks
    "scrape.classes": "scrape --class",
    "evaluate.run": "evaluate RUN",   # the command's arguments
    "evaluate.data": "evaluate DATA",
    "split.stats_size": "stats --size",
    "train.groups": None,             # structured: a list of mappings
    "train.stages": None,             # structured: a list of mappings
    "train.brightness": None,         # the older key, kept working: train.augment's brightness
}


def flag_of(section: str, key: str) -> tuple[str, str] | None:
    """(command, flag) that sets `section.key`, or None when only datacurate.yaml does."""
    for name in (f"{section}.{key}", f"{section}.*"):
        if name in FLAGS_ELSEWHERE:
            where = FLAGS_ELSEWHERE[name]
            return None if where is None else (where.split()[0], where.split()[1])
    return section, "--" + key.replace("_", "-")
