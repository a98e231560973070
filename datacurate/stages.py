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
from datacurate.core.options import Flag
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
# The stages that set images aside for a person to triage in `datacurate review`.
REVIEWED = ("clean", "vet")


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


# -- which flag sets a key, and how -------------------------------------------------------------
# Every key of a section is its command's flag `--key-with-dashes`, built from the field (type, default,
# range, doc: datacurate/cli/flags.py). This is the one table of the exceptions: a Flag says how the
# flag differs (another name or command, an argument, a repeatable flag, a comma list, a metavar, a
# note for --help); None: the key lives in datacurate.yaml (or a pipeline file) alone. "section.*"
# covers the section's other keys.
FLAGS: dict[str, Flag | None] = {
    "paths.*": None,                  # the layout is the workspace's: -C picks the workspace, its file moves folders
    "ray.address": Flag("clean --ray", generated=False),  # and vet --ray, scrape --ray (datacurate/cli/ray.py)
    "ray.*": None,                    # tuning of the cluster's tasks
    "clean.against": Flag(path=True),
    "clean.convert_unsupported": Flag(note="formats ImageFolder skips"),
    "clean.drop": Flag(note="comma-separated among placeholder, low-information, dark, light, blurry, odd-size, grayscale"),
    "scrape.engine": Flag(aliases=("-e",), metavar="NAMES", note="wikimedia, openverse and flickr say each image's "
                          "licence and author; google is not offered: Google image search needs JavaScript and does "
                          "not work from a command-line client"),
    "scrape.fallback": Flag(note="refusing: blocked, bad key, changed format; e.g. -e baidu,bing --fallback"),
    "scrape.license": Flag(metavar="NAMES", note="cc0, pdm, by, by-sa, by-nd, by-nc, by-nc-sa, by-nc-nd; engines "
                           "wikimedia, openverse, flickr"),
    "scrape.suffix": Flag(aliases=("-s",), metavar="TEXT", note='e.g. "shirt doll"'),
    "scrape.template": Flag(metavar="TEXT"),
    "scrape.queries": Flag(metavar="FILE", note="several queries, other text, or skip"),
    "scrape.classes": Flag("--class", multiple=True, metavar="NAME", note="repeatable"),
    "scrape.max_per_class": Flag(aliases=("-n",)),
    "scrape.base_url": Flag(multiple=True, metavar="ENGINE=URL", note="repeatable"),
    "scrape.urls": Flag(metavar="FILE"),
    "scrape.flickr_key": Flag(metavar="KEY", note="32 hex digits; new keys need a Pro account"),
    "scrape.openverse_token": Flag(metavar="TOKEN", note="anonymous use is limited to 20 requests a minute"),
    "scrape.contact": Flag(metavar="EMAIL_OR_URL"),
    "scrape.concurrency": Flag(aliases=("-j",)),
    "scrape.retries": Flag(note="honouring Retry-After"),
    "scrape.max_bytes": Flag(text=True, metavar="SIZE"),
    "scrape.allow_private": Flag(note="link-local and cloud metadata addresses stay refused"),
    "scrape.allow_host": Flag(multiple=True, metavar="HOST", note="repeatable"),
    "scrape.user_agent": Flag(metavar="TEXT"),
    "vet.move_originals": Flag(note="also move originals that look like another class"),
    "split.link": Flag(note="copies across file systems"),
    "split.convert": Flag(choices=("jpeg", "png", "none")),
    "split.manifest": Flag(choices=("csv", "jsonl", "none")),
    "split.stats_size": Flag("stats --size"),
    "train.freeze_until": Flag(metavar="MODULE"),
    "train.milestones": Flag(numbers="int", metavar="E1,E2"),
    "train.gamma": Flag(numbers="float", metavar="G[,G2]"),
    "train.resize": Flag(metavar="PIXELS"),
    "train.normalize": Flag(choices=("auto", "split", "imagenet")),
    "train.augment": Flag(metavar="PRESET", note="train.augment in datacurate.yaml overrides it key by key "
                          "(see `augment-preview`)"),
    "train.early_stop": Flag(note="the _ema ones need --ema"),
    "train.tensorboard": Flag(note="loss, accuracy, learning rates and images/s"),
    "train.mixup": Flag(metavar="ALPHA"),
    "train.cutmix": Flag(metavar="ALPHA"),
    "train.mix_switch": Flag(metavar="P"),
    "train.no_bias_decay": Flag(off="--bias-decay"),
    "train.ema": Flag(metavar="DECAY"),
    "train.teacher": Flag(metavar="RUN", note="same classes"),
    "train.dist_timeout": Flag(metavar="SECONDS"),
    "train.groups": None,             # structured: a list of mappings
    "train.stages": None,             # structured: a list of mappings
    "train.brightness": None,         # the older key, kept working: train.augment's brightness
    "evaluate.run": Flag("evaluate RUN", generated=False),   # the command's arguments
    "evaluate.data": Flag("evaluate DATA", generated=False),
    "evaluate.tta": Flag(note="the softmax is averaged over them"),
    "predict.tta": Flag(note="the softmax is averaged over them"),
    "predict.label_map": Flag(metavar="FILE"),
    "predict.columns": Flag(note="id is the file name without extension"),
}
# The keys whose flag is named otherwise, sits on another command, or is none (yaml only).
FLAGS_ELSEWHERE: dict[str, str | None] = {key: None if f is None else f.flag for key, f in FLAGS.items()
                                          if f is None or f.flag}


def flag_spec(section: str, key: str) -> Flag | None:
    """How `section.key`'s flag differs from the plain one (Flag() when it does not); None: datacurate.yaml only."""
    for name in (f"{section}.{key}", f"{section}.*"):
        if name in FLAGS:
            return FLAGS[name]
    return Flag()


def flag_of(section: str, key: str) -> tuple[str, str] | None:
    """(command, flag) that sets `section.key`, or None when only datacurate.yaml does."""
    spec = flag_spec(section, key)
    if spec is None:
        return None
    words = spec.flag.split()
    if len(words) == 2:
        return words[0], words[1]
    return section, words[0] if words else "--" + key.replace("_", "-")
