"""Cutting items into the batches a kernel receives."""

from __future__ import annotations

from typing import Any, Sequence


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    """`items` in consecutive lists of `size` (the last one shorter)."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]
