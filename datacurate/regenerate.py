"""`datacurate report [STAGE...]`: every stage's reports again, from the catalog alone.

clean: clean.html (+ pages), clean-decisions.csv, clean-pairs.csv, clean-duplicates.html;
vet: vet.html (+ pages), vet.csv, vet-map.html; split: balance.csv, balance.html; scrape: attribution.csv.
Nothing is moved, nothing decoded but the thumbnails not made yet.
"""

from __future__ import annotations

from typing import Sequence

from datacurate import stages as registry
from datacurate.core.catalog import Catalog, open_catalog
from datacurate.core.errors import UserError
from datacurate.core.workspace import Workspace

STAGES = registry.REPORTED  # the stage registry says which stages have reports to write again, in what order
ALIASES = {"balance": "split"}  # `datacurate report balance`, as before


def report(ws: Workspace, stages: Sequence[str] = (), *, min_per_class: int | None = None,
           page_size: int | None = None, quiet: bool = True) -> dict[str, dict[str, str]]:
    """Write the reports of `stages` (default: every stage the catalog holds results of); {stage: {name: path}}."""
    wanted = [ALIASES.get(s, s) for s in stages]
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise UserError(f"no reports for {unknown[0]!r}: choose among {', '.join(STAGES)}")
    if page_size is not None and (isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1):
        raise UserError(f"--page-size {page_size!r} must be a positive whole number")
    out: dict[str, dict[str, str]] = {}
    with open_catalog(ws, create=False) as cat:
        for stage in dict.fromkeys(wanted or STAGES):
            if not wanted and not _has(cat, stage):
                continue
            out[stage] = WRITERS[stage](ws, cat, min_per_class=min_per_class, page_size=page_size, quiet=quiet)
    ws.reports.mkdir(parents=True, exist_ok=True)
    return out


def _has(cat: Catalog, stage: str) -> bool:
    sql = {"clean": "SELECT 1 FROM meta WHERE key='cleaned' UNION ALL SELECT 1 FROM events WHERE action IN "
                    "('quarantine','rename','convert') LIMIT 1",  # older catalogs: what a clean did
           "vet": "SELECT 1 FROM vet_scores LIMIT 1",
           "split": "SELECT 1 FROM files WHERE split IS NOT NULL LIMIT 1",
           "scrape": "SELECT 1 FROM provenance LIMIT 1"}[stage]
    return cat.db.execute(sql).fetchone() is not None


def _clean(ws: Workspace, cat: Catalog, *, page_size, quiet, **_) -> dict[str, str]:
    from datacurate.clean.report import write_from_catalog

    if not _has(cat, "clean"):
        raise UserError("the catalog records no clean of this workspace; run `datacurate clean` first")
    return write_from_catalog(ws, cat, quiet=quiet, page_size=page_size)


def _vet(ws: Workspace, cat: Catalog, *, page_size, quiet, **_) -> dict[str, str]:
    from datacurate.vet.report import write_from_catalog

    if not _has(cat, "vet"):
        raise UserError("the catalog records no vet scores; run `datacurate vet` first")
    return write_from_catalog(ws, cat, quiet=quiet, page_size=page_size)


def _split(ws: Workspace, cat: Catalog, *, min_per_class, **_) -> dict[str, str]:
    from datacurate.core.terminal import table_lines
    from datacurate.split import balance
    from datacurate.split.options import SplitOptions

    opts = ws.options(SplitOptions, {"min_per_class": min_per_class})
    bal = balance.from_catalog(cat, opts.min_per_class)
    if not bal.classes:
        raise UserError("the catalog records no split; run `datacurate split` first")
    paths = balance.write(bal, ws.reports)
    rows, cols = bal.table()
    return {name: ws.rel(p) for name, p in paths.items()} | {"table": "\n".join(table_lines(rows, cols)), "summary": bal.summary()}


def _scrape(ws: Workspace, cat: Catalog, **_) -> dict[str, str]:
    from datacurate.scrape.report import write_attribution

    return {"attribution": ws.rel(write_attribution(ws, cat))}


WRITERS = {"clean": _clean, "vet": _vet, "split": _split, "scrape": _scrape}
