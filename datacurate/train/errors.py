"""Error analysis after `evaluate`: predictions.csv (one row per image) and errors.html.

errors.html shows, per true class, the images the model got wrong with the most confidence, each beside a
few images of the class it took them for (from data/split/train when there, else correctly predicted images
of the evaluated set). Thumbnails are small JPEGs in thumbs/ beside the page, named by the file's path, size
and time; every picture links to the full file by a relative address, so the page works from file://.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import torch

from datacurate.core.errors import UserError
from datacurate.core.fsutil import atomic_write_bytes, atomic_write_text
from datacurate.vision.data import list_images
from datacurate.core.workspace import Workspace

THUMB = 128


@dataclass
class Prediction:
    """One evaluated image: true and predicted class index, the predicted class's probability, the loss."""

    path: str
    true: int
    predicted: int
    probability: float  # of the predicted class
    loss: float  # cross-entropy of the true class: -log p(true)
    predicted_tta: int | None = None
    probability_tta: float | None = None

    @property
    def wrong(self) -> bool:
        return self.true != self.predicted

    @staticmethod
    def batch(paths: list[str], labels: torch.Tensor, plain: torch.Tensor, averaged: torch.Tensor | None) -> list["Prediction"]:
        """Predictions of one batch from its probabilities (plain, and view-averaged with TTA)."""
        p, idx = plain.max(1)
        p_true = plain.gather(1, labels.view(-1, 1)).squeeze(1)
        loss = -torch.log(p_true.clamp_min(1e-12))
        out = [Prediction(path, t, k, q, lo) for path, t, k, q, lo in zip(paths, labels.tolist(), idx.tolist(), p.tolist(), loss.tolist())]
        if averaged is not None:
            pa, ia = averaged.max(1)
            for rec, k, q in zip(out, ia.tolist(), pa.tolist()):
                rec.predicted_tta, rec.probability_tta = k, q
        return out


def shown_path(ws: Workspace, path: str | os.PathLike) -> str:
    """Workspace-relative where the file is inside the workspace, else absolute."""
    try:
        return ws.rel(path)
    except UserError:
        return os.path.abspath(path)


def write_predictions(path: Path, preds: list[Prediction], classes: list[str], ws: Workspace) -> Path:
    """predictions.csv (UTF-8): path, true, predicted, probability, loss (+ predicted_tta, probability_tta)."""
    tta = any(p.predicted_tta is not None for p in preds)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "true", "predicted", "probability", "loss"] + (["predicted_tta", "probability_tta"] if tta else []))
    for p in preds:
        row = [shown_path(ws, p.path), classes[p.true], classes[p.predicted], f"{p.probability:.6f}", f"{p.loss:.6f}"]
        if tta:
            row += [classes[p.predicted_tta], f"{p.probability_tta:.6f}"]
        w.writerow(row)
    atomic_write_text(path, buf.getvalue())
    return path


def worst_errors(preds: list[Prediction], worst: int) -> dict[int, list[Prediction]]:
    """Per true class (most errors first), its wrong predictions, most confident first, at most `worst` each."""
    by_class: dict[int, list[Prediction]] = {}
    for p in preds:
        if p.wrong:
            by_class.setdefault(p.true, []).append(p)
    order = sorted(by_class, key=lambda c: (-len(by_class[c]), c))
    return {c: sorted(by_class[c], key=lambda p: (-p.probability, p.path))[:worst] for c in order}


def write_errors_page(path: Path, preds: list[Prediction], classes: list[str], ws: Workspace, *, title: str,
                      worst: int = 8, examples: int = 3) -> Path:
    """errors.html beside predictions.csv; see the module docstring."""
    import jinja2

    page_dir = path.parent
    thumbs = Thumbs(page_dir / "thumbs")
    errors = worst_errors(preds, worst)
    taken_for = sorted({p.predicted for rows in errors.values() for p in rows})
    refs = {c: reference_images(ws, preds, c, classes[c], examples) for c in taken_for}
    wrong_total = sum(p.wrong for p in preds)

    def picture(file: str) -> dict:
        return {"thumb": thumbs.get(file), "href": quote(Path(os.path.relpath(os.path.abspath(file), page_dir)).as_posix()),
                "name": shown_path(ws, file)}

    sections = [{"anchor": f"class-{c}", "name": classes[c], "wrong": sum(p.wrong and p.true == c for p in preds),
                 "images": sum(p.true == c for p in preds),
                 "rows": [{"image": picture(p.path), "taken_for": classes[p.predicted], "probability": p.probability,
                           "p_true": math.exp(-p.loss), "examples": [picture(f) for f in refs[p.predicted]]} for p in rows]}
                for c, rows in errors.items()]
    template = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
        resources.files("datacurate").joinpath("data/errors.html.j2").read_text(encoding="utf-8"))
    atomic_write_text(path, template.render(title=title, sections=sections, images=len(preds), wrong=wrong_total,
                                            worst=worst, examples=examples, thumb=THUMB))
    return path


def reference_images(ws: Workspace, preds: list[Prediction], c: int, name: str, k: int) -> list[str]:
    """Up to k images of class `c`: its data/split/train folder's first files, else the evaluated images the
    model got right with the most confidence."""
    if k <= 0:
        return []
    folder = ws.split_dir / "train" / name
    if folder.is_dir():
        files = [str(f) for f in list_images(folder)[:k]]
        if files:
            return files
    right = sorted((p for p in preds if p.true == c and not p.wrong), key=lambda p: (-p.probability, p.path))
    return [p.path for p in right[:k]]


class Thumbs:
    """Thumbnails in one folder, made once per (path, size, mtime); `get` returns the name relative to the page."""

    def __init__(self, folder: Path):
        self.folder = folder

    def get(self, file: str) -> str | None:
        from datacurate.report.html import thumbnail_jpeg

        try:
            st = os.stat(file)
        except OSError:
            return None
        key = hashlib.sha1(f"{os.path.abspath(file)}\0{st.st_size}\0{st.st_mtime_ns}".encode("utf-8", "surrogateescape"))
        name = f"{key.hexdigest()[:24]}.jpg"
        if not (self.folder / name).is_file():
            data = thumbnail_jpeg(file, THUMB)
            if data is None:
                return None
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.folder / name, data)
        return f"{self.folder.name}/{name}"
