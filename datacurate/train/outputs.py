"""What a run leaves on disk besides checkpoints: history.csv, metrics.json, plots."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from datacurate.core.fsutil import atomic_path, atomic_write_text


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


def best_epoch(rows: list[dict]) -> int | None:
    """The epoch best.pt holds: the last one marked as an improvement (history rows as written or read back)."""
    marked = [r["epoch"] for r in rows if str(r.get("best")) in ("True", "true", "1")]
    return int(marked[-1]) if marked else None


def plot_history(run_dir: Path, rows: list[dict]) -> Path | None:
    """history.png and history.svg: loss, accuracy and each group's learning rate per epoch; stage boundaries
    dashed, the best epoch marked."""
    if not rows:
        return None
    import warnings

    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    rows = [{k: _number(v) for k, v in r.items()} for r in rows]
    epochs = [r["epoch"] for r in rows]
    best = best_epoch(rows)
    lr_keys = [k for k in rows[0] if k.startswith("lr_")]
    fig, axes = plt.subplots(1, 3 if lr_keys else 2, figsize=(15 if lr_keys else 10, 4))
    for ax, metric in zip(axes, ("loss", "acc", "lr")):
        if metric == "lr":
            for key in lr_keys:
                ax.plot(epochs, [r.get(key) for r in rows], marker=".", label=key[3:])
            if all(r.get(k, 0) > 0 for r in rows for k in lr_keys):
                ax.set_yscale("log")
            ax.set_title("learning rate (last step of each epoch)")
        else:
            for split in ("train", "valid"):
                ax.plot(epochs, [r[f"{split}_{metric}"] for r in rows], marker="o", label=split)
            if best is not None:
                value = next(r[f"valid_{metric}"] for r in rows if r["epoch"] == best)
                ax.plot([best], [value], marker="*", markersize=16, color="crimson", linestyle="", label=f"best (epoch {best})")
            ax.set_title("loss" if metric == "loss" else "accuracy")
        for a, b in zip(rows, rows[1:]):
            if a["stage"] != b["stage"]:
                ax.axvline(a["epoch"] + 0.5, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = run_dir / "history.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save_figure(fig, out)
        save_figure(fig, run_dir / "history.svg")
    plt.close(fig)
    return out


def _number(v):
    """history.csv's text back to numbers (stage names and flags stay text)."""
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v
    return v


def save_figure(fig, path: Path) -> None:
    """PNG at 100 dpi, or SVG with every glyph as a path (CJK names survive without the font) and no date."""
    import matplotlib

    svg = path.suffix == ".svg"
    with atomic_path(path) as tmp, matplotlib.rc_context({"svg.fonttype": "path"}):
        fig.savefig(tmp, format="svg" if svg else "png", dpi=100, metadata={"Date": None} if svg else None)


def plot_confusion(path: Path, matrix: list[list[float]], classes: list[str], *, normalized: bool = False) -> None:
    """A confusion-matrix heat map (rows: true class, columns: predicted), PNG or SVG by `path`'s suffix.

    The figure and its labels scale with the class count (200 classes stay legible in the SVG);
    `normalized` matrices (rows summing to 1) are drawn on a fixed 0-1 scale.
    """
    import warnings

    with warnings.catch_warnings():
        _plot_confusion(path, matrix, classes, normalized)


def confusion_layout(classes: list[str], vector: bool) -> tuple[float, float]:
    """(figure side in inches, label font size in points) for this many classes and these names."""
    n = len(classes)
    cell = min(0.5, max(0.14, 10 / max(n, 1)))  # inches per class: 0.5 up to 20 classes, 0.14 (10 pt) from 72
    font = min(9.0, max(4.0, cell * 72 * 0.7))
    longest = max((sum(2 if ord(ch) > 0x2E7F else 1 for ch in c) for c in classes), default=1)
    margin = longest * font * 0.62 / 72 + 0.8
    side = n * cell + margin + 1.2
    return (max(4.0, side) if vector else max(4.0, min(side, 30))), font


def _plot_confusion(path: Path, matrix: list[list[float]], classes: list[str], normalized: bool) -> None:
    import warnings

    plt = _pyplot()
    warnings.simplefilter("ignore")  # a missing CJK glyph is drawn as a box, not worth a warning per glyph
    n = len(classes)
    size, font = confusion_layout(classes, path.suffix == ".svg")
    fig, ax = plt.subplots(figsize=(size, size))
    from matplotlib.colors import PowerNorm

    # normalised: a square-root scale from 0 to 1, so a 5% confusion is visible beside a 95% diagonal
    scale = PowerNorm(0.5, vmin=0, vmax=1) if normalized else None
    image = ax.imshow(matrix, cmap="Blues", norm=scale, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
    ax.set_xticks(range(n), classes, rotation=90, fontsize=font)
    ax.set_yticks(range(n), classes, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion, each true class's row sums to 1" if normalized else "confusion (images)")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if matrix[i][j]:
                    text = f"{matrix[i][j]:.2f}" if normalized else str(matrix[i][j])
                    ax.text(j, i, text, ha="center", va="center", fontsize=7 if normalized else 8,
                            color="white" if normalized and matrix[i][j] > 0.6 else "black")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
