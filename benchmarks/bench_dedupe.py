"""Near-duplicate detection: accuracy per transformation, and search speed against imagededup.

    python benchmarks/bench_dedupe.py accuracy            # precision/recall per transformation
    python benchmarks/bench_dedupe.py speed               # 10k / 100k / 1M hashes + imagededup at 20k
    python benchmarks/bench_dedupe.py all --sizes 10000,100000

(a) accuracy: real photographs (the sample images that scikit-image and scikit-learn ship, plus
their four quadrants as extra, harder negatives: same camera, same texture, different picture)
turned into variants; every image is hashed by datacurate.core.imageio.inspect_bytes, the same decode
clean uses (EXIF applied, JPEG draft decode). For each transformation T the images are the
originals plus their T variants; a positive pair is (original, its variant), a negative pair is
any two images of different pictures. Pair precision = TP / (TP + FP), recall = TP / positives,
at each threshold K (distance <= K).

(b) speed: synthetic 64-bit hashes with the skew of real perceptual hashes (correlated bits from
a low-rank latent model, per-bit bias, phash's DC bit always set, 15% near copies, 2% placeholder
images sharing 20 codes), tuned so that two unrelated hashes fall within 10 bits at about the
rate measured on the photographs of part (a) (~3e-5; uniform random codes: ~1e-8). datacurate.clean.search.pairs_within at each size; then imagededup's
PHash.find_duplicates(encoding_map=..., max_distance_threshold=K) on the same 20k hashes, the
pair sets compared for equal recall, and the ratio printed. imagededup's BK-tree search is much
slower than its Cython brute force here (minutes at 2,000 hashes), so it is left out by default
(--imagededup-methods brute_force_cython,bktree --compare 2000 to see it). Needs the `bench`
extra (scikit-image, scikit-learn, imagededup).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacurate.clean.search import codes_from_hex, pairs_within  # noqa: E402
from datacurate.core.imageio import HASH_KINDS, Limits, inspect_bytes  # noqa: E402

PHOTOS = ["astronaut", "brick", "camera", "chelsea", "cell", "clock", "coffee", "coins", "grass", "gravel",
          "hubble_deep_field", "immunohistochemistry", "microaneurysms", "moon", "page", "retina", "rocket",
          "stereo_motorcycle", "text"]
LIMITS = Limits(min_size=8)  # measure hashing, not the integrity check (x0.25 of a 102 px photo)
THRESHOLDS = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]


# -- (a) accuracy ---------------------------------------------------------------------------------
def load_photos(quadrants: bool = True) -> dict[str, Image.Image]:
    """Real photographs bundled with scikit-image and scikit-learn (no download)."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = {}
    for name in PHOTOS:
        arr = getattr(skimage.data, name)()
        arr = arr[0] if isinstance(arr, tuple) else arr
        photos[name] = Image.fromarray(arr).convert("RGB")
    for name, arr in zip(("china", "flower"), load_sample_images().images):
        photos[name] = Image.fromarray(arr)
    if quadrants:
        for name, im in list(photos.items()):
            w, h = im.size
            if min(w, h) >= 300:
                for q, (x, y) in enumerate(((0, 0), (w // 2, 0), (0, h // 2), (w // 2, h // 2))):
                    photos[f"{name}-q{q}"] = im.crop((x, y, x + w // 2, y + h // 2))
    return photos


def jpeg(im: Image.Image, quality: int = 92, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def resize(im: Image.Image, f: float) -> Image.Image:
    return im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.LANCZOS)


def crop(im: Image.Image, frac: float, centred: bool = False) -> Image.Image:
    """Cut `frac` of each side length: from the right and bottom, or half from each side."""
    w, h = im.size
    dx, dy = round(w * frac), round(h * frac)
    if centred:
        return im.crop((dx // 2, dy // 2, w - (dx - dx // 2), h - (dy - dy // 2)))
    return im.crop((0, 0, w - dx, h - dy))


def watermark(im: Image.Image, kind: str) -> Image.Image:
    """A small mark in the corner: semi-transparent text, or a logo box of ~8% x 6% of the frame."""
    im = im.convert("RGBA")
    over = Image.new("RGBA", im.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(over)
    w, h = im.size
    if kind == "text":
        size = max(10, h // 25)
        draw.text((w - size * 8, h - size * 2), "© stockphoto", fill=(255, 255, 255, 170), font_size=size)
    else:
        draw.rectangle([w - w // 12 - 4, h - h // 16 - 4, w - 4, h - 4], fill=(255, 255, 255, 150))
    return Image.alpha_composite(im, over).convert("RGB")


def exif_rotated(im: Image.Image, orientation: int) -> bytes:
    """Pixels stored turned, with the EXIF orientation tag that shows them upright again."""
    stored = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return jpeg(im.transpose(stored), exif=exif)


TRANSFORMS = {
    "resize": {"x0.75": lambda im: png(resize(im, 0.75)), "x0.5": lambda im: jpeg(resize(im, 0.5)),
               "x0.25": lambda im: jpeg(resize(im, 0.25)), "x1.5": lambda im: jpeg(resize(im, 1.5))},
    "jpeg": {f"q{q}": (lambda q: lambda im: jpeg(im, q))(q) for q in (75, 50, 30, 15)},
    "crop": {"2%": lambda im: jpeg(crop(im, 0.02)), "5%": lambda im: jpeg(crop(im, 0.05)),
             "10%": lambda im: jpeg(crop(im, 0.10)), "10% centred": lambda im: jpeg(crop(im, 0.10, True))},
    "brightness": {f"x{f}": (lambda f: lambda im: jpeg(ImageEnhance.Brightness(im).enhance(f)))(f)
                   for f in (0.7, 0.85, 1.15, 1.3)},
    "watermark": {"text": lambda im: jpeg(watermark(im, "text")), "logo": lambda im: jpeg(watermark(im, "logo"))},
    "exif-rotation": {f"orientation {o}": (lambda o: lambda im: exif_rotated(im, o))(o) for o in (3, 6, 8)},
    "scraped-combo": {"x0.5 q70 crop3%": lambda im: jpeg(resize(crop(im, 0.03), 0.5), 70)},
}


def hash_all(photos: dict[str, Image.Image]):
    """Rows (photo, transform, variant, {kind: hex}) for originals and every variant."""
    rows = []
    for name, im in photos.items():
        rows.append((name, "original", "", inspect_bytes(png(im), LIMITS, hash_kinds=HASH_KINDS).hashes))
        for t, variants in TRANSFORMS.items():
            for v, make in variants.items():
                found = inspect_bytes(make(im), LIMITS, hash_kinds=HASH_KINDS)
                assert found.ok, (name, t, v, found.reason, found.detail)
                rows.append((name, t, v, found.hashes))
    return rows


def evaluate(rows, kind: str):
    """{transform: {K: (tp, fp, positives)}} for one hash kind; 'all' covers every transform."""
    codes = codes_from_hex([r[3][kind] for r in rows])
    dist = np.bitwise_count(codes[:, None, :] ^ codes[None, :, :]).sum(-1)
    photo = np.array([r[0] for r in rows])
    transform = np.array([r[1] for r in rows])
    same = photo[:, None] == photo[None, :]
    upper = np.triu(np.ones(len(rows), bool), 1)
    out = {}
    for t in list(TRANSFORMS) + ["all"]:
        inset = (transform == "original") | (transform == t) if t != "all" else np.ones(len(rows), bool)
        pos_mask = same & upper & (((transform[:, None] == "original") & inset[None, :] & (transform[None, :] != "original"))
                                   | ((transform[None, :] == "original") & inset[:, None] & (transform[:, None] != "original")))
        neg_mask = ~same & upper & inset[:, None] & inset[None, :]
        out[t] = {k: (int((dist[pos_mask] <= k).sum()), int((dist[neg_mask] <= k).sum()), int(pos_mask.sum()), int(neg_mask.sum()))
                  for k in THRESHOLDS}
    return out, dist, rows


def per_variant_recall(rows, dist, k: int):
    """Recall of each single variant (e.g. jpeg q15) at K."""
    orig = {r[0]: i for i, r in enumerate(rows) if r[1] == "original"}
    hits = defaultdict(lambda: [0, 0])
    for i, r in enumerate(rows):
        if r[1] != "original":
            hits[(r[1], r[2])][0] += int(dist[orig[r[0]], i] <= k)
            hits[(r[1], r[2])][1] += 1
    return hits


def run_accuracy(args) -> None:
    t0 = time.perf_counter()
    photos = load_photos(not args.no_quadrants)
    rows = hash_all(photos)
    print(f"accuracy: {len(photos)} pictures ({sum('-q' not in p for p in photos)} photographs + quadrants), "
          f"{len(rows)} images hashed in {time.perf_counter() - t0:.1f}s through datacurate.core.imageio.inspect_bytes")
    for kind in HASH_KINDS:
        res, dist, _ = evaluate(rows, kind)
        if kind == "phash" or args.all_kinds:
            print(f"\n{kind}: pair precision / recall by transformation and threshold K (distance <= K)")
            print(f"{'K':>3} " + " ".join(f"{t:>17}" for t in res))
            for k in THRESHOLDS:
                cells = []
                for t in res:
                    tp, fp, pos, _ = res[t][k]
                    prec = tp / (tp + fp) if tp + fp else 1.0
                    cells.append(f"{prec:8.3f}/{tp / pos:7.3f}")
                print(f"{k:>3} " + " ".join(f"{c:>17}" for c in cells))
            print(f"    negatives (pairs of different pictures): {res['all'][0][3]}; false pairs at each K: "
                  + ", ".join(f"K={k}: {res['all'][k][1]}" for k in THRESHOLDS))
        else:
            k = args.k
            tp, fp, pos, neg = res["all"][k]
            print(f"{kind} at K={k}: precision {tp / max(tp + fp, 1):.3f}, recall {tp / pos:.3f} "
                  f"(false pairs {fp} of {neg} negatives)")
    _, dist, _ = evaluate(rows, "phash")
    print(f"\nphash recall per variant at K={args.k} (and K={args.k - 2}, K={args.k + 2}):")
    lo, mid, hi = (per_variant_recall(rows, dist, k) for k in (args.k - 2, args.k, args.k + 2))
    for key in mid:
        print(f"  {key[0]:>14} {key[1]:<18} {lo[key][0] / lo[key][1]:.3f}  {mid[key][0] / mid[key][1]:.3f}  {hi[key][0] / hi[key][1]:.3f}")


# -- (b) speed ------------------------------------------------------------------------------------
def skewed_hashes(n: int, seed: int = 0) -> list[str]:
    """64-bit codes with the skew of real perceptual hashes (see the module docstring)."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 12)).astype(np.float32)
    weights = rng.standard_normal((12, 64)).astype(np.float32)
    bias = rng.normal(0, 1.2, 64).astype(np.float32)
    bits = (latent @ weights + bias + rng.standard_normal((n, 64)).astype(np.float32) * 2.5) > 0
    bits[:, 0] = True  # phash's DC bit is (almost) always set
    copies = rng.random(n) < 0.15
    src = rng.integers(0, n, copies.sum())
    bits[copies] = bits[src] ^ (rng.random((copies.sum(), 64)) < 0.04)
    placeholders = rng.random(n) < 0.02
    bits[placeholders] = bits[rng.integers(0, 20, placeholders.sum())]
    packed = np.packbits(bits, axis=1)
    return [row.tobytes().hex() for row in packed]


def time_ours(hashes: list[str], k: int):
    t0 = time.perf_counter()
    codes = codes_from_hex(hashes)
    i, j, d = pairs_within(codes, k)
    return time.perf_counter() - t0, i, j


def run_speed(args) -> None:
    k = args.k
    print(f"speed: all pairs within K={k} among skewed synthetic 64-bit hashes "
          f"(datacurate.clean.search.pairs_within: faiss IndexBinaryFlat range search, 2 cores)")
    print(f"{'hashes':>9} {'distinct':>9} {'pairs':>12} {'seconds':>9}")
    for n in args.sizes:
        hashes = skewed_hashes(n, seed=1)
        distinct = len(set(hashes))
        seconds, i, _ = time_ours(hashes, k)
        print(f"{n:>9} {distinct:>9} {len(i):>12} {seconds:>9.2f}", flush=True)
    n = args.compare
    hashes = skewed_hashes(n, seed=2)
    ours, i, j = time_ours(hashes, k)
    mine = set(zip(i.tolist(), j.tolist()))
    print(f"\nside by side on the same {n} hashes, K={k}:")
    print(f"  datacurate pairs_within     {ours:8.2f}s  {len(mine)} pairs")
    t0 = time.perf_counter()
    ni, nj, _ = pairs_within(codes_from_hex(hashes), k, backend="numpy")
    numpy_s = time.perf_counter() - t0
    assert set(zip(ni.tolist(), nj.tolist())) == mine
    print(f"  datacurate numpy backend    {numpy_s:8.2f}s  same pairs  ({numpy_s / ours:.1f}x slower than faiss)")
    try:
        from imagededup.methods import PHash
    except ImportError:
        print("  imagededup is not installed (pip install -e .[bench]); no comparison")
        return
    for method in args.imagededup_methods:
        encoding_map = {str(x): h for x, h in enumerate(hashes)}
        t0 = time.perf_counter()
        res = PHash(verbose=False).find_duplicates(encoding_map=encoding_map, max_distance_threshold=k,
                                                   search_method=method, num_dist_workers=2)
        theirs_s = time.perf_counter() - t0
        theirs = {(min(int(a), int(b)), max(int(a), int(b))) for a, dups in res.items() for b in dups}
        same = "same pairs (equal recall)" if theirs == mine else f"DIFFERENT: {len(theirs ^ mine)} pairs differ"
        print(f"  imagededup {method:<17}{theirs_s:8.2f}s  {len(theirs)} pairs, {same};  datacurate is {theirs_s / ours:.0f}x faster")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["accuracy", "speed", "all"], nargs="?", default="all")
    ap.add_argument("-k", type=int, default=10, help="threshold for speed and per-variant tables (default 10)")
    ap.add_argument("--sizes", default="10000,100000,1000000", help="hash counts for the speed table")
    ap.add_argument("--compare", type=int, default=20000, help="hashes for the imagededup comparison")
    ap.add_argument("--imagededup-methods", default="brute_force_cython", help="comma-separated search_method values")
    ap.add_argument("--no-quadrants", action="store_true", help="photographs only, no quadrant negatives")
    ap.add_argument("--all-kinds", action="store_true", help="full tables for dhash, whash, ahash too")
    args = ap.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.imagededup_methods = [m for m in args.imagededup_methods.split(",") if m]
    if args.part in ("accuracy", "all"):
        run_accuracy(args)
    if args.part in ("speed", "all"):
        run_speed(args)


if __name__ == "__main__":
    main()
