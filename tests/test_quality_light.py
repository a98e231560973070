"""The `light` flag catches overexposed photos (blown out in the middle, the rest bright), not bright
well-exposed ones (a subject on a white background, lifted tones); older catalogs are measured again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from conftest import encode, photo, write
from datacurate.core.catalog import Catalog
from datacurate.clean.run import clean
from datacurate.core.workspace import Workspace


def scene(seed: int, w: int = 192, h: int = 144) -> Image.Image:
    """A photo-like picture at a normal exposure: smooth tones, grain, and a dark corner (8% of it)."""
    rng = np.random.default_rng(seed)
    a = 45 + np.asarray(photo(w, h, seed), np.float32) * 0.5 + rng.normal(0, 6, (h, w, 3))
    a[: h // 4, : w // 3] = 5
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def on_white(im: Image.Image) -> Image.Image:
    """The picture centred on a white canvas twice its area (a product shot)."""
    side = int(max(im.size) * 2 ** 0.5)
    canvas = Image.new("RGB", (side, side), "white")
    canvas.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
    return canvas


def lifted(im: Image.Image) -> Image.Image:
    """Gamma 0.5: brighter, nothing blown out."""
    return Image.fromarray((255 * (np.asarray(im, np.float32) / 255) ** 0.5).astype(np.uint8))


def jpeg(im: Image.Image) -> bytes:
    return encode(im, "JPEG", quality=90)


def test_overexposed_is_light_bright_but_well_exposed_is_not(ws: Path):
    scraped, orig = ws / "data" / "scraped" / "a", ws / "data" / "original" / "a"
    for seed in (0, 1, 3):
        write(scraped / f"over{seed}.jpg", jpeg(ImageEnhance.Brightness(scene(seed)).enhance(3.5)))
        write(orig / f"plain{seed}.jpg", jpeg(scene(seed)))
        write(orig / f"white-background{seed}.jpg", jpeg(on_white(scene(seed + 10))))
        write(orig / f"lifted{seed}.jpg", jpeg(lifted(scene(seed + 20))))
    plan = clean(Workspace.open(ws), dry_run=True)
    assert {p: f for p, f in plan.flags.items() if f} == {f"data/scraped/a/over{s}.jpg": ["light"] for s in (0, 1, 3)}
    details = {d.path: d.detail for d in plan.decisions if d.reason == "light"}
    assert sorted(details) == [f"data/scraped/a/over{s}.jpg" for s in (0, 1, 3)]
    assert all("overexposed" in text and "of the middle blown out" in text for text in details.values()), details
    # the threshold is an option like the others; 1.0 turns the check off
    assert not [d for d in clean(Workspace.open(ws), dry_run=True, blown_above=1.0).decisions if d.reason == "light"]


def test_a_catalog_measured_before_the_check_is_measured_again(ws: Path):
    write(ws / "data" / "scraped" / "a" / "over.jpg", jpeg(ImageEnhance.Brightness(scene(0)).enhance(3.5)))
    write(ws / "data" / "original" / "a" / "plain.jpg", jpeg(scene(1)))
    w = Workspace.open(ws)
    clean(w, dry_run=True)
    with sqlite3.connect(w.catalog_path) as db:  # as an older datacurate left it: no such columns
        db.execute("ALTER TABLE quality DROP COLUMN centre_clipped")
        db.execute("ALTER TABLE quality DROP COLUMN unclipped_mean")
    again = clean(w, dry_run=True)
    assert again.flags["data/scraped/a/over.jpg"] == ["light"] and again.flags["data/original/a/plain.jpg"] == []
    with Catalog(w.catalog_path) as cat:
        measured = cat.quality()
    assert len(measured) == 2 and all(m["centre_clipped"] is not None for m in measured.values())
