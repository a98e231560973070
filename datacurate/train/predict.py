"""`predict`: class probabilities for images and folders, one JSON-able record per image."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from datacurate.core.errors import UserError
from datacurate.train.labels import read_label_map
from datacurate.vision.data import ImageSet, collate, list_images
from datacurate.core.workspace import Workspace


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
    if not out:
        from datacurate.core.imageio import IMAGEFOLDER_EXTENSIONS

        raise UserError(f"no image to predict in {', '.join(inputs[:3])}{' ...' if len(inputs) > 3 else ''} "
                        f"(a folder's images are its files ending in {', '.join(IMAGEFOLDER_EXTENSIONS[:4])}, ...)")
    return out


def predict(ws: Workspace, run: str | None, inputs: list[str], *, top: int = 5, label_map: str | None = None,
            batch_size: int = 32, device: str = "auto", tta: str | None = None, tta_views: int = 8,
            head_from: str | None = None, ema: bool = False, model_file: str | None = None) -> Iterator[dict]:
    """Yield {"path", "result", "top": [[label, prob], ...]} per image ({"path", "error"} when it cannot be read).

    RUN's network by default; `head_from` a classifier fitted by fit-head; `model_file` an exported ONNX or
    TorchScript file (its label map applies unless `label_map` is given); `tta` averages the views' softmax.
    """
    from datacurate.train.scorers import exported_scorer, open_scorer
    from datacurate.vision.tta import make_views

    names: dict[str, str] = {}
    if model_file:
        sc, meta = exported_scorer(model_file, device)
        names.update(meta.get("label_map") or {})
    else:
        sc = open_scorer(ws, str(run), device=device, head_from=head_from, ema=ema)
    names = {c: names.get(c, c) for c in sc.classes}
    if label_map:
        names.update(read_label_map(label_map, sc.classes))
    paths = expand(inputs)
    views = make_views(tta, sc.pre, sc.config, tta_views)
    ds = ImageSet([(str(p), 0) for p in paths], sc.pre, views=views)
    k = max(1, min(top, len(sc.classes)))
    for start in range(0, len(ds), batch_size):
        images, _, bad = collate([ds[i] for i in range(start, min(start + batch_size, len(ds)))])
        probs = None
        if len(images):
            plain, averaged = sc.probs(images, views.count if views else 1)
            probs = plain if averaged is None else averaged
        row = 0
        for i in range(start, min(start + batch_size, len(ds))):
            if i in bad:
                yield {"path": str(paths[i]), "error": f"could not decode the image ({bad[i]})"}
                continue
            p, idx = probs[row].topk(k)
            row += 1
            topk = [[names[sc.classes[j]], round(float(q), 6)] for q, j in zip(p.tolist(), idx.tolist())]
            yield {"path": str(paths[i]), "result": topk[0][0], "top": topk}
