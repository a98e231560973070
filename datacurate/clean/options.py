"""Options of `datacurate clean` (datacurate.yaml section `clean:`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from datacurate.clean.quality import THRESHOLDS, _parse_drop
from datacurate.core.imageio import CONVERTIBLE, Limits
from datacurate.core.options import StageOptions, opt

# Chosen with `python benchmarks/bench_dedupe.py accuracy`: see datacurate/clean/neardup.py.
DEFAULT_THRESHOLD = 10
MAX_THRESHOLD = 32  # a 64-bit hash at this distance matches unrelated images
Hash = Literal["phash", "dhash", "whash", "ahash"]


def _flag(name: str) -> float:
    return THRESHOLDS[name][1]


class CleanOptions(StageOptions):
    """Validated clean options (every key is also a flag: underscores become dashes)."""

    SECTION = "clean"
    workers: int | None = opt(None, "decoding processes (None: all cores)", ge=1)
    min_size: int = opt(Limits.min_size, "smallest short side in pixels", ge=1)
    max_pixels: int = opt(Limits.max_pixels, "decompression-bomb limit (width x height)", ge=1)
    max_aspect: float = opt(Limits.max_aspect, "largest long/short side ratio", ge=1)
    max_bytes: int = opt(Limits.max_bytes, "larger files are refused before they are read (too-large)", ge=1)
    hash: Hash = opt("phash", "perceptual hash")
    threshold: int = opt(DEFAULT_THRESHOLD, "near-duplicate Hamming distance in bits", ge=0, le=MAX_THRESHOLD)
    against: str | None = opt(None, "test folder for leak checks (None: data/test when present)")
    convert_unsupported: bool = opt(False, "convert AVIF, JPEG 2000, TGA, PSD, ICO, DDS... to PNG like GIFs")
    drop: str | list[str] | None = opt(None, "quality flags that set aside any image (None: placeholder, "
                                             "low-information, dark, light for scraped images only)")
    keep_flags: bool = opt(False, "report quality flags; set nothing aside for them")
    placeholder_hashes: str | list[str] | None = opt(None, "placeholder pictures: phash/sha256 hex values, or a file of them")
    dark_below: float = opt(_flag("dark_below"), "dark: brightest 1% of pixels under this luminance", ge=0, le=1)
    light_above: float = opt(_flag("light_above"), "light: darkest 5% of pixels over this luminance", ge=0, le=1)
    blown_above: float = opt(_flag("blown_above"), "light: share of the middle's pixels blown out over this (the rest bright)",
                             ge=0, le=1)
    blurry_below: float = opt(_flag("blurry_below"), "blurry: strongest edges under this", ge=0, le=1)
    low_information_below: float = opt(_flag("low_information_below"), "low-information: luminance entropy under this", ge=0, le=1)
    grayscale_below: float = opt(_flag("grayscale_below"), "grayscale: mean spread between R, G and B under this", ge=0, le=1)
    odd_size_factor: float = opt(_flag("odd_size_factor"), "odd-size: side this many times off the median side", ge=1)

    @field_validator("drop")
    @classmethod
    def _known_flags(cls, value: Any) -> Any:
        _parse_drop(value)
        return value


DEFAULTS: dict[str, Any] = CleanOptions.defaults()


def limits_of(opts: dict) -> Limits:
    """The integrity-check limits of validated clean options (split decodes with them too)."""
    convertible = tuple(sorted(CONVERTIBLE)) + (("*",) if opts["convert_unsupported"] else ())
    return Limits(opts["max_pixels"], opts["min_size"], float(opts["max_aspect"]), opts["max_bytes"], convertible)
