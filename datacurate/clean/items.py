"""Catalog rows as the Items clean judges (and its reports show)."""

from __future__ import annotations

from datacurate.clean.model import Item
from datacurate.clean.quality import DEFAULT_THRESHOLDS
from datacurate.core.imageio import GRAY_MODES


def item_of(row, hashes: dict[str, str], metrics: dict[str, dict] | None = None,
            gray_below: float = DEFAULT_THRESHOLDS["grayscale_below"]) -> Item:
    """The Item a catalog files row stands for (`hashes`: sha256 -> perceptual hash; `metrics`: sha256 -> quality)."""
    m = (metrics or {}).get(row["sha256"])
    gray = row["mode"] in GRAY_MODES or bool(m and m["colour"] < gray_below)
    return Item(row["path"], row["class"], row["source"], row["width"] or 0, row["height"] or 0, row["size"],
                row["sha256"], hashes.get(row["sha256"]), row["mode"], gray,
                tonal_range=m["bright"] - m["shadow"] if m else None)
