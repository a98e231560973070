"""runs/<run>/report.html: one page per run, built from the files the run folder already holds.

history.csv and history.svg (curves, the best epoch marked, each group's learning rate), plan.txt (stages,
groups, learning rates), metrics.json (data summary, best epoch) and every eval/<data>/metrics.json
(accuracy, per class, confusion matrices, the errors page). `train` writes it when it ends; `evaluate`
rewrites it, so it always shows every evaluation made so far.
"""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path

from datacurate.core.fsutil import atomic_write_text
from datacurate.train.outputs import best_epoch


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _history(run_dir: Path) -> list[dict]:
    try:
        with open(run_dir / "history.csv", encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    except OSError:
        return []


def data_rows(data: dict) -> list[dict]:
    """{"train": {class: n}, "valid": {...}} -> one row per class with train, valid and total, then TOTAL."""
    train, valid = data.get("train") or {}, data.get("valid") or {}
    rows = [{"class": c, "train": train.get(c, 0), "valid": valid.get(c, 0), "total": train.get(c, 0) + valid.get(c, 0)}
            for c in list(train) + [c for c in valid if c not in train]]
    if rows:
        rows.append({"class": "TOTAL", "train": sum(train.values()), "valid": sum(valid.values()),
                     "total": sum(train.values()) + sum(valid.values())})
    return rows


def evaluations(run_dir: Path) -> list[dict]:
    """Every eval/<label>/metrics.json of the run, with links to the files beside it that exist."""
    out = []
    for m in sorted((run_dir / "eval").glob("*/metrics.json")):
        data = _json(m)
        if not data:
            continue
        folder = m.parent
        files = [f for f in ("errors.html", "predictions.csv", "confusion_normalized.svg", "confusion.svg", "confusion.png",
                             "confusion_normalized.csv", "confusion.csv", "per_class.csv") if (folder / f).is_file()]
        confusion = next((f for f in ("confusion_normalized.svg", "confusion.png") if f in files), None)
        out.append({"label": folder.name, "dir": f"eval/{folder.name}", "data": data, "files": files, "confusion": confusion})
    return out


def write_run_report(run_dir: Path) -> Path:
    """Write (or rewrite) run_dir/report.html; returns its path."""
    import jinja2

    metrics = _json(run_dir / "metrics.json")
    rows = _history(run_dir)
    lr_cols = [k for k in (rows[0] if rows else {}) if k.startswith("lr_")]
    best = metrics.get("best_epoch") or best_epoch(rows)
    curves = next((f for f in ("history.svg", "history.png") if (run_dir / f).is_file()), None)
    # lenient about missing keys: the files may come from an older datacurate
    template = jinja2.Environment(autoescape=True).from_string(
        resources.files("datacurate").joinpath("data/run-report.html.j2").read_text(encoding="utf-8"))
    page = template.render(name=metrics.get("run") or run_dir.name, metrics=metrics, rows=rows, lr_cols=lr_cols,
                           best=str(best) if best else None, curves=curves, plan=_text(run_dir / "plan.txt"),
                           config=_text(run_dir / "config.yaml"), data=data_rows(metrics.get("data") or {}),
                           evals=evaluations(run_dir), num=_num)
    path = run_dir / "report.html"
    atomic_write_text(path, page)
    return path


def _num(value, digits: int = 4) -> str:
    """A metric as text: numbers rounded, missing ones as '-'."""
    if value in (None, ""):
        return "-"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if f != f:
        return "-"
    return f"{f:.{digits}f}" if abs(f) >= 1e-3 or f == 0 else f"{f:.2e}"
