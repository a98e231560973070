"""What a run leaves on disk besides checkpoints: history.csv, metrics.json, plots."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from datacurate.fsutil import atomic_path, atomic_write_text


def write_history(run_dir: Path, rows: list[dict]) -> None:
    """history.csv, one row per epoch (columns: the union of keys, in first-seen order)."""
    if not rows:
        return
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_text(run_dir / "history.csv", buf.getvalue())


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(_clean(data), indent=2, ensure_ascii=False) + "\n")


def _clean(v):
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from datacurate.report.fonts import use_cjk_font

    use_cjk_font(plt)
    return plt


def plot_history(run_dir: Path, rows: list[dict]) -> Path | None:
    """history.png: loss and accuracy per epoch, train and valid, stage boundaries dashed."""
    if not rows:
        return None
    import warnings

    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "acc")):
        for split in ("train", "valid"):
            ax.plot(epochs, [r[f"{split}_{metric}"] for r in rows], marker="o", label=split)
        for a, b in zip(rows, rows[1:]):
            if a["stage"] != b["stage"]:
                ax.axvline(a["epoch"] + 0.5, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("loss" if metric == "loss" else "accuracy")
        ax.legend()
    fig.tight_layout()
    out = run_dir / "history.png"
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return out


def plot_confusion(path: Path, matrix: list[list[int]], classes: list[str]) -> None:
    """A confusion-matrix heat map (rows: true class, columns: predicted)."""
    import warnings

    with warnings.catch_warnings():
        _plot_confusion(path, matrix, classes)


def _plot_confusion(path: Path, matrix: list[list[int]], classes: list[str]) -> None:
    import warnings

    plt = _pyplot()
    warnings.simplefilter("ignore")  # a missing CJK glyph is drawn as a box, not worth a warning per glyph
    n = len(classes)
    size = max(4.0, min(0.5 * n + 2, 30))
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=90)
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if matrix[i][j]:
                    ax.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
