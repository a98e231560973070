"""`split --manifest csv|jsonl`: what was placed where, for Hugging Face `datasets` and webdataset users.

- data/split/manifest.csv (or .jsonl): path (under data/split), label, split, sha256 (of the placed file),
  source and licence (from the scrape's provenance for scraped images; `original` and empty for yours).
- data/split/<split>/metadata.jsonl: Hugging Face imagefolder's convention, `file_name` relative to the
  split folder, then label, sha256, source, licence: `load_dataset("imagefolder", data_dir="data/split")`
  reads train and validation with these columns. Always JSON lines: from a CSV `datasets` guesses the types
  with pandas, so an all-empty licence column (originals only) became float64 and clashed with the split
  holding a scraped image, and a class named 007 became the number 7.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable, Mapping, Sequence

from datacurate.core.index import sha256_file

COLUMNS = ["path", "label", "split", "sha256", "source", "licence"]
METADATA = ["file_name", "label", "sha256", "source", "licence"]
UNKNOWN = "unknown"


def rows_for(placements: Sequence, items: Mapping[str, Mapping], provenance: Callable[[Mapping], dict]) -> list[dict]:
    """One manifest row per placement; `items` maps a catalog path to its files row (class, source, sha256, home)."""
    out = []
    for path, p in placements:
        row = items[path]
        sha = sha256_file(p.src) if p.made else row["sha256"]
        source, licence = "original", ""
        if row["source"] == "scraped":
            prov = provenance(row)
            source = prov.get("page_url") or prov.get("image_url") or UNKNOWN
            licence = " ".join(x for x in (prov.get("license"), prov.get("license_version")) if x) or UNKNOWN
        out.append({"path": f"{p.split}/{p.rel}", "label": row["class"], "split": p.split, "sha256": sha,
                    "source": source, "licence": licence})
    out.sort(key=lambda r: r["path"])
    return out


def render(rows: list[dict], columns: list[str], fmt: str) -> bytes:
    """CSV (with a header) or JSON lines of `rows`, keeping only `columns`."""
    if fmt == "jsonl":
        return "".join(json.dumps({c: r[c] for c in columns}, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


METADATA_NAME = "metadata.jsonl"  # JSON lines whatever --manifest says: every value stays a string


def per_split(rows: list[dict], splits: Sequence[str]) -> dict[str, bytes]:
    """{"<split>/metadata.jsonl": content}: imagefolder metadata, file_name relative to the split folder."""
    out = {}
    for s in splits:
        mine = [dict(r, file_name=r["path"][len(s) + 1:]) for r in rows if r["split"] == s]
        out[f"{s}/{METADATA_NAME}"] = render(mine, METADATA, "jsonl")
    return out


def manifest_path(split_dir: Path, fmt: str) -> Path:
    return split_dir / f"manifest.{fmt}"
