"""The Python API: every stage as a function taking the CLI's options as keywords.

    from datacurate import Workspace, clean, split
    ws = Workspace("shop")
    plan = clean(ws, dry_run=True, threshold=8)    # same names as `datacurate clean --threshold 8`
    print(plan.summary()); plan.to_frame()

Each function takes the workspace (a Workspace or its folder), the command's run switches
(dry_run, ...) and the stage's options as keyword-only arguments, validated by the stage's options
model exactly as the command's flags and datacurate.yaml are (an unknown keyword or a bad value
raises datacurate.UserError); a keyword left out takes datacurate.yaml's value, else the default.
Writing stages hold the workspace lock as the command does. The commands, `datacurate run` and the
demo call these functions, so all run the same code; each returns a datacurate.results object
(`.summary()`, `.to_frame()`). The stage packages are these functions too: `datacurate.clean(ws)`
(make_packages_callable, which datacurate/__init__.py calls).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

# the stage packages (light: their names load on first use), made callable by make_packages_callable()
import datacurate.clean
import datacurate.scrape
import datacurate.split
import datacurate.train
import datacurate.vet  # noqa: F401
from datacurate import stages
from datacurate.core.workspace import CONFIG_NAME, Workspace

if TYPE_CHECKING:
    from datacurate import results


def workspace(ws: Workspace | str | os.PathLike) -> Workspace:
    """A Workspace from a Workspace or a folder."""
    return ws if isinstance(ws, Workspace) else Workspace(ws)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check(stage: str, wait: Any = None, **flags: Any) -> None:
    """The run switches as the CLI's flags allow them: true/false switches, --wait seconds >= 0 (UserError)."""
    import math

    from datacurate.core.errors import UserError

    for name, value in flags.items():
        if not isinstance(value, bool):
            raise UserError(f"{stage}: {name} must be true or false, got {_shown(value)}")
    if wait is not None and (isinstance(wait, bool) or not isinstance(wait, (int, float)) or not math.isfinite(wait)
                             or wait < 0):
        raise UserError(f"{stage}: wait (--wait) must be a number of seconds, at least 0, got {_shown(wait)}")


def _path_list(stage: str, what: str, value: Any) -> list[str | os.PathLike]:
    """`value` as a list of paths: one path (str, os.PathLike) or a list or tuple of them (UserError otherwise)."""
    from datacurate.core.errors import UserError

    if isinstance(value, (str, os.PathLike)):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in value):
        return list(value)
    raise UserError(f"{stage}: {what} must be a file or folder, or a list of them (str or os.PathLike), got {_shown(value)}")


@contextlib.contextmanager
def _writing(ws: Workspace, command: str, *, dry_run: bool = False, wait: float | None = None):
    """The workspace lock, as the CLI takes it (a dry run in a workspace without .datacurate takes none)."""
    if dry_run and not ws.state_dir.exists():
        yield
        return
    from datacurate.core.lock import workspace_lock

    with workspace_lock(ws, command, wait=wait):
        yield


class OptionsFunction:
    """An API function taking a section's options as keywords (`**options`).

    Its signature and help list the options model's fields with their defaults and docs; they are
    read from the model (datacurate/stages.py names it) the first time they are asked for, so
    importing the API loads no model.
    """

    def __init__(self, function: Callable, section: str, explicit: Sequence[str] = ()) -> None:
        self.function, self.section, self.explicit = function, section, tuple(explicit)
        self.__name__, self.__qualname__, self.__module__ = function.__name__, function.__qualname__, function.__module__
        self._signature: inspect.Signature | None = None
        self._doc: str | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def __get__(self, obj: Any, owner: type | None = None) -> Any:  # a routine, as a function is (pydoc, inspect)
        return self if obj is None else types.MethodType(self, obj)

    def __repr__(self) -> str:
        return f"<function {self.__module__}.{self.__qualname__}>"

    @property
    def __signature__(self) -> inspect.Signature:
        if self._signature is None:
            self._signature = signature(self)
        return self._signature

    @property
    def __doc__(self) -> str:  # type: ignore[override]
        if self._doc is None:
            self._doc = options_doc(self)
        return self._doc


def takes_options(section: str, explicit: Sequence[str] = ()) -> Callable[[Callable], OptionsFunction]:
    """Decorator: the function takes section `section`'s options as **options (`explicit`: those it names itself)."""
    return lambda function: OptionsFunction(function, section, explicit)


