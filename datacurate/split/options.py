"""Options of `datacurate split` and `datacurate stats` (datacurate.yaml sections `split:`, `stats:`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator, model_validator

from datacurate.core.errors import UserError
from datacurate.core.options import StageOptions, opt

SECTION = "split"
LINK_MODES = ("hardlink", "symlink", "copy")
FRACTION = "a fraction in [0, 1)"
CONVERT_FORMATS = ("jpeg", "png")   # --convert: what files timm/fastai would skip become
MANIFEST_FORMATS = ("csv", "jsonl")


class SplitOptions(StageOptions):
    """Validated split options."""

    SECTION = "split"
    valid: float = opt(0.2, "share of each class's valid-eligible images that go to valid", ge=0, lt=1, rule=FRACTION)
    test: float = opt(0.0, "share for a third split (0: none)", ge=0, lt=1, rule=FRACTION)
    seed: int = opt(0, "seeds the content-hash ranking")
    min_valid: int = opt(1, "at least this many in valid (and test) when a class has two or more", ge=0)
    scraped_in_valid: bool = opt(False, "let scraped images into valid/test (default: originals only)")
    link: Literal["hardlink", "symlink", "copy"] = opt("hardlink", "how files get into data/split")
    final: bool = opt(False, "everything in train, valid empty (for the final submission)")
    min_per_class: int = opt(10, "the balance report flags classes with fewer train images", ge=0)
    stats_size: int = opt(64, "`datacurate stats` decodes images to about this many pixels a side", ge=8)
    convert: Literal["jpeg", "png"] | None = opt(None, "write files timm's and fastai's readers skip (webp, bmp, tiff...) "
                                                       "converted to this format (none: off)", rule="one of jpeg, png, none")
    jpeg_quality: int = opt(95, "quality of those JPEGs", ge=1, le=100)
    manifest: Literal["csv", "jsonl"] | None = opt(None, "write data/split/manifest.* and Hugging Face imagefolder metadata "
                                                         "per split (none: off)", rule="one of csv, jsonl, none")

    @field_validator("convert", "manifest", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        return None if value == "none" else value  # `--convert none` turns off what datacurate.yaml set

    @model_validator(mode="after")
    def _train_keeps_images(self) -> "SplitOptions":
        if self.valid + self.test >= 1:
            raise UserError(f"split: valid {self.valid} + test {self.test} must stay below 1 (train needs images)")
        return self


class StatsOptions(StageOptions):
    """`stats` has no options of its own: it reads split.stats_size."""

    SECTION = "stats"


DEFAULTS: dict[str, Any] = SplitOptions.defaults()
