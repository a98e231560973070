"""Images/s of `datacurate clean` against the naive check, measured side by side in one run.

Baseline: one process, PIL open + load + imagehash.phash per file (what fastai's verify_images
and imagededup do). Ours: the library call behind `datacurate clean` (draft decoding, all cores).
Part two: a second clean over unchanged files against the first (incremental catalog).

    python benchmarks/bench_clean.py [--count 24] [--small 10000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from datacurate.clean.run import clean
from datacurate.core.workspace import Workspace

SIZES_MP = (1, 3, 6, 12)


def photo_like(mp: float, seed: int) -> Image.Image:
    """A photo-like picture: smooth colour fields plus fine noise (JPEG-compresses like a photo)."""
    w = int((mp * 1e6 * 4 / 3) ** 0.5)
    h = int(w * 3 / 4)
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    noise = Image.fromarray(rng.integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8)).resize((w, h))
    return Image.blend(im, noise, 0.15)


def make_large(folder: Path, count: int) -> None:
    for i in range(count):
        path = folder / "data" / "original" / f"class{i % 3}" / f"img{i:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        photo_like(SIZES_MP[i % len(SIZES_MP)], i).save(path, quality=90)


def make_small(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        path = folder / "data" / "original" / f"class{i % 10}" / f"s{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((64, 48)).save(path, quality=85)


def baseline(folder: Path) -> float:
    start = time.perf_counter()
    for path in sorted((folder / "data" / "original").rglob("*.jpg")):
        with Image.open(path) as im:
            im.load()
            imagehash.phash(im)
    return time.perf_counter() - start


def ours(folder: Path) -> float:
    shutil.rmtree(folder / ".datacurate", ignore_errors=True)
    start = time.perf_counter()
    clean(Workspace.open(folder), dry_run=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=24, help="large JPEGs (1, 3, 6, 12 MP in turn)")
    ap.add_argument("--small", type=int, default=10000, help="small files for the incremental figure")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-clean-"))
    try:
        large = root / "large"
        make_large(large, args.count)
        mp = sum(SIZES_MP[i % len(SIZES_MP)] for i in range(args.count))
        ours(large)  # warm the page cache for both sides
        t_base, t_ours = baseline(large), ours(large)
        print(f"cores: {os.cpu_count()}  files: {args.count} JPEGs, {mp} MP in all")
        print(f"baseline (1 process, PIL load + imagehash.phash): {args.count / t_base:7.2f} images/s  ({t_base:.2f} s)")
        print(f"datacurate clean (draft decode, all cores):       {args.count / t_ours:7.2f} images/s  ({t_ours:.2f} s)")
        print(f"speed-up: {t_base / t_ours:.1f}x")
        small = root / "small"
        make_small(small, args.small)
        ws = Workspace.open(small)
        t0 = time.perf_counter()
        clean(ws, dry_run=True)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        clean(ws, dry_run=True)
        t_second = time.perf_counter() - t0
        print(f"incremental: first clean of {args.small} files {t_first:.2f} s, second (unchanged) {t_second:.2f} s "
              f"= {t_second / t_first:.1%} of the first")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
