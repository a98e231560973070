"""The stages in pipeline order and the config sections: the one list to extend when adding a stage.

Each stage names what it reads (the pipeline's fingerprint covers those folders) and a checker of
its datacurate.yaml section ("module:function", imported only when a config is checked; the
function takes the section's mapping and raises UserError). datacurate.yaml and pipeline files may
hold only these sections; every section is checked whole when the workspace opens and before a
pipeline's first stage, so a bad value surfaces even where a flag would override it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from datacurate.errors import UserError
from datacurate.workspace import CONFIG_NAME, DEFAULT_PATHS, resolve_options


@dataclass(frozen=True)
class Stage:
    name: str
    inputs: tuple[str, ...]   # what it reads: layout names, "a/b" under one, or "classes"
    check: str                # "module:function" validating its config section
    default: bool = True      # in a pipeline that lists no `stages:`


STAGES: tuple[Stage, ...] = (
    Stage("scrape", ("classes",), "datacurate.stages:check_scrape"),
    Stage("clean", ("original", "scraped", "test"), "datacurate.stages:check_clean"),
    Stage("vet", ("original", "scraped", "test"), "datacurate.stages:check_vet"),
    Stage("split", ("original", "scraped"), "datacurate.stages:check_split"),
    Stage("stats", ("split/train",), "datacurate.stages:check_stats", default=False),
    Stage("train", ("split/train", "split/valid", "split/stats.json"), "datacurate.stages:check_train"),
    Stage("evaluate", ("runs",), "datacurate.stages:check_evaluate"),
)
BY_NAME = {s.name: s for s in STAGES}
# Sections that configure a command but are not pipeline stages.
OTHER_SECTIONS = {"paths": "datacurate.stages:check_paths", "predict": "datacurate.stages:check_predict",
                  "ray": "datacurate.cluster.options:check_section"}
# Keys a pipeline file may hold besides the sections.
PIPELINE_KEYS = ("stages", "description")


def stage_names() -> tuple[str, ...]:
    return tuple(s.name for s in STAGES)


def default_stages() -> list[str]:
    return [s.name for s in STAGES if s.default]


def sections() -> list[str]:
    return list(OTHER_SECTIONS) + [s.name for s in STAGES]


def check_config(config: Mapping[str, Any], where: str = CONFIG_NAME, *, extra: tuple[str, ...] = ()) -> None:
    """Raise UserError for an unknown section or a bad value in any section of `config`."""
    known = sections()
    for key in config:
        if key not in known and key not in extra:
            raise UserError(f"{where}: unknown section {key!r}; known: {', '.join(known + list(extra))}")
    for key, value in config.items():
        if key in extra or value is None:
            continue
        if not isinstance(value, Mapping):
            raise UserError(f"{where}: `{key}:` must be a mapping of options, got {value!r}")
        spec = OTHER_SECTIONS.get(key) or BY_NAME[key].check
        try:
            _function(spec)(value)
        except UserError as exc:
            text = str(exc).removeprefix(f"{CONFIG_NAME}: ")
            raise UserError(f"{where}: {text}") from None


def _function(spec: str) -> Callable[[Mapping[str, Any]], None]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


# -- the checkers of the built-in sections -------------------------------------------------------
def check_paths(section: Mapping[str, Any]) -> None:
    for key, value in section.items():
        if key not in DEFAULT_PATHS:
            raise UserError(f"unknown path paths.{key}; known: {', '.join(DEFAULT_PATHS)}")
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"paths.{key} must be a folder (a string), got {value!r}")


def check_clean(section: Mapping[str, Any]) -> None:
    from datacurate.clean.run import DEFAULTS, _validate

    _validate(resolve_options(section, {}, DEFAULTS, "clean"))


def check_scrape(section: Mapping[str, Any]) -> None:
    from datacurate.scrape.licenses import parse_filter
    from datacurate.scrape.options import DEFAULTS, _engines, check_options

    opts = resolve_options(section, {}, DEFAULTS, "scrape")
    _engines(opts["engine"])
    parse_filter(opts["license"])
    # What an engine needs (an API key, a contact, --urls, a site) may come from a flag or the
    # environment when scrape runs, and is checked then; here every other value's type and range.
    check_options({**opts, "engine": "bing", "license": None})


def check_vet(section: Mapping[str, Any]) -> None:
    from datacurate.vet.options import DEFAULTS, VetOptions

    VetOptions.from_mapping(resolve_options(section, {}, DEFAULTS, "vet"))


def check_split(section: Mapping[str, Any]) -> None:
    from datacurate.split.options import DEFAULTS, SplitOptions

    SplitOptions.from_mapping(resolve_options(section, {}, DEFAULTS, "split"))


def check_stats(section: Mapping[str, Any]) -> None:
    resolve_options(section, {}, {}, "stats")  # `stats` reads split.stats_size; its own section is empty


def check_train(section: Mapping[str, Any]) -> None:
    from datacurate.train.options import DEFAULTS, check_scalars, parse_groups, parse_stages

    opts = resolve_options(section, {}, DEFAULTS, "train")
    check_scalars(dict(opts))
    if opts["groups"] is not None:
        parse_groups(opts["groups"])
    if opts["stages"] is not None:
        parse_stages(opts["stages"])
    name = opts["name"]
    if name is not None and (not isinstance(name, str) or not name or "/" in name or name.startswith(".")):
        raise UserError(f"train.name {name!r} must be a plain folder name")


# What evaluate and predict add to a trained run's predictions (their CLI options of the same names).
VIEWS = {"tta": None, "tta_views": 8, "head_from": None, "ema": False}
EVALUATE = {"run": None, "data": None, "batch_size": 32, "workers": 0, "device": "auto", "pairs": 10, **VIEWS}
PREDICT = {"top": 5, "label_map": None, "batch_size": 32, "device": "auto", **VIEWS}


def check_evaluate(section: Mapping[str, Any]) -> None:
    opts = resolve_options(section, {}, EVALUATE, "evaluate")
    _whole(opts, "evaluate", batch_size=1, workers=0, pairs=0, tta_views=1)
    _device(opts, "evaluate")
    _views(opts, "evaluate")


def check_predict(section: Mapping[str, Any]) -> None:
    opts = resolve_options(section, {}, PREDICT, "predict")
    _whole(opts, "predict", top=1, batch_size=1, tta_views=1)
    _device(opts, "predict")
    _views(opts, "predict")


def _views(opts: Mapping[str, Any], section: str) -> None:
    from datacurate.train.options import TTA_MODES

    if opts["tta"] is not None and opts["tta"] not in TTA_MODES:
        raise UserError(f"{section}.tta must be one of {', '.join(TTA_MODES)}, got {opts['tta']!r}")
    if opts["head_from"] is not None and opts["head_from"] not in ("svm", "logreg"):
        raise UserError(f"{section}.head_from must be svm or logreg, got {opts['head_from']!r}")
    if not isinstance(opts["ema"], bool):
        raise UserError(f"{section}.ema must be true or false, got {opts['ema']!r}")


def _whole(opts: Mapping[str, Any], section: str, **lows: int) -> None:
    for key, low in lows.items():
        value = opts[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise UserError(f"{section}.{key} must be a whole number of at least {low}, got {value!r}")


def _device(opts: Mapping[str, Any], section: str) -> None:
    from datacurate.train.options import DEVICES

    if opts["device"] not in DEVICES:
        raise UserError(f"{section}.device must be one of {', '.join(DEVICES)}, got {opts['device']!r}")
