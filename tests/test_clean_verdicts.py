"""clean's verdicts on real files: settled in one run, the same whatever the workers and threads (issue 20)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from PIL import Image, ImageDraw

from conftest import encode, photo, run_cli, write
from datacurate.clean.keep import keep
from datacurate.clean.run import clean
from datacurate.workspace import Workspace


def sharp(w: int = 96, h: int = 72, seed: int = 0) -> Image.Image:
    im = photo(w, h, seed)
    d = ImageDraw.Draw(im)
    for i in range(5):
        d.rectangle((5 + i * 15, 8 + i * 9, 18 + i * 15, 22 + i * 9), fill=((seed * 40 + i * 50) % 256, 30 * i, 200 - 30 * i))
    return im


# -- 1. one picture under two labels ------------------------------------------------------------
def test_identical_originals_under_two_classes_are_both_set_aside(ws: Path):
    orig = ws / "data" / "original"
    data = encode(sharp(96, 72, 1), "JPEG", quality=90)
    write(orig / "cat" / "x.jpg", data)
    write(orig / "dog" / "x-again.jpg", data)
    write(orig / "dog" / "x-copy.jpg", data)     # a second copy in one of the classes
    write(orig / "cat" / "other.jpg", encode(sharp(96, 72, 2), "JPEG", quality=90))
    write(orig / "dog" / "other.jpg", encode(sharp(96, 72, 3), "JPEG", quality=90))
    w = Workspace.open(ws)
    result = clean(w)
    reasons = {d.path: d.reason for d in result.decisions}
    assert reasons == {"data/original/cat/x.jpg": "label-conflict", "data/original/dog/x-again.jpg": "label-conflict",
                       "data/original/dog/x-copy.jpg": "duplicate"}
    assert "filed under cat and dog" in next(d.detail for d in result.decisions if d.path.endswith("cat/x.jpg"))
    assert sorted(p.name for p in (orig / "cat").iterdir()) == ["other.jpg"]
    assert sorted(p.name for p in (orig / "dog").iterdir()) == ["other.jpg"]
    assert not result.conflicts_reported
    # a person brings back the right one; it stays from then on
    keep(w, [ws / "data" / "quarantine" / "label-conflict" / "original" / "cat" / "x.jpg"])
    assert (orig / "cat" / "x.jpg").exists()
    again = clean(w)
    assert again.decisions == [] and (orig / "cat" / "x.jpg").exists() and not (orig / "dog" / "x-again.jpg").exists()
