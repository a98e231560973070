"""Files/s of `datacurate split --link hardlink` on N tiny files, against baselines timed in the same run.

Baselines: a plain os.link loop (the floor: only the links) and split-folders' approach
(shutil.copy per file). datacurate's figure includes everything a split does: indexing,
hashing and decoding the files clean never checked (cold) or the cached index (warm), grouping, the sticky lookup, building the tree beside
data/split and swapping it in, the catalog update, split.csv and the balance report.

    python benchmarks/bench_split.py --files 100000 --classes 100
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from datacurate.split import SplitOptions, split_dataset
from datacurate.core.workspace import Workspace


def make_workspace(root: Path, files: int, classes: int) -> list[Path]:
    paths = []
    for i in range(files):
        folder = root / "data" / "original" / f"class_{i % classes:03d}"
        if i < classes:
            folder.mkdir(parents=True)
        p = folder / f"img_{i:07d}.jpg"
        p.write_bytes(_tiny_jpeg(i))  # a real picture: split decodes files clean never checked
        paths.append(p)
    return paths


def _tiny_jpeg(i: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (i % 256, (i >> 8) % 256, (i >> 16) % 256)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def link_loop(paths: list[Path], out: Path, copy: bool) -> float:
    start = time.perf_counter()
    made = set()
    for p in paths:
        dst = out / p.parent.name
        if dst not in made:
            dst.mkdir(parents=True, exist_ok=True)
            made.add(dst)
        if copy:
            shutil.copy(p, dst / p.name)
        else:
            os.link(p, dst / p.name)
    return time.perf_counter() - start


def timed_split(root: Path) -> float:
    start = time.perf_counter()
    res = split_dataset(Workspace.open(root), SplitOptions(valid=0.2, link="hardlink"))
    took = time.perf_counter() - start
    assert sum(res.counts.values()) == len(res.items) and res.tree.linked == len(res.items)
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-split-", dir=args.dir))
    try:
        root = base / "ws"
        paths = make_workspace(root, args.files, args.classes)
        n = len(paths)
        t_link = link_loop(paths, base / "os-link", copy=False)
        t_copy = link_loop(paths, base / "shutil-copy", copy=True)
        t_cold = timed_split(root)
        t_warm = timed_split(root)
        rate = lambda t: n / t  # noqa: E731
        print(f"{n} files in {args.classes} classes, hardlink, Python {sys.version.split()[0]}")
        print(f"{'':34}{'seconds':>9}{'files/s':>11}")
        for name, t in (("baseline: os.link loop", t_link), ("baseline: shutil.copy per file", t_copy),
                        ("datacurate split (cold: decoding)", t_cold), ("datacurate split (warm: re-run)", t_warm)):
            print(f"{name:34}{t:9.2f}{rate(t):11.0f}")
        print(f"ratio vs shutil.copy per file: cold {t_copy / t_cold:.2f}x, warm {t_copy / t_warm:.2f}x")
        print(f"ratio vs os.link loop:         cold {t_link / t_cold:.2f}x, warm {t_link / t_warm:.2f}x")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
