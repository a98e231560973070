"""Augmentation policies: named presets, key-by-key overrides, validation, and the torchvision.transforms.v2 pipeline.

A policy is chosen with `--augment PRESET` or `train.augment` in datacurate.yaml, either a preset name or a
mapping `{preset: NAME, key: value, ...}` (a mapping without `preset` starts from `none`). Every random
draw comes from torch's generator seeded per (seed, epoch, image) inside the loader worker, so a resumed
run and any number of workers see the same pictures. Parsing and validation import no torch (config checks
run them), only `build` and `apply` do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, Mapping

from datacurate.core.errors import UserError
from datacurate.vision.crop import resize_center_crop
from datacurate.vision.numbers import number, probability

if TYPE_CHECKING:
    import torch

AUTO = ("none", "randaugment", "trivialaugment", "autoaugment")


@dataclass(frozen=True)
class Policy:
    """What a training image goes through after decoding (each key off at its zero value)."""

    resized_crop: tuple[float, float] | None = None  # RandomResizedCrop scale range, e.g. [0.08, 1]
    crop_jitter: int = 0  # pixels the crop may move off centre (RandomCrop of a slightly larger centre crop)
    hflip: float = 0.0  # probability of a horizontal flip
    vflip: float = 0.0  # probability of a vertical flip
    rotate90: float = 0.0  # probability of a rotation by 90, 180 or 270 degrees (one drawn)
    rotate: float = 0.0  # rotation by a random angle in [-rotate, rotate] degrees
    brightness: float = 0.0  # ColorJitter factors, each component on its own
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0  # at most 0.5
    grayscale: float = 0.0  # probability of a grayscale copy
    auto: str = "none"  # randaugment | trivialaugment | autoaugment
    auto_ops: int = 2  # randaugment: operations per image
    auto_magnitude: int = 9  # randaugment: magnitude 0-30
    erasing: float = 0.0  # probability of RandomErasing (a random rectangle set to 0)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["resized_crop"] = list(self.resized_crop) if self.resized_crop else None
        return d

    @property
    def active(self) -> bool:
        return self != Policy()


PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    # printed characters: no hue, no flips, no rotation (the text would read backwards)
    "characters": {"brightness": 0.05},
    # garbage photos: any orientation is a real one
    "garbage": {"hflip": 0.5, "vflip": 0.5, "rotate90": 0.75, "resized_crop": [0.35, 1.0]},
    # birds: the whole bird at several scales, mirrored, mild colour change
    "fine-grained": {"resized_crop": [0.25, 1.0], "hflip": 0.5, "brightness": 0.2, "contrast": 0.2, "saturation": 0.2},
    # the strong ImageNet recipe: random resized crop, flip, TrivialAugment, random erasing
    "strong": {"resized_crop": [0.08, 1.0], "hflip": 0.5, "auto": "trivialaugment", "erasing": 0.25},
}
PROBABILITIES = ("hflip", "vflip", "rotate90", "grayscale", "erasing")
KEYS = tuple(f.name for f in fields(Policy))


def parse_policy(raw: Any, what: str = "train.augment") -> Policy:
    """A Policy from a preset name or a mapping {preset: NAME, key: value, ...}; every mistake is a UserError."""
    if raw is None:
        raw = "characters"
    if isinstance(raw, str):
        raw = {"preset": raw}
    if not isinstance(raw, Mapping):
        raise UserError(f"{what} must be a preset name ({', '.join(PRESETS)}) or a mapping {{preset: NAME, key: value}}")
    preset = str(raw.get("preset", "none"))
    if preset not in PRESETS:
        raise UserError(f"{what}: unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    unknown = sorted(set(raw) - set(KEYS) - {"preset"})
    if unknown:
        raise UserError(f"{what}: unknown transform option {unknown[0]!r}; known: {', '.join(KEYS)}")
    merged = {**PRESETS[preset], **{k: v for k, v in raw.items() if k != "preset"}}
    return _validate(merged, what)


def _validate(d: dict[str, Any], what: str) -> Policy:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{what}.{key}"
        if key in PROBABILITIES:
            out[key] = probability(value, name)
        elif key == "resized_crop":
            out[key] = None if value is None else _scale(value, name)
        elif key == "auto":
            if str(value).lower() not in AUTO:
                raise UserError(f"{name} {value!r} is not one of {', '.join(AUTO)}")
            out[key] = str(value).lower()
        elif key in ("crop_jitter", "auto_ops", "auto_magnitude"):
            out[key] = number(value, name, lo=0, integer=True)
        else:
            out[key] = number(value, name, lo=0)
    if out.get("hue", 0) > 0.5:
        raise UserError(f"{what}.hue must be between 0 and 0.5, got {out['hue']}")
    if out.get("rotate", 0) > 180:
        raise UserError(f"{what}.rotate must be between 0 and 180 degrees, got {out['rotate']}")
    if out.get("auto_magnitude", 0) > 30:
        raise UserError(f"{what}.auto_magnitude must be between 0 and 30, got {out['auto_magnitude']}")
    return Policy(**out)


def _scale(value: Any, name: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise UserError(f"{name} must be two numbers [low, high] of the image area, e.g. [0.08, 1.0]")
    lo, hi = probability(value[0], name), probability(value[1], name)
    if not 0 < lo <= hi:
        raise UserError(f"{name} must satisfy 0 < low <= high <= 1, got {list(value)}")
    return lo, hi


def describe(p: Policy) -> str:
    """One line for --plan: every transform the policy applies, in order."""
    parts = []
    if p.resized_crop:
        parts.append(f"random resized crop (scale {p.resized_crop[0]:g}-{p.resized_crop[1]:g})")
    elif p.crop_jitter:
        parts.append(f"centre crop jittered by up to {p.crop_jitter} px")
    else:
        parts.append("centre crop")
    for key, label in (("hflip", "horizontal flip"), ("vflip", "vertical flip"), ("rotate90", "rotate 90/180/270"),
                       ("grayscale", "grayscale")):
        if getattr(p, key):
            parts.append(f"{label} p={getattr(p, key):g}")
    if p.rotate:
        parts.append(f"rotate +-{p.rotate:g} deg")
    jitter = [f"{k} {getattr(p, k):g}" for k in ("brightness", "contrast", "saturation", "hue") if getattr(p, k)]
    if jitter:
        parts.append("colour jitter " + ", ".join(jitter))
    if p.auto == "randaugment":
        parts.append(f"RandAugment ({p.auto_ops} ops, magnitude {p.auto_magnitude})")
    elif p.auto != "none":
        parts.append({"trivialaugment": "TrivialAugmentWide", "autoaugment": "AutoAugment (ImageNet)"}[p.auto])
    if p.erasing:
        parts.append(f"random erasing p={p.erasing:g}")
    return ", ".join(parts)


def build(p: Policy, resize: int, crop: int) -> Callable:
    """PIL image (decoded near `resize`) -> uint8 CHW tensor of crop x crop, every step a torchvision v2 transform."""
    from torchvision.transforms import v2

    steps: list[Callable] = []
    if p.resized_crop:
        steps.append(v2.RandomResizedCrop(crop, scale=p.resized_crop, antialias=True))
    elif p.crop_jitter:
        steps += [_Fixed(resize_center_crop, resize, crop + 2 * p.crop_jitter), v2.RandomCrop(crop, pad_if_needed=True)]
    else:
        steps.append(_Fixed(resize_center_crop, resize, crop))
    if p.hflip:
        steps.append(v2.RandomHorizontalFlip(p.hflip))
    if p.vflip:
        steps.append(v2.RandomVerticalFlip(p.vflip))
    if p.rotate90:
        steps.append(v2.RandomApply([v2.RandomChoice([v2.RandomRotation((a, a)) for a in (90, 180, 270)])], p=p.rotate90))
    if p.rotate:
        steps.append(v2.RandomRotation(p.rotate))
    if p.brightness or p.contrast or p.saturation or p.hue:
        steps.append(v2.ColorJitter(p.brightness or None, p.contrast or None, p.saturation or None, p.hue or None))
    if p.grayscale:
        steps.append(v2.RandomGrayscale(p.grayscale))
    if p.auto == "randaugment":
        steps.append(v2.RandAugment(p.auto_ops, p.auto_magnitude))
    elif p.auto == "trivialaugment":
        steps.append(v2.TrivialAugmentWide())
    elif p.auto == "autoaugment":
        steps.append(v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET))
    steps.append(v2.PILToTensor())
    if p.erasing:
        steps.append(v2.RandomErasing(p.erasing))
    return v2.Compose(steps)


class _Fixed:
    """A deterministic step with fixed arguments (picklable, for loader workers)."""

    def __init__(self, fn: Callable, *args):
        self.fn, self.args = fn, args

    def __call__(self, im):
        return self.fn(im, *self.args)


def item_seed(seed: int, epoch: int, index: int) -> int:
    """The generator seed of one image in one epoch."""
    return ((seed * 1_000_003 + epoch) * 10_000_019 + index) % (2**63 - 1)


def apply(transform: Callable, im, seed: int) -> torch.Tensor:
    """Run `transform` with torch's generator seeded by `seed`, leaving the caller's generator as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transform(im)
