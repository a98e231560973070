"""`--label-map`: display names for a run's classes (predict, export)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from datacurate.core.errors import UserError


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
