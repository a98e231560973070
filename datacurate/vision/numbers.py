"""Checked numbers of a config (finite, integral, bounded, probabilities); no torch, so config checks stay fast."""

from __future__ import annotations

import math
from typing import Any

from datacurate.core.errors import UserError


def number(value: Any, what: str, *, lo: float | None = None, integer: bool = False) -> Any:
    """`value` as a finite float (or an int with `integer`) of at least `lo`; a UserError naming `what` otherwise."""
    try:
        out = int(value) if integer else float(value)
        if integer and float(value) != out:
            raise ValueError
        if isinstance(value, bool) or not math.isfinite(out):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{what} must be {'an integer' if integer else 'a finite number'}, got {value!r}") from None
    if lo is not None and out < lo:
        raise UserError(f"{what} must be at least {lo}, got {value!r}")
    return out


def probability(value: Any, what: str) -> float:
    """A finite number in [0, 1]."""
    out = number(value, what, lo=0)
    if out > 1:
        raise UserError(f"{what} must be between 0 and 1, got {value!r}")
    return out
