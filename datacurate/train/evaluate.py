"""`evaluate`: accuracy, per-class precision and recall, confusion matrix (counts and normalised; CSV, PNG, SVG),
most-confused pairs, per-image predictions (predictions.csv), the most confidently wrong images (errors.html);
then the run's report.html is refreshed."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from datacurate.core.terminal import progress
from datacurate.core.fsutil import atomic_write_text
from datacurate.vision.data import ImageSet, make_loader, scan_folder
from datacurate.train.errors import Prediction, write_errors_page, write_predictions
from datacurate.train.outputs import plot_confusion, write_json
from datacurate.core.workspace import Workspace


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
    accuracy_tta: float | None = None  # with --tta: the accuracy of the view-averaged prediction
    tta: str | None = None
    predictions: list[Prediction] = field(default_factory=list, repr=False)  # one per decoded image (predictions.csv)
    report: Path | None = None  # the run's report.html, refreshed


def evaluate(ws: Workspace, run: str, data: str | None = None, *, batch_size: int = 32, workers: int = 0,
             device: str = "auto", top_pairs: int = 10, quiet: bool = False, tta: str | None = None, tta_views: int = 8,
             head_from: str | None = None, ema: bool = False, worst: int = 8, examples: int = 3) -> EvalResult:
    """Score run `run` on an ImageFolder tree (default: data/split/valid); writes runs/<run>/eval/<data>/.

    `tta` (flip | crops | policy) also scores the view-averaged prediction; `head_from` uses a classifier
    fitted by fit-head (svm | logreg); `ema` the run's averaged weights. errors.html shows up to `worst`
    most confidently wrong images per class, each beside `examples` images of the class it was taken for.
    """
    from datacurate.train.scorers import open_scorer
    from datacurate.vision.tta import make_views

    sc = open_scorer(ws, run, device=device, head_from=head_from, ema=ema)
    folder = Path(data) if data else ws.split_dir / "valid"
    _, samples = scan_folder(folder, sc.classes)
    views = make_views(tta, sc.pre, sc.config, tta_views)
    ds = ImageSet(samples, sc.pre, views=views)
    loader = make_loader(ds, batch_size, workers, shuffle=False)
    n = len(sc.classes)
    matrix = [[0] * n for _ in range(n)]
    hits_tta = 0
    skipped: list[str] = []
    preds: list[Prediction] = []
    start = 0  # the loader keeps the samples' order: a batch is the next len(labels) + len(bad) of them
    for images, labels, bad in progress(loader, total=len(loader), desc="evaluate", quiet=quiet):
        skipped += [samples[i][0] for i in bad]
        index = [i for i in range(start, start + len(labels) + len(bad)) if i not in bad]
        start += len(labels) + len(bad)
        if not len(labels):
            continue
        plain, averaged = sc.probs(images, views.count if views else 1)
        for t, p in zip(labels.tolist(), plain.argmax(1).tolist()):
            matrix[t][p] += 1
        if averaged is not None:
            hits_tta += int((averaged.argmax(1) == labels).sum())
        preds += Prediction.batch([samples[i][0] for i in index], labels, plain, averaged)
    total = sum(map(sum, matrix))
    acc = sum(matrix[i][i] for i in range(n)) / total if total else float("nan")
    acc_tta = (hits_tta / total if total else float("nan")) if views else None
    per_class = []
    for i, c in enumerate(sc.classes):
        tp, support, predicted = matrix[i][i], sum(matrix[i]), sum(row[i] for row in matrix)
        prec = tp / predicted if predicted else float("nan")
        rec = tp / support if support else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if predicted and support and prec + rec else float("nan")
        per_class.append({"class": c, "support": support, "precision": prec, "recall": rec, "f1": f1})
    pairs = sorted(((matrix[i][j], sc.classes[i], sc.classes[j]) for i in range(n) for j in range(n) if i != j and matrix[i][j]),
                   key=lambda t: (-t[0], t[1], t[2]))[:top_pairs]
    confused = [{"true": a, "predicted": b, "count": k} for k, a, b in pairs]
    label = _label(folder, ws) + (f"-{head_from}" if head_from else "") + ("-ema" if ema else "")
    out = sc.run_dir / "eval" / label
    out.mkdir(parents=True, exist_ok=True)
    extra = {"tta": tta, "tta_views": views.count if views else None, "accuracy_tta": acc_tta, "head_from": head_from, "ema": ema}
    _write_outputs(out, sc.classes, matrix, per_class, confused, acc, total, skipped, folder, extra)
    write_predictions(out / "predictions.csv", preds, sc.classes, ws)
    write_errors_page(out / "errors.html", preds, sc.classes, ws, title=f"{sc.name} on {folder}", worst=worst, examples=examples)
    from datacurate.train.report import write_run_report

    report = write_run_report(sc.run_dir) if sc.run_dir else None
    return EvalResult(sc.name, folder, out, total, acc, per_class, matrix, confused, skipped, acc_tta, tta, preds, report)


def _label(folder: Path, ws: Workspace) -> str:
    if folder.resolve() == (ws.split_dir / "valid").resolve():
        return "valid"
    return re.sub(r"[^\w.-]+", "_", folder.resolve().name) or "data"


def _write_outputs(out: Path, classes, matrix, per_class, confused, acc, total, skipped, folder, extra: dict) -> None:
    normalized = normalize_rows(matrix)
    atomic_write_text(out / "confusion.csv", _matrix_csv(classes, matrix))
    atomic_write_text(out / "confusion_normalized.csv", _matrix_csv(classes, [[f"{x:.4f}" for x in row] for row in normalized]))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["class", "support", "precision", "recall", "f1"], lineterminator="\n")
    w.writeheader()
    for r in per_class:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_text(out / "per_class.csv", buf.getvalue())
    plot_confusion(out / "confusion.png", matrix, classes)
    plot_confusion(out / "confusion.svg", matrix, classes)
    plot_confusion(out / "confusion_normalized.svg", normalized, classes, normalized=True)
    write_json(out / "metrics.json", {"data": str(folder), "images": total, "accuracy": acc, **extra, "per_class": per_class,
                                      "most_confused": confused, "skipped_files": skipped})


def normalize_rows(matrix: list[list[int]]) -> list[list[float]]:
    """Each true class's row divided by its count (rows sum to 1; a class with no images stays 0)."""
    return [[x / sum(row) if sum(row) else 0.0 for x in row] for row in matrix]


def _matrix_csv(classes: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["true \\ predicted", *classes])
    for c, row in zip(classes, rows):
        w.writerow([c, *row])
    return buf.getvalue()
