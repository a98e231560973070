"""`predict`: class probabilities for images and folders, one JSON-able record per image."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import torch

from datacurate.errors import UserError
from datacurate.train.data import ImageSet, collate, list_images, to_input
from datacurate.train.run import load_run
from datacurate.workspace import Workspace


def read_label_map(path: str | os.PathLike, classes: list[str]) -> dict[str, str]:
    """JSON {class: display name}; every key must be a class of the run."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"--label-map {path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"--label-map {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise UserError(f"--label-map {path} must be a JSON object of class name to display name")
    unknown = [k for k in data if k not in classes]
    if unknown:
        raise UserError(f"--label-map {path}: {unknown[0]!r} is not a class of this run ({', '.join(classes[:5])}...)")
    return data


def expand(inputs: list[str]) -> list[Path]:
    """Files as given, folders as their images (recursively, sorted)."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += list_images(p)
        elif p.is_file():
            out.append(p)
        else:
            raise UserError(f"{item}: no such file or folder")
    return out


def predict(ws: Workspace, run: str, inputs: list[str], *, top: int = 5, label_map: str | None = None,
            batch_size: int = 32, device: str = "auto") -> Iterator[dict]:
    """Yield {"path", "result", "top": [[label, prob], ...]} per image ({"path", "error"} when it cannot be read)."""
    lr = load_run(ws, run, device)
    names = {c: c for c in lr.classes}
    if label_map:
        names.update(read_label_map(label_map, lr.classes))
    paths = expand(inputs)
    ds = ImageSet([(str(p), 0) for p in paths], lr.pre)
    dev = next(lr.model.parameters()).device
    k = max(1, min(top, len(lr.classes)))
    for start in range(0, len(ds), batch_size):
        images, _, bad = collate([ds[i] for i in range(start, min(start + batch_size, len(ds)))])
        probs = None
        if len(images):
            with torch.no_grad():
                probs = torch.softmax(lr.model(to_input(images, dev, lr.pre, False)).float(), 1).cpu()
        row = 0
        for i in range(start, min(start + batch_size, len(ds))):
            if i in bad:
                yield {"path": str(paths[i]), "error": f"could not decode the image ({bad[i]})"}
                continue
            p, idx = probs[row].topk(k)
            row += 1
            topk = [[names[lr.classes[j]], round(float(q), 6)] for q, j in zip(p.tolist(), idx.tolist())]
            yield {"path": str(paths[i]), "result": topk[0][0], "top": topk}
