"""Data loading for training: ImageFolder-layout folders, draft-decoded JPEGs, deterministic augmentation.

Workers return uint8 tensors (a quarter of the bytes of float32 through pinned memory); scaling and
normalisation run on the device. The sampler hands out (index, epoch) keys and the augmentation
draws from a per-(seed, epoch, index) generator, so results do not depend on the number of workers,
a resumed run sees the same augmentation, and workers can persist across epochs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from datacurate.core.procutil import worker_init
from datacurate.core.errors import UserError
from datacurate.core.imageio import IMAGEFOLDER_EXTENSIONS, load_rgb
from datacurate.vision.crop import resize_center_crop

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Preprocess:
    """What an image goes through before the model (saved in every checkpoint)."""

    resize: int = 255
    crop: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    stats: str = "imagenet"  # or the path of the split's stats.json

    def as_dict(self) -> dict:
        return {"resize": self.resize, "crop": self.crop, "mean": list(self.mean), "std": list(self.std), "stats": self.stats}

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocess":
        return cls(int(d["resize"]), int(d["crop"]), tuple(d["mean"]), tuple(d["std"]), d.get("stats", ""))


def load_stats(split_dir: Path, mode: str = "auto") -> tuple[tuple, tuple, str]:
    """(mean, std, source): the split's stats.json when present (mode auto/split), else ImageNet's."""
    path = split_dir / "stats.json"
    if mode == "imagenet" or (mode == "auto" and not path.is_file()):
        return IMAGENET_MEAN, IMAGENET_STD, "imagenet"
    if mode not in ("auto", "split"):
        raise UserError(f"train.normalize must be auto, split or imagenet, got {mode!r}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        mean, std = tuple(float(x) for x in data["mean"]), tuple(float(x) for x in data["std"])
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError("three means and three positive stds expected")
    except FileNotFoundError:
        raise UserError(f"{path} does not exist; run `datacurate stats` or set train.normalize: imagenet") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is not a valid stats file ({exc}); run `datacurate stats` again") from None
    return mean, std, "stats.json"


def list_images(folder: Path) -> list[Path]:
    """Image files ImageFolder would load under `folder`, recursively, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / f for f in filenames
                   if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGEFOLDER_EXTENSIONS)
    return sorted(out)


def class_folders(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def scan_folder(folder: Path, classes: list[str] | None = None) -> tuple[list[str], list[tuple[str, int]]]:
    """(classes, [(path, label)]) of an ImageFolder tree; with `classes` given, folders must be among them."""
    if not folder.is_dir():
        raise UserError(f"{folder} does not exist; build it with `datacurate split`")
    found = class_folders(folder)
    if classes is None:
        classes = found
    else:
        extra = [c for c in found if c not in classes]
        if extra:
            raise UserError(f"{folder} has class folder {extra[0]!r} that the model was not trained on")
    index = {c: i for i, c in enumerate(classes)}
    samples = [(str(p), index[c]) for c in found for p in list_images(folder / c)]
    return classes, samples


class ImageSet(Dataset):
    """(uint8 CHW tensor, label, index) per sample; a file that fails to decode gives (None, label, index, why).

    With a `policy` the training augmentation runs, seeded per (seed, epoch, index); with `views` (test-time
    augmentation, datacurate/vision/tta.py) each sample is a (views, C, H, W) stack.
    """

    def __init__(self, samples: list[tuple[str, int]], pre: Preprocess, *, policy=None, seed: int = 0, views=None):
        self.samples, self.pre, self.policy, self.seed, self.views = samples, pre, policy, seed, views
        self._tf = None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]):
        i, epoch = key if isinstance(key, tuple) else (key, 0)
        path, label = self.samples[i]
        try:
            im = load_rgb(path, self.pre.resize)
            out = self.views(im, i) if self.views else self.transform(im, i, epoch)
            return out, label, i
        except Exception as exc:  # noqa: BLE001 - a bad file is skipped, never fatal (the loop logs it)
            return None, label, i, f"{type(exc).__name__}: {exc}"

    def transform(self, im, i: int, epoch: int = 0) -> torch.Tensor:
        import torchvision.transforms.v2.functional as F

        from datacurate.vision import augment

        if self.policy is None or not self.policy.active:
            return F.pil_to_tensor(resize_center_crop(im, self.pre.resize, self.pre.crop))
        if self._tf is None:
            self._tf = augment.build(self.policy, self.pre.resize, self.pre.crop)
        return augment.apply(self._tf, im, augment.item_seed(self.seed, epoch, i))


