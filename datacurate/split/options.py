"""Options of `datacurate split` (datacurate.yaml section `split:`), validated into one record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from datacurate.errors import UserError

SECTION = "split"
LINK_MODES = ("hardlink", "symlink", "copy")
CONVERT_FORMATS = ("jpeg", "png")   # --convert: what files timm/fastai would skip become
MANIFEST_FORMATS = ("csv", "jsonl")
DEFAULTS: dict[str, Any] = {
    "valid": 0.2,              # share of each class's valid-eligible images that go to valid
    "test": 0.0,               # share for a third split (0: none)
    "seed": 0,                 # seeds the content-hash ranking
    "min_valid": 1,            # at least this many in valid (and test) when a class has two or more
    "scraped_in_valid": False,  # let scraped images into valid/test (default: originals only)
    "link": "hardlink",        # hardlink | symlink | copy
    "final": False,            # everything in train, valid empty (for the final submission)
    "min_per_class": 10,       # the balance report flags classes with fewer train images
    "stats_size": 64,          # `datacurate stats` decodes images to about this many pixels
    "convert": None,           # jpeg | png: write files timm's and fastai's readers skip (webp, bmp, tiff...) converted
    "jpeg_quality": 95,        # quality of those JPEGs (1..100)
    "manifest": None,          # csv | jsonl: data/split/manifest.* and Hugging Face imagefolder metadata per split
}


@dataclass(frozen=True)
class SplitOptions:
    """Validated split options."""

    valid: float = 0.2
    test: float = 0.0
    seed: int = 0
    min_valid: int = 1
    scraped_in_valid: bool = False
    link: str = "hardlink"
    final: bool = False
    min_per_class: int = 10
    stats_size: int = 64
    convert: str | None = None
    jpeg_quality: int = 95
    manifest: str | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "SplitOptions":
        """Validate a resolved options dict (flag > yaml > default); bad values raise UserError."""
        v = dict(DEFAULTS, **values)
        opts = cls(
            valid=_fraction("valid", v["valid"]),
            test=_fraction("test", v["test"]),
            seed=_integer("seed", v["seed"]),
            min_valid=_integer("min_valid", v["min_valid"], low=0),
            scraped_in_valid=_boolean("scraped_in_valid", v["scraped_in_valid"]),
            link=_choice("link", v["link"], LINK_MODES),
            final=_boolean("final", v["final"]),
            min_per_class=_integer("min_per_class", v["min_per_class"], low=0),
            stats_size=_integer("stats_size", v["stats_size"], low=8),
            convert=_optional_choice("convert", v["convert"], CONVERT_FORMATS),
            jpeg_quality=_integer("jpeg_quality", v["jpeg_quality"], low=1, high=100),
            manifest=_optional_choice("manifest", v["manifest"], MANIFEST_FORMATS),
        )
        if opts.valid + opts.test >= 1:
            raise UserError(f"split: valid {opts.valid} + test {opts.test} must stay below 1 (train needs images)")
        return opts


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise UserError(f"split: {name} must be a fraction in [0, 1), got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise UserError(f"split: {name} must be a fraction in [0, 1), got {value!r}") from None
    if not 0 <= f < 1:
        raise UserError(f"split: {name} must be a fraction in [0, 1), got {value!r}")
    return f


def _integer(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise UserError(f"split: {name} must be a whole number, got {value!r}")
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise UserError(f"split: {name} must be a whole number, got {value!r}") from None
    if low is not None and n < low:
        raise UserError(f"split: {name} must be at least {low}, got {value!r}")
    if high is not None and n > high:
        raise UserError(f"split: {name} must be at most {high}, got {value!r}")
    return n


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise UserError(f"split: {name} must be true or false, got {value!r}")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UserError(f"split: {name} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _optional_choice(name: str, value: Any, choices: tuple[str, ...]) -> str | None:
    """One of `choices`, or None (also spelled `none`: a flag that turns off what datacurate.yaml set)."""
    if value is None or value == "none":
        return None
    return _choice(name, value, choices + ("none",))
