"""`datacurate vet` on a labeled set with planted off-topic and wrong-class images, in one run.

(a) Flags: precision and recall of `off-topic` and `wrong-class` (and of "set aside for either
    reason") against the planted truth, and the share of good scraped images flagged.
(b) Downstream: valid accuracy of one training recipe (datacurate train) on originals only,
    originals + all scraped, originals + the scraped images vet kept, and originals + only the good
    scraped images (the oracle: what a perfect vet would give). Recovery = (vetted - all) / (oracle - all).
(c) Embedding speed: images/s of vet's embedder (imageio draft decoding, uint8 batches, workers)
    against a plain torchvision ImageFolder + DataLoader + model loop, same model, images, batch, workers.

The classes are real photographs (skimage.data: astronaut, chelsea, coffee, rocket, motorcycle,
hubble, immunohistochemistry, retina), each image a random crop of its class's photograph; the
off-topic pool is other skimage pictures (text, page, coins, moon, bricks, ...) and generated ones
(noise, size charts, banners). Without ImageNet weights (`--weights PATH` takes torchvision's file,
e.g. resnet50-11ad3fa6.pth), vet judges with a run trained here on the originals (`--run` path).

    python benchmarks/bench_vet.py [--weights PATH --backbone resnet50] [--epochs 10] [--speed-images 256]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = {"astronaut": "astronaut", "chelsea": "chelsea", "coffee": "coffee", "rocket": "rocket",
           "motorcycle": "stereo_motorcycle", "hubble": "hubble_deep_field", "ihc": "immunohistochemistry",
           "retina": "retina"}
OFF_TOPIC = ("text", "page", "coins", "moon", "brick", "gravel", "grass", "clock", "checkerboard", "camera", "horse",
             "colorwheel", "cell", "shepp_logan_phantom")


def photo(name: str) -> Image.Image:
    import skimage.data

    arr = getattr(skimage.data, name)()
    arr = arr[0] if isinstance(arr, tuple) else arr
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float64)
        arr = (255 * (arr - arr.min()) / max(float(arr.max() - arr.min()), 1e-9)).astype(np.uint8)
    return Image.fromarray(arr).convert("RGB")


def crop(im: Image.Image, rng: random.Random, long_side: int) -> Image.Image:
    """A random crop (30-80% of the area), flipped half the time, jittered in brightness, resized."""
    w, h = im.size
    area = rng.uniform(0.3, 0.8) * w * h
    ratio = rng.uniform(0.75, 1.33)
    cw, ch = min(w, int((area * ratio) ** 0.5)), min(h, int((area / ratio) ** 0.5))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    out = im.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    out = Image.eval(out, lambda v, f=rng.uniform(0.85, 1.15): min(255, int(v * f)))
    scale = long_side / max(out.size)
    return out.resize((max(1, int(out.width * scale)), max(1, int(out.height * scale))), Image.BICUBIC)


def generated(rng: random.Random, long_side: int) -> Image.Image:
    """Off-topic pictures no photo search should return: noise, a size chart, a sale banner."""
    size = (long_side, long_side * 3 // 4)
    kind = rng.randrange(3)
    if kind == 0:
        g = np.random.default_rng(rng.randrange(1 << 30))
        return Image.fromarray(g.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)).resize(size)
    im = Image.new("RGB", size, (250, 250, 250) if kind == 1 else tuple(rng.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(im)
    for n in range(12):
        if kind == 1:
            d.line((0, n * size[1] // 12, size[0], n * size[1] // 12), fill=(0, 0, 0), width=2)
            d.text((10, n * size[1] // 12 + 4), f"{rng.randint(30, 120)}   {rng.randint(30, 120)}", fill=(0, 0, 0))
        else:
            d.text((20, 20 + n * 30), f"SALE -{rng.randint(10, 70)}% FREE SHIPPING", fill=(255, 255, 255))
    return im


def make_dataset(root: Path, n_orig: int, n_good: int, n_wrong: int, n_off: int, n_valid: int, long_side: int,
                 seed: int) -> dict[str, str]:
    """Workspace data/original, data/scraped (with planted images) and a clean valid set; returns {path: truth}."""
    rng = random.Random(seed)
    photos = {k: photo(v) for k, v in CLASSES.items()}
    off_photos = [photo(n) for n in OFF_TOPIC]
    truth: dict[str, str] = {}
    names = list(CLASSES)

    def save(im: Image.Image, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(path, "JPEG", quality=88)

    for i, klass in enumerate(names):
        for n in range(n_orig):
            save(crop(photos[klass], rng, long_side), root / "data" / "original" / klass / f"o{n:03d}.jpg")
        for n in range(n_valid):
            save(crop(photos[klass], rng, long_side), root / "valid" / klass / f"v{n:03d}.jpg")
        scraped = root / "data" / "scraped" / klass
        for n in range(n_good):
            save(crop(photos[klass], rng, long_side), scraped / f"good{n:03d}.jpg")
            truth[f"data/scraped/{klass}/good{n:03d}.jpg"] = "good"
        for n in range(n_wrong):
            other = names[(i + 1 + n % (len(names) - 1)) % len(names)]
            save(crop(photos[other], rng, long_side), scraped / f"wrong{n:03d}.jpg")
            truth[f"data/scraped/{klass}/wrong{n:03d}.jpg"] = "wrong-class"
        for n in range(n_off):
            im = generated(rng, long_side) if n % 3 == 2 else crop(rng.choice(off_photos), rng, long_side)
            save(im, scraped / f"off{n:03d}.jpg")
            truth[f"data/scraped/{klass}/off{n:03d}.jpg"] = "off-topic"
    return truth


def flag_figures(truth: dict[str, str], flags: dict[str, str]) -> dict:
    """Precision/recall per flag and for either flag, share of good images flagged."""
    out = {}
    for reason in ("off-topic", "wrong-class"):
        planted = {p for p, t in truth.items() if t == reason}
        flagged = {p for p, r in flags.items() if r == reason}
        hit = len(planted & flagged)
        out[reason] = {"planted": len(planted), "flagged": len(flagged), "precision": hit / max(1, len(flagged)),
                       "recall": hit / max(1, len(planted)),
                       "set_aside_any_reason": len(planted & set(flags)) / max(1, len(planted))}
    bad = {p for p, t in truth.items() if t != "good"}
    good = {p for p, t in truth.items() if t == "good"}
    out["either"] = {"precision": len(bad & set(flags)) / max(1, len(flags)), "recall": len(bad & set(flags)) / max(1, len(bad))}
    out["good_flagged"] = len(good & set(flags)) / max(1, len(good))
    return out


def train_variant(ws_root: Path, name: str, scraped: list[str], recipe: dict, quiet: bool) -> float:
    """Valid accuracy of the recipe trained on originals + `scraped` (workspace-relative paths)."""
    from datacurate.core.fsutil import link_or_copy
    from datacurate.train.run import train
    from datacurate.core.workspace import Workspace

    split = ws_root / "variants" / name
    shutil.rmtree(split, ignore_errors=True)
    files = [p.relative_to(ws_root).as_posix() for p in sorted((ws_root / "data" / "original").rglob("*.jpg"))]
    for rel in files + scraped:
        klass = rel.split("/")[2]
        dst = split / "train" / klass / rel.replace("/", "_")
        dst.parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(ws_root / rel, dst)
    shutil.copytree(ws_root / "valid", split / "valid")
    ws = Workspace(ws_root, {"paths": {"split": str(split)}, "train": {**recipe, "name": f"bench-{name}"}})
    res = train(ws, {}, quiet=quiet)
    return float(res.best["valid_acc"])


def speed_images(folder: Path, count: int, long_side: int, seed: int) -> list[Path]:
    """`count` JPEGs of web-photo size: random crops of the class photographs, scaled to `long_side`."""
    rng = random.Random(seed)
    photos = [photo(v) for v in CLASSES.values()]
    out = []
    for i in range(count):
        path = folder / "all" / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        crop(photos[i % len(photos)], rng, long_side).save(path, "JPEG", quality=90)
        out.append(path)
    return out


def embed_speed(paths: list[Path], arch: str, batch: int, workers: int, rounds: int = 3) -> dict:
    """Images/s of vet's embedder and of the plain torchvision loop on the same files and model (best of `rounds`,
    alternating, so a change in machine load hits both)."""
    import torch
    import torchvision
    from torch.utils.data import DataLoader
    from torchvision import transforms as T

    from datacurate.vet.embed import embed_files, load_backbone
    from datacurate.vet.options import VetOptions
    from datacurate.core.workspace import Workspace

    opts = VetOptions(backbone=arch, weights="none", batch_size=batch, workers=workers, device="auto")
    bb = load_backbone(Workspace(Path.cwd()), opts)
    tf = T.Compose([T.Resize(bb.pre.resize), T.CenterCrop(bb.pre.crop), T.ToTensor(), T.Normalize(bb.pre.mean, bb.pre.std)])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dataset = torchvision.datasets.ImageFolder(paths[0].parent.parent, tf)

    def plain() -> list:
        model = bb.model.to(device).eval()
        loader = DataLoader(dataset, batch_size=batch, num_workers=workers, pin_memory=device.type == "cuda")
        with torch.inference_mode():
            return [model(x.to(device, non_blocking=True)).float().cpu() for x, _ in loader]

    from datacurate.vision.data import ImageSet, collate

    ours_loader = DataLoader(ImageSet([(str(p), 0) for p in paths], bb.pre), batch_size=batch, num_workers=workers,
                             collate_fn=collate)
    plain_loader = DataLoader(dataset, batch_size=batch, num_workers=workers)
    decode = {"ours": min(_timed(lambda: list(ours_loader)) for _ in range(rounds)),
              "plain": min(_timed(lambda: list(plain_loader)) for _ in range(rounds))}
    times: dict[str, list[float]] = {"ours": [], "plain": []}
    for _ in range(rounds):
        t0 = time.perf_counter()
        ours, _ = embed_files(bb, paths, opts)
        times["ours"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        base = plain()
        times["plain"].append(time.perf_counter() - t0)
    a, b = np.stack(ours), torch.cat(base).numpy()
    cos = float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)))
    t_ours, t_plain = min(times["ours"]), min(times["plain"])
    return {"images": len(paths), "ours_images_s": len(paths) / t_ours, "plain_images_s": len(paths) / t_plain,
            "speedup": t_plain / t_ours, "mean_cosine_ours_vs_plain": cos, "device": device.type,
            "decode_ours_images_s": len(paths) / decode["ours"], "decode_plain_images_s": len(paths) / decode["plain"],
            "decode_speedup": decode["plain"] / decode["ours"], "rounds": times}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", help="a torchvision ImageNet weights file for --backbone (default: a run trained here)")
    ap.add_argument("--backbone", default="resnet50")
    ap.add_argument("--originals", type=int, default=12)
    ap.add_argument("--good", type=int, default=28)
    ap.add_argument("--wrong", type=int, default=6)
    ap.add_argument("--off", type=int, default=6)
    ap.add_argument("--valid", type=int, default=12)
    ap.add_argument("--long-side", type=int, default=480)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--img-size", type=int, default=64, help="training recipe's image size")
    ap.add_argument("--speed-images", type=int, default=256)
    ap.add_argument("--speed-arch", default="resnet18")
    ap.add_argument("--speed-long-side", type=int, default=1024, help="long side of the speed test's JPEGs")
    ap.add_argument("--speed-only", action="store_true", help="only (c)")
    ap.add_argument("--flags-only", action="store_true", help="only (a), at offtopic_z 2.0, 2.25 (the default) and 3.0")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep the workspace")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    from datacurate.vet import VetOptions, vet
    from datacurate.core.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix="bench-vet-"))
    if args.speed_only:
        return report_speed(root, args)
    truth = make_dataset(root, args.originals, args.good, args.wrong, args.off, args.valid, args.long_side, args.seed)
    recipe = {"arch": "resnet18", "weights": "none", "freeze_until": "none", "img_size": args.img_size, "head_epochs": 1,
              "epochs": args.epochs, "milestones": [max(1, args.epochs * 3 // 4)], "gamma": [0.2], "batch_size": 32,
              "workers": args.workers, "brightness": 0.05, "seed": args.seed,
              "groups": [{"name": "body", "modules": ["*"], "optimizer": "adam", "lr": 0.001},
                         {"name": "head", "modules": ["head"], "optimizer": "adam", "lr": 0.001}]}
    ws = Workspace(root, {"train": recipe})
    print(f"workspace {root}: {len(CLASSES)} classes, {args.originals} originals, {args.good} good + {args.wrong} wrong-class"
          f" + {args.off} off-topic scraped and {args.valid} valid per class")

    t0 = time.perf_counter()
    if args.weights:
        opts = VetOptions(backbone=args.backbone, weights=args.weights, workers=args.workers)
    else:
        opts = VetOptions(run="trusted", train_first=True, workers=args.workers)
    if args.flags_only:  # the same run and embeddings judged at three thresholds
        for z in (2.0, 2.25, 3.0):
            result = vet(ws, options=opts.model_copy(update={"offtopic_z": z}), dry_run=True, quiet=not args.verbose)
            print(f"\n(a) offtopic_z={z}")
            report_flags(truth, result)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        return
    result = vet(ws, options=opts, dry_run=True, quiet=not args.verbose)
    vet_s = time.perf_counter() - t0
    print(f"\n(a) flags, {result.model} ({vet_s:.0f} s including any training and embedding)")
    flags, figures = report_flags(truth, result)

    scraped = sorted(truth)
    variants = {"originals only": [], "originals + all scraped": scraped,
                "originals + vetted scraped": [p for p in scraped if p not in flags],
                "originals + good scraped (oracle)": [p for p in scraped if truth[p] == "good"]}
    acc = {}
    print(f"\n(b) valid accuracy, resnet18 from scratch at {args.img_size} px, {args.epochs + 1} epochs")
    for n, (name, files) in enumerate(variants.items()):
        acc[name] = train_variant(root, f"v{n}", files, recipe, not args.verbose)
        print(f"  {name:<34} {len(files):4d} scraped  valid acc {acc[name]:.3f}")
    cost = acc["originals + good scraped (oracle)"] - acc["originals + all scraped"]
    recovered = (acc["originals + vetted scraped"] - acc["originals + all scraped"]) / cost if cost > 0 else float("nan")
    print(f"  noise cost {cost:+.3f}; vetting recovered {recovered:.0%} of it" if cost > 0 else
          "  the unvetted noise cost no accuracy here: recovery is undefined")

    speed = report_speed(root, args)
    print(json.dumps({"flags": figures, "accuracy": acc, "recovered": recovered, "speed": speed}, default=float))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


def report_flags(truth: dict[str, str], result) -> tuple[dict[str, str], dict]:
    """Print (a) for one vet result; its scraped flags and their figures."""
    flags = {f.path: f.reason for f in result.flags if f.source == "scraped"}
    figures = flag_figures(truth, flags)
    for reason in ("off-topic", "wrong-class"):
        f = figures[reason]
        print(f"  {reason:<11} planted {f['planted']:3d}  flagged {f['flagged']:3d}  precision {f['precision']:.3f}  "
              f"recall {f['recall']:.3f}  set aside for either reason {f['set_aside_any_reason']:.3f}")
    print(f"  either flag: precision {figures['either']['precision']:.3f}  recall {figures['either']['recall']:.3f};"
          f" good scraped images flagged {figures['good_flagged']:.3f}")
    return flags, figures


def report_speed(root: Path, args) -> dict:
    paths = speed_images(root / "speed", args.speed_images, args.speed_long_side, args.seed)
    speed = embed_speed(paths, args.speed_arch, 32, args.workers)
    print(f"\n(c) embedding {speed['images']} JPEGs ({args.speed_long_side} px long side), {args.speed_arch} at 224 px, "
          f"batch 32, {args.workers} workers, {speed['device']}, best of 3 alternating: vet {speed['ours_images_s']:.1f} "
          f"images/s, plain torchvision loop {speed['plain_images_s']:.1f} images/s: {speed['speedup']:.2f}x (mean cosine "
          f"between the two: {speed['mean_cosine_ours_vs_plain']:.4f})\n    loading alone (decode, resize, crop, batch): "
          f"vet {speed['decode_ours_images_s']:.1f} images/s, torchvision ImageFolder {speed['decode_plain_images_s']:.1f} "
          f"images/s: {speed['decode_speedup']:.2f}x")
    if args.speed_only:
        shutil.rmtree(root, ignore_errors=True)
    return speed


if __name__ == "__main__":
    main()
