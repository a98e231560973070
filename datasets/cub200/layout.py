"""Lay out CUB-200-2011 as a datacurate workspace: its train images as originals, its test images as data/test.

    python datasets/cub200/layout.py path/to/CUB_200_2011 WORKSPACE
"""

from __future__ import annotations

import sys
from pathlib import Path

from datacurate.core.fsutil import link_or_copy


def main(src: Path, workspace: Path) -> int:
    images = dict(line.split() for line in (src / "images.txt").read_text().splitlines() if line.strip())
    is_train = dict(line.split() for line in (src / "train_test_split.txt").read_text().splitlines() if line.strip())
    placed = 0
    for image_id, rel in images.items():
        folder = "original" if is_train.get(image_id) == "1" else "test"
        dst = workspace / "data" / folder / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(src / "images" / rel, dst)
        placed += 1
    print(f"placed {placed} images under {workspace / 'data'} (original: train split, test: test split)")
    return 0 if placed else 2


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
