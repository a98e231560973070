"""Options of `datacurate vet` (datacurate.yaml section `vet:`), validated into one record."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from datacurate.core.errors import UserError
from datacurate.core.options import StageOptions, opt

SECTION = "vet"
Device = Literal["auto", "cpu", "cuda", "mps"]
NAME = "a non-empty text"


class VetOptions(StageOptions):
    """Validated vet options (every key is also a flag: underscores become dashes)."""

    SECTION = "vet"
    backbone: str = opt("resnet50", "any torchvision classification architecture", min_length=1, rule=NAME)
    weights: str = opt("imagenet", "imagenet | none | PATH (state dict or datacurate checkpoint)", min_length=1, rule=NAME)
    run: str | None = opt(None, "a datacurate run's model instead of a backbone (name, folder or .pt)", min_length=1, rule=NAME)
    train_first: bool = opt(False, "with `run`: train that run on the originals first when it does not exist")
    img_size: int = opt(224, "Resize(img_size*255/224), CenterCrop(img_size); a run uses its own", ge=16)
    batch_size: int = opt(64, "images per batch", ge=1)
    workers: int | None = opt(None, "DataLoader workers (None: min(8, CPUs - 1))", ge=0)
    device: Device = opt("auto", "where the backbone runs")
    neighbours: int = opt(5, "originals compared with per image (k of the kNN)", ge=1)
    offtopic_z: float = opt(2.25, "the threshold: its class's median scraped distance + this many MADs (pooled)", ge=0.5, le=20)
    offtopic_quantile: float = opt(0.98, "with fewer than 12 scraped images in a class: this quantile of the originals' own leave-one-out distances", ge=0.5, le=1)
    offtopic_threshold: float | None = opt(None, "a fixed cosine distance instead of the calibrated one", ge=0, le=2)
    folds: int = opt(5, "K of the K-fold logistic regression on the originals", ge=2)
    move_originals: bool = opt(False, "originals are only listed unless this is true")
    seed: int = opt(0, "seed", ge=0)

    @model_validator(mode="after")
    def _train_first_needs_run(self) -> "VetOptions":
        if self.train_first and not self.run:
            raise UserError("vet: train_first needs run (the name of the run to train on the originals)")
        if not self.run:  # a run brings its own size
            from datacurate.vision.sizes import check_input_size

            check_input_size(self.backbone, self.img_size, "vet: img_size")
        return self


DEFAULTS: dict[str, Any] = VetOptions.defaults()