def collate(batch):
    """Stack decodable samples; also return {index: why} for the ones that failed."""
    good = [b for b in batch if b[0] is not None]
    bad = {b[2]: b[3] for b in batch if b[0] is None}
    if not good:
        return torch.empty(0, 3, 1, 1, dtype=torch.uint8), torch.empty(0, dtype=torch.long), bad
    return torch.stack([b[0] for b in good]), torch.tensor([b[1] for b in good]), bad


class EpochBatches(torch.utils.data.Sampler):
    """Batches of (index, epoch) keys, each epoch a permutation drawn from (seed, epoch).

    Endless (epoch after epoch from `start`) for the training stream, one epoch otherwise. On several
    processes (`rank` of `world`), global batch k is the one-process run's batch k of batch_size x world
    images, cut into `world` contiguous shares: each image once per epoch across ranks, the same images per
    step as one process with the global batch, and its augmentation drawn from (seed, epoch, image) whichever
    rank loads it. The last global batch may be short: its shares differ by at most one image, and a rank
    may get none (the loop then steps with a zero-weight batch, so every rank takes every step).
    """

    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool, endless: bool, rank: int = 0, world: int = 1):
        self.n, self.bs, self.seed, self.shuffle, self.endless, self.start = n, batch_size, seed, shuffle, endless, 0
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        step = self.bs * self.world
        return (self.n + step - 1) // step

    def epoch_batches(self, epoch: int) -> list[list[tuple[int, int]]]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch)).tolist()
        else:
            order = list(range(self.n))
        step, r, w = self.bs * self.world, self.rank, self.world
        out = []
        for k in range(0, self.n, step):
            batch = order[k:k + step]
            m = len(batch)
            out.append([(i, epoch) for i in batch[m * r // w:m * (r + 1) // w]])
        return out

    def __iter__(self):
        epoch = self.start
        while True:
            yield from self.epoch_batches(epoch)
            if not self.endless:
                return
            epoch += 1


class EpochLoader:
    """A DataLoader seen one epoch at a time: `set_epoch(e)`, then iterate `len(self)` batches.

    With `stream`, one worker pool reads ahead across epoch boundaries (no pipeline bubble at each
    epoch start); asking for an epoch other than the next one restarts the stream there.
    """

    def __init__(self, ds: "ImageSet", batch_size: int, workers: int, *, shuffle: bool, seed: int, pin: bool, stream: bool,
                 rank: int = 0, world: int = 1):
        self.dataset = ds
        self.batches = EpochBatches(len(ds), batch_size, seed, shuffle, endless=stream, rank=rank, world=world)
        self.loader = DataLoader(ds, batch_sampler=self.batches, num_workers=workers, collate_fn=collate, pin_memory=pin,
                                 prefetch_factor=2 if workers else None, persistent_workers=workers > 0 and not stream,
                                 worker_init_fn=worker_init if workers else None,
                                 generator=torch.Generator().manual_seed(seed))  # workers' seeds: not from the global RNG
        self.stream, self.epoch, self._it, self._next = stream, 0, None, None

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        if not self.stream:
            self.batches.start = self.epoch
            yield from self.loader
            return
        if self._it is None or self._next != self.epoch:
            self.batches.start = self.epoch
            self._it = iter(self.loader)
        self._next = None
        for _ in range(len(self)):
            yield next(self._it)
        self._next = self.epoch + 1


def make_loader(ds: ImageSet, batch_size: int, workers: int, *, shuffle: bool, seed: int = 0, pin: bool = False,
                stream: bool = False, rank: int = 0, world: int = 1) -> EpochLoader:
    """Batches of (uint8 images, labels, failed indices); call set_epoch(loader, e) before each epoch.

    `batch_size` is per process; with `world` processes this rank gets its share of each global batch.
    """
    return EpochLoader(ds, batch_size, workers, shuffle=shuffle, seed=seed, pin=pin, stream=stream, rank=rank, world=world)


def set_epoch(loader: EpochLoader, epoch: int) -> None:
    loader.set_epoch(epoch)


def to_input(images: torch.Tensor, device: torch.device, pre: Preprocess, channels_last: bool) -> torch.Tensor:
    """uint8 NCHW -> normalised float on `device` (optionally channels_last)."""
    x = images.to(device, non_blocking=True).float().div_(255)
    mean = torch.tensor(pre.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(pre.std, device=device).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
