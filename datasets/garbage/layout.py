"""Lay out the garbage-classification competition's train_data as a datacurate workspace.

The competition ships img_N.jpg beside img_N.txt, whose one line reads "img_N.jpg, LABEL" with
LABEL an index 0..39 into classes.txt. This hard-links (or copies) each image into
WORKSPACE/data/original/<class folder>/.

    python datasets/garbage/layout.py path/to/train_data WORKSPACE
"""

from __future__ import annotations

import sys
from pathlib import Path

from datacurate.core.fsutil import link_or_copy

HERE = Path(__file__).resolve().parent


def main(src: Path, workspace: Path) -> int:
    classes = (HERE / "classes.txt").read_text(encoding="utf-8").split()
    placed = 0
    for label_file in sorted(src.glob("*.txt")):
        name, _, label = label_file.read_text(encoding="utf-8").partition(",")
        image = src / name.strip()
        if not image.exists() or not label.strip().isdigit() or int(label) >= len(classes):
            print(f"skipped {label_file.name}: {label_file.read_text(encoding='utf-8').strip()!r}", file=sys.stderr)
            continue
        dst = workspace / "data" / "original" / classes[int(label)] / image.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(image, dst)
        placed += 1
    print(f"placed {placed} images under {workspace / 'data' / 'original'}")
    return 0 if placed else 2


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
