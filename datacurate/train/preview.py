"""`augment-preview`: a sample of train images per class beside N versions under the augmentation policy.

The versions are the training loader's own outputs for epochs 1..N (same ImageSet, seed and policy), so
what the page shows is what the model will see. Writes reports/augment.html (jinja2) and
reports/augment.png (one grid, class names on the left).
"""

from __future__ import annotations

import base64
import io
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from datacurate.core.errors import UserError
from datacurate.core.fsutil import atomic_path, atomic_write_text
from datacurate.core.imageio import load_rgb
from datacurate.vision.crop import resize_center_crop
from datacurate.vision.data import ImageSet, Preprocess, scan_folder
from datacurate.core.workspace import Workspace


@dataclass
class PreviewResult:
    html: Path
    png: Path
    classes: int
    images: int
    description: str


def _uri(t: torch.Tensor) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(t.permute(1, 2, 0).numpy()).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def augment_preview(ws: Workspace, *, augment: Any = None, policy: Any = None, n: int = 8, per_class: int = 2, seed: int | None = None,
                    img_size: int | None = None, max_classes: int = 0) -> PreviewResult:
    """Write reports/augment.html and augment.png for `augment` (default: train.augment of datacurate.yaml).

    `policy` is the older name of `augment`, still accepted."""
    import torchvision.transforms.v2.functional as F

    from datacurate.vision.augment import describe, parse_policy
    from datacurate.train.run import resolve

    if n < 1 or per_class < 1 or max_classes < 0:
        raise UserError("-n and --per-class must be at least 1, --max-classes at least 0")
    policy = augment if augment is not None else policy
    if policy is not None:
        parse_policy(policy, "--augment")
    opts = resolve(ws, {"augment": policy, "seed": seed, "img_size": img_size})
    pol = parse_policy(opts["augment"], "--augment" if policy else "train.augment")
    classes, samples = scan_folder(ws.split_dir / "train")
    if not samples:
        raise UserError(f"{ws.split_dir / 'train'} has no images; run `datacurate split` first")
    pre = Preprocess(opts["resize"], opts["img_size"])
    ds = ImageSet(samples, pre, policy=pol, seed=opts["seed"])
    rng = random.Random(opts["seed"])
    by_class: dict[int, list[int]] = {}
    for i, (_, label) in enumerate(samples):
        by_class.setdefault(label, []).append(i)
    shown, rows = [], []
    for label in sorted(by_class)[:max_classes or None]:
        picked = sorted(rng.sample(by_class[label], min(per_class, len(by_class[label]))))
        entries = []
        for i in picked:
            path = samples[i][0]
            try:
                im = load_rgb(path, pre.resize)
            except Exception:  # noqa: BLE001 - a file that cannot be decoded is not shown
                continue
            original = F.pil_to_tensor(resize_center_crop(im, pre.resize, pre.crop))
            views = [ds.transform(im, i, epoch) for epoch in range(n)]
            rows.append((classes[label], [original, *views]))
            entries.append({"path": ws.rel(path) if str(path).startswith(str(ws.root)) else path,
                            "original": _uri(original), "views": [_uri(v) for v in views]})
        if entries:
            shown.append({"name": classes[label], "samples": entries})
    reports = ws.reports
    png = reports / "augment.png"
    import warnings

    with warnings.catch_warnings():
        _grid(png, rows, n)
    raw = opts["augment"]
    preset = raw if isinstance(raw, str) else f"{raw.get('preset', 'none')} + overrides"
    import jinja2

    template = jinja2.Environment(autoescape=True).from_string(
        resources.files("datacurate").joinpath("data/augment.html.j2").read_text(encoding="utf-8"))
    page = template.render(classes=shown, images=len(rows), n=n, seed=opts["seed"], crop=pre.crop, preset=preset,
                           description=describe(pol), png=png.name, tile=min(160, max(64, pre.crop)))
    html = reports / "augment.html"
    atomic_write_text(html, page)
    return PreviewResult(html, png, len(shown), len(rows), describe(pol))


def _grid(path: Path, rows: list[tuple[str, list[torch.Tensor]]], n: int) -> None:
    """One picture: a row per sample (class name on the left), the original then the N versions."""
    import warnings

    from datacurate.train.outputs import _pyplot

    if not rows:
        raise UserError("no train image could be decoded for the preview")
    size = rows[0][1][0].shape[-1]
    gap = max(2, size // 16)
    mosaic = np.full((len(rows) * (size + gap), (n + 1) * (size + gap), 3), 255, np.uint8)
    for r, (_, tiles) in enumerate(rows):
        for c, t in enumerate(tiles):
            y, x = r * (size + gap), c * (size + gap)
            mosaic[y:y + size, x:x + size] = t.permute(1, 2, 0).numpy()
    plt = _pyplot()
    warnings.simplefilter("ignore")  # a missing CJK glyph is drawn as a box; caller restores the filters
    fig, ax = plt.subplots(figsize=(2 + (n + 1) * 1.2, 0.6 + len(rows) * 1.2))
    ax.imshow(mosaic, interpolation="bilinear")
    ax.set_xticks([c * (size + gap) + size / 2 for c in range(n + 1)], ["original"] + [f"epoch {e}" for e in range(1, n + 1)],
                  fontsize=8)
    ax.set_yticks([r * (size + gap) + size / 2 for r in range(len(rows))], [name for name, _ in rows], fontsize=8)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
