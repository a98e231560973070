"""reports/vet.html (+ pages, jinja2) and reports/vet.csv: the evidence behind every flag.

Each flagged image is a card beside its nearest originals of its own class (and, for wrong-class,
of the class it looks like), with score and threshold, the closest calls first, in pages of
datacurate.report.review (filterable by class and reason, thumbnails as files). A dry run
reports its plan (marked as such); a real run, and `datacurate report vet`, report from the
catalog (table vet_scores): every image vet scored, and every image it holds in quarantine now;
they also write reports/vet-map.html, the cached embeddings in 2-D (datacurate.vet.projection).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import Markup

from datacurate.core.catalog import Catalog
from datacurate.core.fsutil import atomic_write_text
from datacurate.report.review import Card, Pic, Pictures, environment, write_review
from datacurate.vet.records import REASONS, Score, VetResult
from datacurate.core.workspace import Workspace

CSV_COLUMNS = ("path", "class", "source", "distance", "threshold", "quality", "likeliest", "likeliest_prob", "flag",
               "looks_like", "sha256", "detail")


@dataclass
class VetView:
    """Everything vet's pages show."""

    plan: bool
    model: str
    classes: dict[str, dict]
    cards: list[Card]
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    moved: int = 0
    listed: int = 0
    judge: dict = field(default_factory=dict)


def write_reports(ws: Workspace, result: VetResult, *, cat: Catalog | None = None, quiet: bool = True,
                  page_size: int | None = None) -> dict[str, str]:
    """Write vet.csv and vet.html (+ pages) under reports/; returns {name: workspace-relative path}.

    With `cat` (a real run) they are written from the catalog; without (a dry run), from the plan.
    """
    if cat is not None:
        return write_from_catalog(ws, cat, result=result, quiet=quiet, page_size=page_size)
    ws.reports.mkdir(parents=True, exist_ok=True)
    rows = [_score_row(s) for s in result.scores]
    return _write(ws, rows, _plan_view(result), quiet, page_size)


def write_from_catalog(ws: Workspace, cat: Catalog, *, result: VetResult | None = None, quiet: bool = True,
                       page_size: int | None = None) -> dict[str, str]:
    """vet.csv, vet.html and vet-map.html from the catalog's vet_scores (`datacurate report vet`)."""
    cards, classes, scores = catalog_cards(cat)
    view = VetView(False, result.model if result else (scores[0]["model"] if scores else ""), classes, cards,
                   moved=sum(1 for c in cards if "not moved" not in c.lines[0]),
                   listed=sum(1 for c in cards if "not moved" in c.lines[0]))
    if result is not None:
        view.skipped, view.notes, view.kept = result.skipped_classes, result.notes, result.kept_by_user
        view.judge = result.judge
        for name, c in result.classes.items():
            if name in classes:
                classes[name]["calibration"] = c.get("calibration")
    rows = [{k: s[k] for k in CSV_COLUMNS if k != "path"} | {"path": s["path"]} for s in scores]
    out = _write(ws, rows, view, quiet, page_size)
    from datacurate.vet.projection import write_map

    found = write_map(ws, cat, quiet=quiet)
    return out | ({"map": found} if found else {})


def catalog_cards(cat: Catalog) -> tuple[list[Card], dict[str, dict], list[dict]]:
    """The cards of what vet holds in quarantine and the originals it lists, per-class counts, and every score."""
    scores = [dict(r) for r in cat.db.execute("SELECT * FROM vet_scores ORDER BY class, path")]
    where = {}
    for r in cat.db.execute("SELECT path, sha256, status, reason FROM files WHERE sha256 IS NOT NULL ORDER BY status='ok'"):
        where[r["sha256"]] = (r["path"], r["status"], r["reason"])  # a quarantined copy wins over one in place
    cards, classes = [], {}
    for s in scores:
        now, status, reason = where.get(s["sha256"], (None, None, None))
        c = classes.setdefault(s["class"], {"originals": 0, "scraped": 0, "threshold": 0.0, "off-topic": 0,
                                            "wrong-class": 0, "calibration": None})  # the run's, when there is one
        if s["source"] in ("original", "scraped") and now and (status == "ok" or reason in REASONS):
            c["originals" if s["source"] == "original" else "scraped"] += 1
            c["threshold"] = round(max(c["threshold"], s["threshold"]), 4)
        moved = status == "quarantined" and reason in REASONS
        listed = s["flag"] and s["source"] == "original" and status == "ok"
        if now and (moved or listed):
            if moved:
                c[reason] += 1
            cards.append(_card(now, s, moved))
    return cards, classes, scores


