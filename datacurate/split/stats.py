"""Per-channel mean and std of the train split, for the trainer's normalisation (data/split/stats.json)."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datacurate.core.terminal import progress
from datacurate.core.errors import UserError
from datacurate.core.fsutil import atomic_write_text
from datacurate.core.imageio import IMAGEFOLDER_EXTENSIONS, load_rgb

STATS_NAME = "stats.json"


@dataclass
class Stats:
    mean: list[float]
    std: list[float]
    count: int
    skipped: list[str] = field(default_factory=list)
    path: Path | None = None

    def to_json(self) -> dict:
        return {"mean": self.mean, "std": self.std, "count": self.count}


def train_images(train_dir: Path) -> list[Path]:
    """Image files under train/<class>/, sorted (what ImageFolder loads)."""
    out = []
    for folder, dirs, files in os.walk(train_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if Path(folder) == train_dir:
            continue  # ImageFolder reads class subfolders only
        out += [Path(folder) / f for f in sorted(files) if not f.startswith(".") and f.lower().endswith(IMAGEFOLDER_EXTENSIONS)]
    return out


def _moments(path: Path, size: int) -> tuple[np.ndarray, np.ndarray, int] | None:
    try:
        im = load_rgb(path, size)
        im.thumbnail((size, size))
        a = np.asarray(im, dtype=np.float64).reshape(-1, 3) / 255.0
    except Exception:  # noqa: BLE001 - a file that does not decode is reported, not fatal
        return None
    return a.sum(axis=0), (a * a).sum(axis=0), a.shape[0]


def compute_stats(split_dir: Path, *, size: int = 64, workers: int | None = None, quiet: bool = True) -> Stats:
    """Mean and std per channel (0..1) over every pixel of the train images, decoded at about `size` px."""
    train = split_dir / "train"
    paths = train_images(train) if train.is_dir() else []
    if not paths:
        raise UserError(f"no images under {train}; run `datacurate split` first")
    total, squares, pixels, used = np.zeros(3), np.zeros(3), 0, 0
    skipped = []
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda p: _moments(p, size), paths)
        for path, m in zip(paths, progress(results, total=len(paths), desc="stats", quiet=quiet)):
            if m is None:
                skipped.append(str(path))
                continue
            total += m[0]
            squares += m[1]
            pixels += m[2]
            used += 1
    if not used:
        raise UserError(f"none of the {len(paths)} images under {train} could be decoded")
    mean = total / pixels
    std = np.sqrt(np.maximum(squares / pixels - mean * mean, 0.0))
    return Stats([round(float(x), 6) for x in mean], [round(float(x), 6) for x in std], used, skipped)


def write_stats(stats: Stats, split_dir: Path) -> Path:
    path = split_dir / STATS_NAME
    atomic_write_text(path, json.dumps(stats.to_json(), indent=2) + "\n")
    stats.path = path
    return path
