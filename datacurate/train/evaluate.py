"""`evaluate`: accuracy, per-class precision and recall, confusion matrix (CSV, PNG), most-confused pairs."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from datacurate.clicommon import progress
from datacurate.fsutil import atomic_write_text
from datacurate.train.data import ImageSet, make_loader, scan_folder, to_input
from datacurate.train.outputs import plot_confusion, write_json
from datacurate.train.run import load_run
from datacurate.workspace import Workspace


@dataclass
class EvalResult:
    run: str
    data: Path
    out_dir: Path
    images: int
    accuracy: float
    per_class: list[dict]
    confusion: list[list[int]]
    confused: list[dict]
    skipped: list[str] = field(default_factory=list)


def evaluate(ws: Workspace, run: str, data: str | None = None, *, batch_size: int = 32, workers: int = 0,
             device: str = "auto", top_pairs: int = 10, quiet: bool = False) -> EvalResult:
    """Score run `run` on an ImageFolder tree (default: data/split/valid); writes runs/<run>/eval/<data>/."""
    lr = load_run(ws, run, device)
    folder = Path(data) if data else ws.split_dir / "valid"
    _, samples = scan_folder(folder, lr.classes)
    ds = ImageSet(samples, lr.pre)
    loader = make_loader(ds, batch_size, workers, shuffle=False)
    n = len(lr.classes)
    matrix = [[0] * n for _ in range(n)]
    skipped: list[str] = []
    dev = next(lr.model.parameters()).device
    with torch.no_grad():
        for images, labels, bad in progress(loader, total=len(loader), desc="evaluate", quiet=quiet):
            skipped += [samples[i][0] for i in bad]
            if not len(labels):
                continue
            pred = lr.model(to_input(images, dev, lr.pre, False)).argmax(1).cpu()
            for t, p in zip(labels.tolist(), pred.tolist()):
                matrix[t][p] += 1
    total = sum(map(sum, matrix))
    acc = sum(matrix[i][i] for i in range(n)) / total if total else float("nan")
    per_class = []
    for i, c in enumerate(lr.classes):
        tp, support, predicted = matrix[i][i], sum(matrix[i]), sum(row[i] for row in matrix)
        prec = tp / predicted if predicted else float("nan")
        rec = tp / support if support else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if predicted and support and prec + rec else float("nan")
        per_class.append({"class": c, "support": support, "precision": prec, "recall": rec, "f1": f1})
    pairs = sorted(((matrix[i][j], lr.classes[i], lr.classes[j]) for i in range(n) for j in range(n) if i != j and matrix[i][j]),
                   key=lambda t: (-t[0], t[1], t[2]))[:top_pairs]
    confused = [{"true": a, "predicted": b, "count": k} for k, a, b in pairs]
    out = lr.run_dir / "eval" / _label(folder, ws)
    out.mkdir(parents=True, exist_ok=True)
    _write_outputs(out, lr.classes, matrix, per_class, confused, acc, total, skipped, folder)
    return EvalResult(lr.name, folder, out, total, acc, per_class, matrix, confused, skipped)


def _label(folder: Path, ws: Workspace) -> str:
    if folder.resolve() == (ws.split_dir / "valid").resolve():
        return "valid"
    return re.sub(r"[^\w.-]+", "_", folder.resolve().name) or "data"


def _write_outputs(out: Path, classes, matrix, per_class, confused, acc, total, skipped, folder) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["true \\ predicted", *classes])
    for c, row in zip(classes, matrix):
        w.writerow([c, *row])
    atomic_write_text(out / "confusion.csv", buf.getvalue())
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["class", "support", "precision", "recall", "f1"], lineterminator="\n")
    w.writeheader()
    for r in per_class:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_text(out / "per_class.csv", buf.getvalue())
    plot_confusion(out / "confusion.png", matrix, classes)
    write_json(out / "metrics.json", {"data": str(folder), "images": total, "accuracy": acc, "per_class": per_class,
                                      "most_confused": confused, "skipped_files": skipped})
