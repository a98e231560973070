"""`predict --format csv`: a competition submission, one row per image, the columns named by `--columns`.

Columns: id (the file name without its extension), path, label (the predicted class, through the label
map), probability (of that class). `id,label` gives the header `id,label`; `id:ImageId,label:Label` renames
a column's header. No torch here: datacurate.yaml's `predict.columns` is checked with it at start-up.
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from datacurate.core.errors import UserError

KEYS = ("id", "path", "label", "probability")
FORMATS = ("jsonl", "csv")


def parse_columns(text: str) -> list[tuple[str, str]]:
    """`id,label` or `id:ImageId,label:Label` -> [(key, header), ...]; a UserError names a bad column."""
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"--columns must name columns, e.g. id,label (known: {', '.join(KEYS)})")
    out = []
    for item in text.split(","):
        key, _, header = item.strip().partition(":")
        key, header = key.strip(), (header.strip() or key.strip())
        if key not in KEYS:
            raise UserError(f"--columns: unknown column {key!r}; known: {', '.join(KEYS)} (rename one as KEY:HEADER)")
        out.append((key, header))
    headers = [h for _, h in out]
    if len(set(headers)) != len(headers):
        raise UserError(f"--columns {text!r} names a column twice")
    return out


def row(record: dict, columns: list[tuple[str, str]]) -> list[str]:
    """One predict record ({"path", "result", "top"}) as the columns' values."""
    values = {"id": Path(record["path"]).stem, "path": record["path"], "label": record["result"],
              "probability": f"{record['top'][0][1]:.6f}"}
    return [values[k] for k, _ in columns]


def lines(records: Iterable[dict], columns: list[tuple[str, str]], errors: list[dict], ids: list[str]) -> Iterator[str]:
    """CSV text lines (header first) of the records; records with an "error" go to `errors`, not to the file;
    each written row's id is appended to `ids`."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")

    def take() -> str:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text

    records = iter(records)
    first = next(records, None)  # a bad input (no image, no run) is refused before the header is out
    w.writerow([h for _, h in columns])
    yield take()
    for rec in itertools.chain([first] if first is not None else [], records):
        if "error" in rec:
            errors.append(rec)
            continue
        w.writerow(row(rec, columns))
        ids.append(Path(rec["path"]).stem)
        yield take()


@dataclass
class Submission:
    path: Path
    rows: int
    errors: list[dict] = field(default_factory=list)  # images that could not be decoded: no row
    duplicate_ids: list[str] = field(default_factory=list)


def write_submission(ws, run: str | None, inputs: list[str], path: str | Path, *, columns: str = "id,label", **predict_options) -> Submission:
    """Predict `inputs` with run `run` (options as datacurate.train.predict.predict) and write the CSV to `path`."""
    from datacurate.core.fsutil import atomic_write_text
    from datacurate.train.predict import predict

    cols = parse_columns(columns)
    errors: list[dict] = []
    ids: list[str] = []
    text = "".join(lines(predict(ws, run, inputs, **predict_options), cols, errors, ids))
    atomic_write_text(Path(path), text)
    return Submission(Path(path), len(ids), errors, duplicate_ids(ids))


def duplicate_ids(ids: Iterable[str]) -> list[str]:
    """Ids that occur more than once (two folders holding the same file name), in first-seen order."""
    seen: set[str] = set()
    dup: list[str] = []
    for i in ids:
        if i in seen and i not in dup:
            dup.append(i)
        seen.add(i)
    return dup