def signature(function: OptionsFunction) -> inspect.Signature:
    """The function's own parameters, then one keyword-only parameter per field of its options model."""
    own = inspect.signature(function.function)
    params = [p for p in own.parameters.values() if p.kind != p.VAR_KEYWORD]
    params += [p for p in stages.options_model(function.section).parameters() if p.name not in function.explicit]
    return own.replace(parameters=params)


def options_doc(function: OptionsFunction) -> str:
    """The function's doc with one line per option (type, default, what it does) from its model."""
    model = stages.options_model(function.section)
    return (inspect.getdoc(function.function) or "") + "\n\nOptions (keyword-only; left out: datacurate.yaml's value, else this default):\n" \
        + "\n".join("    " + line for line in model.doc_lines())


def init_workspace(root: str | os.PathLike) -> list[str]:
    """Make the workspace layout and a commented datacurate.yaml (kept if present), as `datacurate init`;
    return what was made."""
    from datacurate.core.fsutil import atomic_write_text

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace.open(root, must_exist=False)  # makes the folders `paths:` names
    made = []
    for folder in (ws.original, ws.scraped, ws.quarantine, ws.runs, ws.reports, ws.state_dir):
        if not folder.exists():
            folder.mkdir(parents=True)
            made.append(ws.rel(folder) + "/")
    config = root / CONFIG_NAME
    if not config.exists():
        from datacurate.template import render

        atomic_write_text(config, render())
        made.append(CONFIG_NAME)
    return made


def run_state(ws: Workspace | str | os.PathLike, name: str) -> str:
    """Where training run `name` stands: empty (no checkpoint yet), training (last.pt mid-run), trained (done,
    outputs missing) or finished."""
    from datacurate.train.run import run_state as state

    return state(workspace(ws).runs / name)


@takes_options("clean")
def clean(ws: Workspace | str | os.PathLike, paths: Sequence[str | os.PathLike] = (), *, dry_run: bool = False,
          rebuild_catalog: bool = False, quiet: bool = True, wait: float | None = None, ray: str | bool | None = None,
          **options: Any) -> "results.CleanRun":
    """Set aside broken files, duplicates, near-duplicates and test leaks (nothing is deleted).

    `paths` default to data/original and data/scraped; `dry_run` moves nothing; `rebuild_catalog`
    sets the catalog aside and rebuilds it from the folders first; `ray` decodes on a Ray cluster
    (an address or "auto"; False: here; None: datacurate.yaml's ray.address).
    """
    from datacurate.clean.run import clean as run_clean
    from datacurate.results import CleanRun

    _check("clean", wait, dry_run=dry_run, rebuild_catalog=rebuild_catalog, quiet=quiet)
    paths = _path_list("clean", "paths", paths)
    ws = workspace(ws)
    with _writing(ws, "clean", dry_run=dry_run, wait=wait):
        rebuilt = []
        if rebuild_catalog:
            from datacurate.rebuild import rebuild_catalog as rebuild

            rebuilt = rebuild(ws, quiet=quiet).lines(ws)
        return CleanRun(run_clean(ws, paths, dry_run=dry_run, quiet=quiet, ray=ray, **options), ws, rebuilt)


@takes_options("vet")
def vet(ws: Workspace | str | os.PathLike, *, dry_run: bool = False, quiet: bool = True, wait: float | None = None,
        echo: Callable[[str], None] | None = None, ray: str | bool | None = None, **options: Any) -> "results.VetRun":
    """Set aside scraped images that are off-topic or look like another class (originals are only listed).

    `ray` embeds on a Ray cluster (an address or "auto"; False: here; None: datacurate.yaml's ray.address).
    """
    from datacurate.results import VetRun
    from datacurate.vet.run import vet as run_vet

    _check("vet", wait, dry_run=dry_run, quiet=quiet)
    ws = workspace(ws)
    with _writing(ws, "vet", dry_run=dry_run, wait=wait):
        return VetRun(run_vet(ws, dry_run=dry_run, quiet=quiet, echo=echo or (lambda s: None), ray=ray, **options), ws)


@takes_options("split")
def split(ws: Workspace | str | os.PathLike, *, dry_run: bool = False, fresh: bool = False, quiet: bool = True,
          wait: float | None = None, **options: Any) -> "results.SplitRun":
    """Build data/split/train|valid/<class>/ from data/original and data/scraped; `fresh` forgets earlier assignments."""
    from datacurate.results import SplitRun
    from datacurate.split.options import SplitOptions
    from datacurate.split.splitter import split_dataset

    _check("split", wait, dry_run=dry_run, fresh=fresh, quiet=quiet)
    ws = workspace(ws)
    opts = ws.options(SplitOptions, options)
    with _writing(ws, "split", dry_run=dry_run, wait=wait):
        return SplitRun(split_dataset(ws, opts, fresh=fresh, dry_run=dry_run, quiet=quiet), ws)


