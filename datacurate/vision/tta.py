"""Test-time augmentation: each image seen as several views whose softmax outputs are averaged.

flip: the plain centre crop and its mirror. crops: the centre crop and the four corner crops of the
resized square. policy: the centre crop and N views under the run's own training augmentation (seeded
per image and view, so the same images give the same answer). View 0 is always the plain crop, so one
pass gives the plain and the TTA prediction side by side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from datacurate.core.errors import UserError
from datacurate.vision import augment
from datacurate.vision.crop import resize_center_crop

if TYPE_CHECKING:
    import torch

MODES = ("flip", "crops", "policy")  # evaluate/predict --tta; no torch at import: config checks read it


class Views:
    """PIL image -> (V, C, H, W) uint8 views (a picklable callable for ImageSet(views=...))."""

    def __init__(self, mode: str, resize: int, crop: int, policy=None, n: int = 8, seed: int = 0):
        if mode not in MODES:
            raise UserError(f"--tta {mode!r} is not one of {', '.join(MODES)}")
        if n < 1:
            raise UserError(f"--tta-views must be at least 1, got {n}")
        self.mode, self.resize, self.crop, self.policy, self.n, self.seed = mode, resize, crop, policy, n, seed
        self._tf: Callable | None = None

    def __call__(self, im, i: int) -> torch.Tensor:
        import torch
        import torchvision.transforms.v2.functional as F

        plain = F.pil_to_tensor(resize_center_crop(im, self.resize, self.crop))
        if self.mode == "flip":
            return torch.stack([plain, plain.flip(-1)])
        if self.mode == "crops":
            big = F.pil_to_tensor(resize_center_crop(im, self.resize, self.resize))
            c, r = self.crop, self.resize
            corners = [big[:, :c, :c], big[:, :c, r - c:], big[:, r - c:, :c], big[:, r - c:, r - c:]]
            return torch.stack([plain, *corners])
        if self._tf is None:
            self._tf = augment.build(self.policy, self.resize, self.crop)
        return torch.stack([plain] + [augment.apply(self._tf, im, augment.item_seed(self.seed, 1_000 + v, i)) for v in range(self.n)])

    @property
    def count(self) -> int:
        return {"flip": 2, "crops": 5}.get(self.mode, self.n + 1)


def make_views(mode: str | None, pre, config: dict, n: int = 8) -> Views | None:
    """Views for `--tta MODE` with a run's preprocessing and (for policy) its training augmentation."""
    if not mode:
        return None
    policy = augment.parse_policy(config.get("augment", "characters")) if mode == "policy" else None
    if mode == "policy" and not policy.active:
        raise UserError("--tta policy: this run was trained without augmentation; use --tta flip or crops")
    return Views(mode, pre.resize, pre.crop, policy, n, int(config.get("seed", 0)))


def average(probs: torch.Tensor, n: int, views: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N*V, K) probabilities -> (plain (N, K), averaged over the views (N, K))."""
    p = probs.view(n, views, -1)
    return p[:, 0], p.mean(1)
