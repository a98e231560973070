"""datacurate: grow, clean, split a labeled image collection and fine-tune a classifier on it.

The Python API (docs/api.md): `from datacurate import Workspace, scrape, clean, vet, split, train,
evaluate, predict, relabel`. Names load on first use, so `import datacurate` stays light (torch loads only
when train, evaluate or predict run).
"""

from datacurate.core.errors import UserError

__version__ = "0.1.0"
__all__ = ["UserError", "Workspace", "scrape", "clean", "vet", "split", "stats", "train", "evaluate", "predict", "relabel"]
_STAGE_PACKAGES = ("scrape", "clean", "vet", "split", "train")


def __getattr__(name: str):
    import importlib

    if name == "Workspace":
        from datacurate.core.workspace import Workspace

        return Workspace
    if name in _STAGE_PACKAGES:  # callable packages: datacurate.clean(ws, ...) (see datacurate/api.py)
        return importlib.import_module(f"datacurate.{name}")
    if name in ("evaluate", "predict", "stats", "relabel"):
        return getattr(importlib.import_module("datacurate.api"), name)
    raise AttributeError(f"module 'datacurate' has no attribute {name!r}")
