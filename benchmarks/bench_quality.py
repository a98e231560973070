"""Measure clean's quality metrics on real photographs and on spoiled copies of them.

    python benchmarks/bench_quality.py            # table of metric ranges + flag rates at the defaults

The photographs are scikit-image's bundled samples (skimage.data: real camera pictures, no
download). Each goes through the same decode clean uses (datacurate.core.imageio.inspect_bytes, as a
JPEG at quality 90, as clean would meet it) unspoiled, and in variants that a quality flag
should catch: darkened, washed out, blurred, and flat/placeholder-like pictures. A threshold is
good when it flags every spoiled variant and none of the good photographs (nor their harmless
variants: recompressed, halved, grayscale copies).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacurate.clean.quality import DEFAULT_THRESHOLDS, image_flags  # noqa: E402
from datacurate.core.imageio import inspect_bytes  # noqa: E402

PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "page", "text",
          "immunohistochemistry", "hubble_deep_field", "retina", "cat", "clock", "cell", "stereo_motorcycle",
          "grass", "gravel", "brick")


def photos() -> dict[str, Image.Image]:
    import skimage.data

    out = {}
    for name in PHOTOS:
        arr = getattr(skimage.data, name)()
        arr = arr[0] if isinstance(arr, tuple) else arr
        out[name] = Image.fromarray(arr).convert("RGB" if arr.ndim == 3 else "L")
    return out


def placeholder(size=(400, 300)) -> Image.Image:
    """An 'image not available' picture as hosts serve them: flat gray, an icon box, a line of text."""
    im = Image.new("RGB", size, (230, 230, 230))
    d = ImageDraw.Draw(im)
    d.rectangle((170, 90, 230, 150), outline=(160, 160, 160), width=3)
    d.text((130, 180), "image not available", fill=(140, 140, 140))
    return im


def spoiled(im: Image.Image, seed: int) -> dict[str, dict[str, Image.Image]]:
    rng = np.random.default_rng(seed)
    short = min(im.size)
    noise = rng.normal(0, 3, (im.height, im.width)).astype(np.float32)
    flat = np.clip(np.full((im.height, im.width), float(rng.integers(30, 220))) + noise, 0, 255).astype(np.uint8)
    return {
        "dark": {f"x{f}": ImageEnhance.Brightness(im).enhance(f) for f in (0.1, 0.2, 0.3)},
        "light": {f"wash{a}": Image.blend(im.convert("RGB"), Image.new("RGB", im.size, "white"), a) for a in (0.7, 0.8, 0.9)},
        "blurry": {f"sigma{p}%": im.filter(ImageFilter.GaussianBlur(short * p / 100)) for p in (2, 3, 5)},
        "low-information": {"solid": Image.new("RGB", im.size, tuple(int(v) for v in rng.integers(0, 256, 3))),
                            "near-solid": Image.fromarray(flat), "placeholder": placeholder(im.size)},
    }


def harmless(im: Image.Image) -> dict[str, Image.Image]:
    return {"as-is": im, "halved": im.resize((im.width // 2, im.height // 2), Image.LANCZOS),
            "brighter": ImageEnhance.Brightness(im).enhance(1.2), "darker": ImageEnhance.Brightness(im).enhance(0.8),
            "gray": im.convert("L"), "jpeg-q40": Image.open(io.BytesIO(jpeg(im, 40)))}


def jpeg(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def metrics(im: Image.Image) -> dict[str, float]:
    found = inspect_bytes(jpeg(im))
    assert found.ok, found.detail
    return found.quality


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    rows = []  # (group, want_flag, name, metrics)
    for n, (name, im) in enumerate(photos().items()):
        for variant, v in harmless(im).items():
            rows.append(("good", None, f"{name}/{variant}", metrics(v)))
        for flag, variants in spoiled(im, n).items():
            for variant, v in variants.items():
                rows.append((flag, flag, f"{name}/{variant}", metrics(v)))
    keys = ("bright", "shadow", "sharpness", "entropy", "colour")
    print(f"{len(rows)} pictures from {len(PHOTOS)} skimage photographs\n")
    print("metric ranges (min .. max) per group")
    print(f"{'group':16}" + "".join(f"{k:>18}" for k in keys))
    for group in ("good", "dark", "light", "blurry", "low-information"):
        sel = [m for g, _, _, m in rows if g == group]
        print(f"{group:16}" + "".join(f"{min(m[k] for m in sel):8.3f} ..{max(m[k] for m in sel):6.3f}" for k in keys))
    print(f"\ndefault thresholds: {DEFAULT_THRESHOLDS}")
    print(f"{'group':16}{'pictures':>9}{'flagged as wanted':>19}  other flags raised")
    for group in ("good", "dark", "light", "blurry", "low-information"):
        sel = [(name, want, m) for g, want, name, m in rows if g == group]
        hit = sum(1 for _, want, m in sel if want and want in image_flags(m, "RGB"))
        other: dict[str, int] = {}
        for name, want, m in sel:
            for f in image_flags(m, "RGB"):
                if f != want and f != "grayscale":
                    other[f] = other.get(f, 0) + 1
        print(f"{group:16}{len(sel):9}{(f'{hit}/{len(sel)}' if group != 'good' else '-'):>19}  {other or '-'}")
    colour = [(name, im) for name, im in photos().items() if im.mode == "RGB"]
    as_rgb = sum("grayscale" in image_flags(metrics(im), "RGB") for _, im in colour)
    gray_rgb = sum("grayscale" in image_flags(metrics(im.convert("L").convert("RGB")), "RGB") for _, im in colour)
    print(f"grayscale: {as_rgb}/{len(colour)} colour photographs flagged; "
          f"{gray_rgb}/{len(colour)} of their grayscale copies saved as RGB JPEGs flagged")
    bad = [(name, image_flags(m, "RGB")) for g, _, name, m in rows if g == "good"
           if set(image_flags(m, "RGB")) - {"grayscale"}]
    for name, flags in bad:
        print(f"  good picture flagged: {name} {flags}")


if __name__ == "__main__":
    main()