def relabel(ws: Workspace | str | os.PathLike, paths: Sequence[str | os.PathLike], klass: str, *,
            new_class: bool = False, dry_run: bool = False, wait: float | None = None):
    """Move the files at `paths` to class folder `klass` (out of quarantine too), as `datacurate relabel`.

    Later clean and vet runs keep the person's label; `restore` puts a file back. A class that does
    not exist raises UserError unless `new_class`. Returns a clean.relabel.RelabelResult.
    """
    from datacurate.clean.relabel import relabel as run_relabel

    ws = workspace(ws)
    with _writing(ws, "relabel", dry_run=dry_run, wait=wait):
        return run_relabel(ws, paths, klass, new_class=new_class, dry_run=dry_run)


def stats(ws: Workspace | str | os.PathLike, *, size: int | None = None, quiet: bool = True,
          wait: float | None = None) -> "results.StatsRun":
    """Per-channel mean and std of the train split, written to data/split/stats.json (`size`: split.stats_size)."""
    from datacurate.results import StatsRun
    from datacurate.split.options import SplitOptions
    from datacurate.split.stats import compute_stats, write_stats

    _check("stats", wait, quiet=quiet)
    ws = workspace(ws)
    opts = ws.options(SplitOptions, {"stats_size": size})
    with _writing(ws, "stats", wait=wait):
        result = compute_stats(ws.split_dir, size=opts.stats_size, quiet=quiet)
        result.path = write_stats(result, ws.split_dir)
    return StatsRun(result, ws)


@takes_options("scrape")
def scrape(ws: Workspace | str | os.PathLike, *, dry_run: bool = False, quiet: bool = True, wait: float | None = None,
           warn: Callable[[str], None] | None = None, ray: str | bool | None = None, **options: Any) -> "results.ScrapeRun":
    """More images per class from image search, by query template, into data/scraped/<class>/.

    `dry_run` prints the queries and result-page URLs and fetches nothing. When no class got an
    image, `.failure()` says why (the command exits 3, 4 or 5 then). `ray` downloads on a Ray
    cluster (an address or "auto"; False: here; None: datacurate.yaml's ray.address).
    """
    from datacurate.results import ScrapeRun
    from datacurate.scrape.options import ScrapeOptions, check_options
    from datacurate.scrape.run import scrape as run_scrape

    _check("scrape", wait, dry_run=dry_run, quiet=quiet)
    ws = workspace(ws)
    opts = check_options(ws.options(ScrapeOptions, options), dry_run=dry_run)
    with _writing(ws, "scrape", dry_run=dry_run, wait=wait):
        return ScrapeRun(run_scrape(ws, opts, quiet=quiet, warn=warn or (lambda msg: None), ray=ray), ws)


@takes_options("train")
def train(ws: Workspace | str | os.PathLike, *, plan: bool = False, resume: bool = False, quiet: bool = True,
          wait: float | None = None, echo: Callable[[str], None] | None = None, processes: int | None = None,
          lock: bool = True, **options: Any) -> "results.TrainRun":
    """Fine-tune a torchvision model on data/split/train, validating on data/split/valid.

    `plan` returns the stages, frozen/trained modules and groups without training; `resume`
    continues run `name` (default: the latest) from its last.pt. Under torchrun every process
    calls this; `processes` only tells the plan how many will train, and `lock=False` is for the
    processes whose launcher (or rank 0) holds the workspace lock.
    """
    from datacurate.results import TrainRun
    from datacurate.train.run import train as run_train

    _check("train", wait, plan=plan, resume=resume, quiet=quiet, lock=lock)
    ws = workspace(ws)
    with _writing(ws, "train", dry_run=plan, wait=wait) if lock else contextlib.nullcontext():
        return TrainRun(run_train(ws, options, plan_only=plan, resume=resume, quiet=quiet, echo=echo or (lambda s: None),
                                  processes=processes), ws)


def train_preflight(ws: Workspace | str | os.PathLike, *, resume: bool = False, **options: Any) -> None:
    """What `train --gpus N` checks before it starts N processes: the options, the split, the plan, the run name."""
    from datacurate.train.run import preflight

    preflight(workspace(ws), options, resume=resume)


