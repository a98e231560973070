"""Leak-free train/valid(/test) folders, class-balance reports and train-split statistics.

The package called, `datacurate.split(ws, ...)`, is the Python API's function (datacurate/api.py makes it
so). The names here load on first use, so importing the package stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datacurate.split.options import DEFAULTS, SplitOptions
    from datacurate.split.splitter import SplitResult, split_dataset
    from datacurate.split.stats import Stats, compute_stats, write_stats

__all__ = ["DEFAULTS", "SplitOptions", "SplitResult", "Stats", "compute_stats", "split_dataset", "write_stats"]


def __getattr__(name: str) -> Any:
    if name in ("DEFAULTS", "SplitOptions"):
        from datacurate.split import options

        return getattr(options, name)
    if name in ("SplitResult", "split_dataset"):
        from datacurate.split import splitter

        return getattr(splitter, name)
    if name in ("Stats", "compute_stats", "write_stats"):
        from datacurate.split import stats

        return getattr(stats, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
