"""Real photographs for vet's benchmarks: tasks, web-like noise, and vet's own embeddings of them.

A data folder laid out like ../shared/realdata (cats/, dogs/, cat-breeds/<breed>/) gives two tasks:
`pets` (cats vs dogs, coarse) and `breeds` (five cat breeds, fine-grained, noisy shelter labels).
Off-topic pictures come from several sources: scikit-image's and scikit-learn's sample photographs
(crops of them), charts, banners and drawings made here, and, for the breeds task, real dog photos.
Nothing here is used by the tests; benchmarks import it with `--data DIR --weights PATH`.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SKIMAGE_PHOTOS = ("astronaut", "camera", "coffee", "coins", "rocket", "moon", "hubble_deep_field",
                  "immunohistochemistry", "page", "text", "horse", "brick", "grass", "gravel", "clock", "logo",
                  "colorwheel", "retina", "microaneurysms", "cell", "stereo_motorcycle")
EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclass
class Task:
    """Classes with their photographs, and the off-topic pool for this task."""

    name: str
    classes: dict[str, list[Path]]
    offtopic: list[Path]


@dataclass
class Draw:
    """One seeded draw of a task: originals, scraped (with the truth of each), held-out test photos."""

    originals: dict[str, list[Path]] = field(default_factory=dict)
    scraped: dict[str, list[tuple[Path, str]]] = field(default_factory=dict)  # (file, good|wrong-class|off-topic)
    test: dict[str, list[Path]] = field(default_factory=dict)


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)


def tasks(data: Path, offtopic_dir: Path) -> list[Task]:
    """The pets and breeds tasks found under `data` (each needs its folders)."""
    pool = offtopic_pool(offtopic_dir)
    out = []
    if (data / "cats").is_dir() and (data / "dogs").is_dir():
        out.append(Task("pets", {"cat": images_in(data / "cats"), "dog": images_in(data / "dogs")}, pool))
    breeds = data / "cat-breeds"
    if breeds.is_dir():
        classes = {d.name: images_in(d) for d in sorted(breeds.iterdir()) if d.is_dir()}
        dogs = images_in(data / "dogs")[:60] if (data / "dogs").is_dir() else []
        out.append(Task("breeds", classes, pool + dogs))
    return out


def draw(task: Task, n_orig: int, seed: int, *, n_test: int = 30, n_good: int = 60, n_wrong: int = 8,
         n_off: int = 8) -> Draw:
    """Disjoint originals, test photos and good scraped photos per class; wrong-class and off-topic planted."""
    rng = random.Random(f"{task.name}-{seed}")
    pools = {c: rng.sample(files, len(files)) for c, files in task.classes.items()}
    off = rng.sample(task.offtopic, len(task.offtopic))
    d = Draw()
    names = list(task.classes)
    for c in names:
        files = pools[c]
        d.originals[c], d.test[c] = files[:n_orig], files[n_orig:n_orig + n_test]
        d.scraped[c] = [(f, "good") for f in files[n_orig + n_test:n_orig + n_test + n_good]]
        del files[:n_orig + n_test + n_good]
    for i, c in enumerate(names):
        for n in range(n_wrong):
            other = names[(i + 1 + n % (len(names) - 1)) % len(names)]
            d.scraped[c].append((pools[other].pop(), "wrong-class"))
        for n in range(n_off):
            d.scraped[c].append((off[(i * n_off + n) % len(off)], "off-topic"))
    return d


# -- the off-topic pool ---------------------------------------------------------------------------------------
def offtopic_pool(folder: Path, photos: bool = True) -> list[Path]:
    """Off-topic pictures written once into `folder`: sample-photo crops (with `photos`), charts, banners, drawings."""
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / ".complete"
    if not done.exists():
        rng = random.Random(0)
        n = 0
        for name, im in _sample_photos() if photos else []:
            for k in range(2):
                _save(_crop(im, rng) if k else im, folder / f"photo-{name}-{k}.jpg")
                n += 1
        for k in range(36):
            _save((_chart, _banner, _drawing)[k % 3](random.Random(k)), folder / f"made-{k:02d}.jpg")
        done.write_text("ok")
    return images_in(folder)


def _sample_photos() -> list[tuple[str, Image.Image]]:
    out = []
    try:
        import skimage.data

        for name in SKIMAGE_PHOTOS:
            arr = getattr(skimage.data, name)()
            arr = arr[0] if isinstance(arr, tuple) else arr
            if arr.dtype != np.uint8:
                arr = arr.astype(np.float64)
                arr = (255 * (arr - arr.min()) / max(float(arr.max() - arr.min()), 1e-9)).astype(np.uint8)
            out.append((name, Image.fromarray(arr).convert("RGB")))
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_images

        for i, arr in enumerate(load_sample_images().images):
            out.append((f"sklearn{i}", Image.fromarray(arr).convert("RGB")))
    except ImportError:
        pass
    return out


def _crop(im: Image.Image, rng: random.Random) -> Image.Image:
    w, h = im.size
    cw, ch = int(w * rng.uniform(0.5, 0.8)), int(h * rng.uniform(0.5, 0.8))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return im.crop((x, y, x + cw, y + ch))


def _chart(rng: random.Random) -> Image.Image:
    im = Image.new("RGB", (288, 216), (255, 255, 255))
    d = ImageDraw.Draw(im)
    d.line((30, 190, 280, 190), fill=(0, 0, 0), width=2)
    d.line((30, 10, 30, 190), fill=(0, 0, 0), width=2)
    for i in range(rng.randint(4, 9)):
        top = rng.randint(20, 180)
        colour = tuple(rng.randrange(40, 220) for _ in range(3))
        d.rectangle((40 + i * 26, top, 58 + i * 26, 189), fill=colour)
        d.text((40 + i * 26, 195), f"Q{i + 1}", fill=(0, 0, 0))
    return im


def _banner(rng: random.Random) -> Image.Image:
    bg = tuple(rng.randrange(256) for _ in range(3))
    im = Image.new("RGB", (288, 144), bg)
    d = ImageDraw.Draw(im)
    fg = tuple(255 - v for v in bg)
    for row in range(5):
        d.text((12, 10 + row * 26), rng.choice(["SALE", "FREE SHIPPING", "NEW ARRIVALS", "BUY NOW"]) +
               f" -{rng.randint(10, 70)}%", fill=fg)
    return im


def _drawing(rng: random.Random) -> Image.Image:
    im = Image.new("RGB", (256, 256), (250, 248, 240))
    d = ImageDraw.Draw(im)
    for _ in range(rng.randint(5, 14)):
        box = sorted(rng.sample(range(256), 2)) + sorted(rng.sample(range(256), 2))
        shape = rng.choice(["ellipse", "rectangle", "line"])
        colour = tuple(rng.randrange(256) for _ in range(3))
        xy = (box[0], box[2], box[1], box[3])
        if shape == "line":
            d.line(xy, fill=colour, width=rng.randint(2, 6))
        else:
            getattr(d, shape)(xy, outline=colour, width=rng.randint(2, 5))
    return im


def _save(im: Image.Image, path: Path) -> None:
    im.thumbnail((288, 288))
    im.save(path, "JPEG", quality=90)


# -- vet's own embeddings, cached per file ----------------------------------------------------------------------
def embeddings(files: list[Path], weights: Path, cache: Path, backbone: str = "mobilenet_v2",
               img_size: int = 224) -> dict[Path, np.ndarray]:
    """Vectors from vet's own embedder (the backbone with `weights`), cached in `cache` (.npz) by file."""
    from datacurate.vet.embed import embed_files, load_backbone
    from datacurate.vet.options import VetOptions
    from datacurate.core.workspace import Workspace

    key = hashlib.sha256(f"{backbone}{img_size}{weights.resolve()}".encode()).hexdigest()[:12]
    store = cache.with_suffix(f".{key}.npz")
    have: dict[str, np.ndarray] = dict(np.load(store)) if store.exists() else {}
    todo = [f for f in files if str(f) not in have]
    if todo:
        opts = VetOptions(backbone=backbone, weights=str(weights), img_size=img_size, workers=1)
        bb = load_backbone(Workspace(cache.parent, {}), opts)
        vectors, _ = embed_files(bb, todo, opts)
        have.update({str(f): v.astype(np.float16).astype(np.float32) for f, v in zip(todo, vectors) if v is not None})
        np.savez(store, **have)
    return {f: have[str(f)] for f in files if str(f) in have}
