"""datacurate: grow, clean, split a labeled image collection and fine-tune a classifier on it.

The Python API (docs/api.md): `from datacurate import Workspace, scrape, clean, vet, split, train,
evaluate, predict, relabel`. `import datacurate` stays light: the stages load their libraries (torch
only when train, evaluate or predict run) when they run.

This is the package's front door, outside the layers (docs/architecture.md): every import of a
datacurate module runs it first, so it wires the layers together here, once:
- every Workspace.open checks datacurate.yaml's sections with the stage registry's check (core knows no stage);
- the stage packages datacurate.scrape, clean, vet, split and train become callable as their API
  functions, `datacurate.clean(ws, dry_run=True)` (the stages know nothing of the API above them).
"""

from datacurate import api, stages
from datacurate.api import evaluate, predict, relabel, stats  # noqa: F401 - the API's functions that are no package
from datacurate.core.errors import UserError
from datacurate.core.version import __version__  # noqa: F401
from datacurate.core.workspace import Workspace, check_config_with

check_config_with(stages.check_config)
api.make_packages_callable()

__all__ = ["UserError", "Workspace", *stages.stage_names(), "predict", "relabel"]