@takes_options("evaluate", explicit=("run", "data"))
def evaluate(ws: Workspace | str | os.PathLike, run: str | None = None, data: str | os.PathLike | None = None, *,
             quiet: bool = True, **options: Any) -> "results.EvaluateRun":
    """Accuracy, per-class precision/recall and confusion matrix of `run` on `data` (default data/split/valid)."""
    from datacurate.results import EvaluateRun
    from datacurate.train.evaluate import evaluate as run_evaluate
    from datacurate.train.options import EvaluateOptions

    from datacurate.core.errors import UserError

    _check("evaluate", quiet=quiet)
    if run is not None and not isinstance(run, str):
        raise UserError(f"evaluate: run must be a run's name, got {_shown(run)}")
    if data is not None and not isinstance(data, (str, os.PathLike)):
        raise UserError(f"evaluate: data must be a folder (str or os.PathLike), got {_shown(data)}")
    ws = workspace(ws)
    opts = ws.options(EvaluateOptions, {**options, "run": run, "data": None if data is None else str(data)})
    if opts.run is None:
        from datacurate.core.errors import UserError

        raise UserError("evaluate needs a run (a name under runs/)")
    return EvaluateRun(run_evaluate(ws, opts.run, opts.data, batch_size=opts.batch_size, workers=opts.workers,
                                    device=opts.device, top_pairs=opts.pairs, quiet=quiet, tta=opts.tta,
                                    tta_views=opts.tta_views, head_from=opts.head_from, ema=opts.ema,
                                    worst=opts.worst, examples=opts.examples), ws)


@takes_options("predict")
def predict(ws: Workspace | str | os.PathLike, run: str | None, inputs: Sequence[str | os.PathLike], *,
            model_file: str | os.PathLike | None = None, **options: Any) -> "results.PredictRun":
    """Classify images (files or folders) with `run` (or an exported `model_file`): one record per image."""
    from datacurate.results import PredictRun

    ws = workspace(ws)
    return PredictRun(list(predictions(ws, run, inputs, model_file=model_file, **options)), ws)


def predictions(ws: Workspace | str | os.PathLike, run: str | None, inputs: Sequence[str | os.PathLike], *,
                model_file: str | os.PathLike | None = None, **options: Any):
    """predict's records one at a time, as they are computed (what `datacurate predict` streams)."""
    from datacurate.core.errors import UserError
    from datacurate.train.options import PredictOptions
    from datacurate.train.predict import predict as run_predict

    if inputs is None:
        raise UserError("predict needs at least one image or folder")
    inputs = [str(p) for p in _path_list("predict", "inputs", inputs)]
    if run is not None and not isinstance(run, str):
        raise UserError(f"predict: run must be a run's name, got {_shown(run)}")
    ws = workspace(ws)
    opts = ws.options(PredictOptions, options)
    if not inputs:
        raise UserError("predict needs at least one image or folder")
    if model_file and (opts.head_from or opts.ema):
        raise UserError("--head-from and --ema apply to a run, not to an exported --model file")
    if not model_file and not run:
        raise UserError("predict needs a run (or model_file, an exported model)")
    yield from run_predict(ws, run, inputs, top=opts.top, label_map=opts.label_map, batch_size=opts.batch_size,
                           device=opts.device, tta=opts.tta, tta_views=opts.tta_views, head_from=opts.head_from,
                           ema=opts.ema, model_file=None if model_file is None else str(model_file))


# Each stage of datacurate/stages.py by its name: the pipeline runs these, the stage packages are these.
FUNCTIONS: dict[str, Callable] = {f.__name__: f for f in (scrape, clean, vet, split, stats, train, evaluate)}


class StagePackage(types.ModuleType):
    """A stage package that is also its API function: `datacurate.clean(ws, dry_run=True)`.

    `from datacurate import clean` gives the package datacurate.clean (Python binds a subpackage to
    its name in the parent), so the package itself is callable, with the function's signature and docs.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _function_of(self)(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(_function_of(self))

    @property
    def __doc__(self) -> str:  # type: ignore[override]
        f = _function_of(self)
        return f"{f.__name__}{inspect.signature(f)}\n\n{f.__doc__}"


def _function_of(package: types.ModuleType) -> Callable:
    return FUNCTIONS[package.__name__.rpartition(".")[2]]


def make_packages_callable() -> None:
    """Make each stage package (datacurate.clean, ...; imported above) callable as its API function.

    datacurate/__init__.py calls this, so the packages are callable however they are imported; they
    themselves know nothing of the API.
    """
    for name in stages.packages():
        sys.modules[f"datacurate.{name}"].__class__ = StagePackage
