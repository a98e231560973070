"""The `light` flag on real photographs: overexposed copies flagged, bright but well-exposed ones not.

    python benchmarks/bench_light.py --data ../shared/realdata [--per-folder 100]

Takes the photos under DATA (every image file below it, e.g. realdata's cats/, dogs/, cat-breeds/;
`--per-folder` from each top folder, in name order) and makes of each, as JPEGs at quality 90 read
through clean's own decode (datacurate.core.imageio.inspect_bytes):

- to flag: brightened x2.5 and x3.5 (ImageEnhance.Brightness: highlights blown out, the rest lifted),
  and washed out (blended 80% with white);
- not to flag: the photo as it is, x1.2, gamma 0.6 (bright, nothing blown), high-key (tones lifted into
  0.45-0.98, nothing blown) and on a white product background (the photo over 50% and over 25% of a
  white square canvas: most pixels at 255 but the subject keeps its tones).

Prints per variant how many the old rule (darkest 5% over light_above) and the current one (that, or
the middle blown out with a bright rest) flag, and the luminance figures of each variant.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacurate.clean.quality import DEFAULT_THRESHOLDS, image_flags  # noqa: E402
from datacurate.core.imageio import inspect_bytes  # noqa: E402

TO_FLAG = ("x2.5", "x3.5", "washed")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def photos(data: Path, per_folder: int) -> list[Path]:
    tops = sorted(p for p in data.iterdir() if p.is_dir()) or [data]
    out = []
    for top in tops:
        found = sorted(p for p in top.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        out += found[:per_folder]
    return out


def on_white(im: Image.Image, share: float) -> Image.Image:
    """The photo centred on a white square canvas, covering about `share` of it."""
    side = int(max(im.size) / share ** 0.5)
    canvas = Image.new("RGB", (side, side), "white")
    canvas.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
    return canvas


def tone(im: Image.Image, fn) -> Image.Image:
    a = np.asarray(im, dtype=np.float32) / 255
    return Image.fromarray((255 * np.clip(fn(a), 0, 1)).astype(np.uint8))


VARIANTS = {
    "as-is": lambda im: im,
    "x1.2": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "gamma0.6": lambda im: tone(im, lambda a: a ** 0.6),
    "high-key": lambda im: tone(im, lambda a: 0.45 + 0.53 * a),
    "white-bg-50%": lambda im: on_white(im, 0.5),
    "white-bg-25%": lambda im: on_white(im, 0.25),
    "x2.5": lambda im: ImageEnhance.Brightness(im).enhance(2.5),
    "x3.5": lambda im: ImageEnhance.Brightness(im).enhance(3.5),
    "washed": lambda im: Image.blend(im, Image.new("RGB", im.size, "white"), 0.8),
}


def measure(im: Image.Image) -> dict[str, float]:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    found = inspect_bytes(buf.getvalue())
    assert found.ok, found.detail
    q = dict(found.quality)
    lum = np.asarray(im.convert("L"), dtype=np.float32)
    q["mean"], q["blown"] = float(lum.mean()) / 255, float((lum >= 250).mean())
    return q


def old_rule(m: dict) -> bool:
    return m["shadow"] > DEFAULT_THRESHOLDS["light_above"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="a folder of real photographs (e.g. ../shared/realdata)")
    ap.add_argument("--per-folder", type=int, default=100, help="photos from each top folder of DATA")
    ap.add_argument("--blown-above", type=float, default=DEFAULT_THRESHOLDS["blown_above"], help="the threshold to try")
    args = ap.parse_args()
    t = {**DEFAULT_THRESHOLDS, "blown_above": args.blown_above}
    files = photos(args.data, args.per_folder)
    if not files:
        sys.exit(f"no images under {args.data}")
    rows: dict[str, list[dict]] = {k: [] for k in VARIANTS}
    for f in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
            for name, make in VARIANTS.items():
                rows[name].append(measure(make(im)))
    print(f"{len(files)} photos from {args.data} ({args.per_folder} per top folder); thresholds: light_above "
          f"{t['light_above']:g}, blown_above {t['blown_above']:g}\n")
    print("| variant | want | old rule | current | mean luminance (5-95%) | pixels >= 250 (5-95%) | middle blown (5-95%) |")
    print("|---|---|---|---|---|---|---|")
    for name, ms in rows.items():
        old = sum(map(old_rule, ms))
        new = sum("light" in image_flags(m, "RGB", t) for m in ms)

        def span(key: str) -> str:
            v = [m[key] for m in ms]
            return f"{np.percentile(v, 5):.2f}-{np.percentile(v, 95):.2f}"

        want = "flag" if name in TO_FLAG else "keep"
        print(f"| {name} | {want} | {old}/{len(ms)} | {new}/{len(ms)} | {span('mean')} | {span('blown')} | "
              f"{span('centre_clipped')} |")
    like = [m for m in rows["x3.5"] if m["mean"] >= 220 / 255 and m["blown"] >= 0.6]
    print(f"\nx3.5 copies like the issue's (mean luminance >= 220, >= 60% of pixels at 250+): current rule flags "
          f"{sum('light' in image_flags(m, 'RGB', t) for m in like)}/{len(like)}, old rule {sum(map(old_rule, like))}/{len(like)}")


if __name__ == "__main__":
    main()
