"""Generated picture classes a small model can tell apart, with planted problems for clean."""

from __future__ import annotations

import colorsys
import io
import math
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from datacurate.core.fsutil import atomic_write_bytes

CLASSES = ("circle", "square", "triangle", "条纹_stripes")


def background(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """Smooth, muted random colour fields (a coarse random grid, upsampled): distinct per picture."""
    grid = np.random.default_rng(rng.randrange(1 << 30)).integers(0, 256, (4, 5, 3))
    grey = grid.mean(axis=2, keepdims=True)
    muted = (0.3 * grid + 0.7 * grey).astype(np.uint8)  # low saturation: the shape's colour stands out
    return Image.fromarray(muted).resize(size, Image.BICUBIC)


def draw(klass: str, rng: random.Random, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """One picture of `klass`: a shape of random colour, place and size on a random background."""
    w, h = size
    im = background(rng, size)
    d = ImageDraw.Draw(im)
    colour = _class_colour(klass, rng)
    r = max(3, rng.randint(min(w, h) // 5, max(min(w, h) // 3, min(w, h) // 5 + 1)))
    cx, cy = rng.randint(r, max(r, w - r)), rng.randint(r, max(r, h - r))
    if klass.startswith("circle"):
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour, outline=(0, 0, 0), width=2)
    elif klass.startswith("square"):
        d.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour, outline=(0, 0, 0), width=2)
    elif klass.startswith("triangle"):
        a = rng.random() * math.tau
        pts = [(cx + r * math.cos(a + k * math.tau / 3), cy + r * math.sin(a + k * math.tau / 3)) for k in range(3)]
        d.polygon(pts, fill=colour, outline=(0, 0, 0))
    else:  # stripes in a box
        step = rng.randint(3, 6)
        for x in range(cx - r, cx + r, step * 2):
            d.rectangle((x, cy - r, x + step, cy + r), fill=colour)
    return im


def _class_colour(klass: str, rng: random.Random) -> tuple[int, int, int]:
    """Each class leans to its own hue (jittered), so even a small CNN trained from scratch separates them."""
    base = CLASSES.index(klass) / len(CLASSES) if klass in CLASSES else (sum(klass.encode("utf-8")) * 0.61803) % 1.0
    hue = (base + rng.uniform(-0.06, 0.06)) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def jpeg(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def make_demo_data(root: str | Path, per_class: int = 24, seed: int = 0, test_per_class: int = 3) -> dict[str, int]:
    """Write data/original/<class>/ (and data/test/) with planted problems; return counts planted."""
    root = Path(root)
    rng = random.Random(seed)
    original, test = root / "data" / "original", root / "data" / "test"
    for klass in CLASSES:
        for i in range(per_class):
            atomic_write_bytes(original / klass / f"{klass.split('_')[0]}_{i:03d}.jpg", jpeg(draw(klass, rng)))
        for i in range(test_per_class):
            atomic_write_bytes(test / klass / f"test_{i:03d}.jpg", jpeg(draw(klass, rng)))
    return _plant_problems(original, test, rng)


def _plant_problems(original: Path, test: Path, rng: random.Random) -> dict[str, int]:
    c0, c1, c2, c3 = (original / k for k in CLASSES)
    first = sorted(c0.glob("*.jpg"))[0].read_bytes()
    planted = {
        c0 / "broken_truncated.jpg": first[: len(first) // 2],
        c1 / "error_page.jpg": b"<!doctype html><html><body>403 Forbidden</body></html>",
        c1 / "empty.jpg": b"",
        c2 / "png_named.jpg": encode(draw("triangle", rng), "PNG"),
        c2 / "no_extension": jpeg(draw("triangle", rng)),
        c3 / "animated.gif": encode(draw(CLASSES[3], rng), "GIF"),
        c0 / "tiny.jpg": jpeg(draw("circle", rng, (16, 16))),
        c3 / "banner.jpg": jpeg(draw(CLASSES[3], rng, (480, 40))),
        c0 / "copy_of_circle_000.jpg": first,
        c2 / "circle_filed_as_triangle.jpg": sorted(c0.glob("circle_00[1].jpg"))[0].read_bytes(),
    }
    near = Image.open(sorted(c1.glob("square_*.jpg"))[2]).resize((150, 112))
    planted[c1 / "square_resized_copy.jpg"] = jpeg(near, 70)
    planted[c3 / "leaked_test_image.jpg"] = sorted((test / CLASSES[3]).glob("*.jpg"))[0].read_bytes()
    for path, data in planted.items():
        atomic_write_bytes(path, data)
    return {"problems": len(planted)}
