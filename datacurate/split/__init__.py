"""Leak-free train/valid(/test) folders, class-balance reports and train-split statistics."""

from datacurate.split.options import DEFAULTS, SplitOptions
from datacurate.split.splitter import SplitResult, split_dataset
from datacurate.split.stats import Stats, compute_stats, write_stats

__all__ = ["DEFAULTS", "SplitOptions", "SplitResult", "Stats", "compute_stats", "split_dataset", "write_stats"]

from datacurate.api import callable_package  # noqa: E402 - last: `datacurate.split(ws, ...)` runs the stage

callable_package(__name__)