def _score_row(s: Score) -> dict:
    return {"path": s.path, "class": s.klass, "source": s.source, "distance": s.distance, "threshold": s.threshold,
            "quality": s.quality, "likeliest": s.likeliest, "likeliest_prob": s.likeliest_prob, "flag": s.flag,
            "looks_like": s.looks_like, "sha256": s.sha256, "detail": s.detail or None,
            "neighbours": json.dumps({"own": [[p, None] for p in s.own_neighbours],
                                      "other": [[p, None] for p in s.other_neighbours]})}


def _plan_view(result: VetResult) -> VetView:
    scores = {s.path: s for s in result.scores}
    shas = {s.path: s.sha256 for s in result.scores}
    cards = []
    for f in result.flags:
        row = _score_row(scores[f.path])
        row["neighbours"] = json.dumps({"own": [[p, shas.get(p)] for p in scores[f.path].own_neighbours],
                                        "other": [[p, shas.get(p)] for p in scores[f.path].other_neighbours]})
        cards.append(_card(f.dst or f.path, row, f.move))
    return VetView(result.dry_run, result.model, result.classes, cards, result.skipped_classes, result.notes,
                   result.kept_by_user, len(result.moved), len(result.listed), result.judge)


def _card(now: str, s: dict, moved: bool) -> Card:
    near = json.loads(s["neighbours"] or "{}")
    compared = [Pic(p, sha, f"nearest {s['class']} original") for p, sha in near.get("own", [])]
    compared += [Pic(p, sha, f"nearest {s['looks_like']} original") for p, sha in near.get("other", [])]
    if s["flag"] == "off-topic":
        need = (s["distance"] - s["threshold"]) / max(s["threshold"], 1e-9)
        score = f"distance {s['distance']:.3f} (threshold {s['threshold']:.3f})"
    else:
        need = s["likeliest_prob"] or 0.0
        score = f"looks like {s['looks_like']} (p={need:.2f})"
    head = s["flag"] + ("" if moved or s["source"] != "original" else " (original, not moved)")
    lines = [head, s["path"] if now == s["path"] else f"{s['path']} (now at {now})", score, s.get("detail") or ""]
    return Card(Pic(now, s["sha256"], s["source"]), s["class"], s["flag"], [x for x in lines if x], need, compared)


def _write(ws: Workspace, rows: list[dict], view: VetView, quiet: bool, page_size: int | None) -> dict[str, str]:
    csv_path = ws.reports / "vet.csv"
    _write_csv(csv_path, rows)
    pics = Pictures(ws, quiet)
    pics.want(p for c in view.cards for p in [c.pic, *c.compared])
    pics.make()
    summary = Markup(environment().get_template("vet-summary.html.j2").render(v=view))
    pages = write_review(ws, pics, "vet", "vet: off-topic and wrong-class images", view.cards, summary=summary,
                         plan=view.plan, **({"page_size": page_size} if page_size else {}))
    return {"csv": ws.rel(csv_path), "html": f"{ws.rel(ws.reports)}/{pages['html']}"}


def _write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(CSV_COLUMNS)
    for s in rows:
        out.writerow([s["path"], s["class"], s["source"], f"{s['distance']:.5f}", f"{s['threshold']:.5f}",
                      _num(s["quality"]), s["likeliest"] or "", _num(s["likeliest_prob"]), s["flag"],
                      s["looks_like"] or "", s["sha256"], s.get("detail") or ""])
    atomic_write_text(path, buf.getvalue())


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.5f}"
