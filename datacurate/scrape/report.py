"""What a scrape leaves for people: reports/attribution.csv and reports/scrape.html.

attribution.csv lists every kept scraped image (status ok in the catalog, whichever run saved it)
with its licence, author, title, source page and image URL, "unknown" where the engine did not
say: what a user needs to publish a dataset or write a model card. scrape.html holds this run's
table per class and engine, the engines that refused and why, and the same licence list.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from typing import Callable, Mapping

from datacurate.core.catalog import Catalog
from datacurate.core.fsutil import atomic_write_text
from datacurate.scrape.refusals import ADVICE
from datacurate.scrape.result import ScrapeResult, rejected_text
from datacurate.core.workspace import Workspace

COLUMNS = ["path", "class", "engine", "license", "license_version", "license_url", "author", "title",
           "source_page", "image_url"]
UNKNOWN = "unknown"


def provenance_of(cat: Catalog) -> Callable[[Mapping], dict]:
    """A lookup: a files row (path, home, sha256) -> the provenance of the scrape that saved it ({} if none)."""
    saved: dict[str, dict] = {}
    by_sha: dict[str, dict] = {}
    for p in cat.db.execute("SELECT * FROM provenance WHERE path IS NOT NULL AND reason IS NULL ORDER BY id"):
        saved[p["path"]] = dict(p)
        if p["sha256"]:
            by_sha[p["sha256"]] = dict(p)
    return lambda f: saved.get(f["home"]) or saved.get(f["path"]) or by_sha.get(f["sha256"]) or {}


def kept_images(ws: Workspace, cat: Catalog) -> list[dict]:
    """Every scraped file the catalog holds as ok, with the provenance of the run that saved it."""
    lookup = provenance_of(cat)
    rows = []
    for f in cat.files("source='scraped' AND status='ok'"):
        p = lookup(f)
        rows.append({
            "path": f["path"], "class": f["class"], "engine": p.get("engine") or UNKNOWN,
            "license": p.get("license") or UNKNOWN, "license_version": p.get("license_version") or "",
            "license_url": p.get("license_url") or "", "author": p.get("author") or UNKNOWN,
            "title": p.get("title") or "", "source_page": p.get("page_url") or "", "image_url": p.get("image_url") or "",
        })
    return rows


def write_reports(ws: Workspace, cat: Catalog, result: ScrapeResult) -> dict[str, Path]:
    """Write reports/attribution.csv and reports/scrape.html; return their paths."""
    rows = kept_images(ws, cat)
    csv_path = write_attribution(ws, cat, rows)
    html_path = ws.reports / "scrape.html"
    atomic_write_text(html_path, render_page(result, rows))
    return {"attribution": csv_path, "html": html_path}


def write_attribution(ws: Workspace, cat: Catalog, rows: list[dict] | None = None) -> Path:
    """reports/attribution.csv: every kept scraped image with its licence and author (also `datacurate report scrape`)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(kept_images(ws, cat) if rows is None else rows)
    csv_path = ws.reports / "attribution.csv"
    atomic_write_text(csv_path, buf.getvalue())
    return csv_path


def render_page(result: ScrapeResult, rows: list[dict]) -> str:
    """scrape.html from its jinja2 template (datacurate/data/scrape.html.j2)."""
    from datacurate.report.review import environment

    runs = [{"klass": k, "engine": e, "pages": t.pages, "empty": t.empty_pages, "unrecognised": t.unrecognised_pages,
             "candidates": t.candidates, "saved": t.saved, "rejected": rejected_text(t.rejected)}
            for (k, e), t in sorted(result.tallies.items())]
    refused = [(e, r.text(), ADVICE.get(r.kind, "")) for e, r in result.refusals_in_order()]
    env = environment()
    env.tests["web"] = lambda url: isinstance(url, str) and url.lower().startswith(("http://", "https://"))
    return env.get_template("scrape.html.j2").render(runs=runs, refused=refused, rows=rows,
                                                     licences=Counter(r["license"] for r in rows).most_common())
