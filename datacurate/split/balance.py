"""Class-balance report: the Balance of a split (from its records or the catalog), written as balance.csv and balance.html."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from typing import Iterable

from datacurate.core.catalog import Catalog
from datacurate.core.fsutil import atomic_write_text
from datacurate.split.chart import html_page
from datacurate.split.counts import Balance

CSV_NAME, HTML_NAME = "balance.csv", "balance.html"


def from_records(records: Iterable[tuple[str, str, str]], min_per_class: int, final: bool = False) -> Balance:
    """A Balance from (class, split, source) triples."""
    return Balance(Counter(records), min_per_class, final)


def from_catalog(cat: Catalog, min_per_class: int) -> Balance:
    """The balance of the split the catalog records (files.split of files still in place)."""
    rows = cat.db.execute(
        "SELECT class, split, source, COUNT(*) FROM files WHERE split IS NOT NULL AND status='ok' "
        "AND source IN ('original','scraped') GROUP BY class, split, source").fetchall()
    return Balance(Counter({(c, s, o): n for c, s, o, n in rows}), min_per_class)


def to_csv(balance: Balance) -> str:
    rows = balance.rows()
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def write(balance: Balance, folder: Path, title: str = "Class balance") -> dict[str, Path]:
    """Write balance.csv and balance.html (chart inline) into `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": folder / CSV_NAME, "html": folder / HTML_NAME}
    atomic_write_text(paths["csv"], to_csv(balance))
    atomic_write_text(paths["html"], html_page(balance, title))
    return paths
