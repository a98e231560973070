"""What clean writes under reports/: a CSV of every decision, an HTML page of what was set aside."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from datacurate.catalog import Catalog
from datacurate.fsutil import atomic_write_text
from datacurate.report.html import card, esc, table, write_page
from datacurate.workspace import Workspace

MAX_CARDS_PER_REASON = 200
NO_PREVIEW = {"empty", "unreadable", "not-an-image", "unsupported", "too-large", "corrupt"}


def write_reports(ws: Workspace, cat: Catalog, result, rows) -> dict[str, str]:
    """Write clean-decisions.csv, clean.html and the duplicates gallery; return their paths."""
    from datacurate.clean.gallery import write_duplicates_report, write_pairs_csv
    from datacurate.clean.run import _item

    now = result.moved  # where each file that moved in this run is now
    out = ws.reports
    decisions_csv = _write_decisions(out / "clean-decisions.csv", result, rows, now)
    html = _write_html(ws, out / "clean.html", result, now)
    hashes = cat.hashes(result.hash_kind)
    items = {r["path"]: _item(r, hashes) for r in cat.files()}
    pairs_csv = write_pairs_csv(result.pairs, out / "clean-pairs.csv")
    gallery = write_duplicates_report(ws, result.pairs, items, out / "clean-duplicates.html")
    return {"decisions_csv": ws.rel(decisions_csv), "html": ws.rel(html), "pairs_csv": ws.rel(pairs_csv),
            "duplicates_html": ws.rel(gallery)}


def _write_decisions(path: Path, result, rows, now: dict) -> Path:
    decided = {d.path: d for d in result.decisions}
    fixed = {f.path: f for f in result.fixes}
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["path", "now_at", "class", "source", "decision", "reason", "of", "distance", "flags", "detail"])
    for row in rows:
        p = row["path"]
        flags = ",".join(result.flags.get(p, ()))
        if p in decided:
            d = decided[p]
            writer.writerow([p, now.get(p, p), row["class"], row["source"], "set-aside", d.reason, d.of or "", d.distance,
                             flags, d.detail])
        elif p in fixed:
            f = fixed[p]
            writer.writerow([p, now.get(p, p), row["class"], row["source"], "fixed", f.action, "", "", flags, f.detail])
        else:
            writer.writerow([p, p, row["class"], row["source"], "keep", "", "", "", flags, row["detail"] or ""])
    atomic_write_text(path, buf.getvalue())
    return path


def decided_paths(result) -> set[str]:
    return {d.path for d in result.decisions}


def _write_html(ws: Workspace, path: Path, result, now: dict) -> Path:
    summary = [{"what": "scanned", "files": result.scanned}, {"what": "kept", "files": result.kept},
               {"what": "fixed (renamed or converted)", "files": len(result.fixes)}]
    summary += [{"what": f"set aside: {reason}", "files": n} for reason, n in result.counts.items()]
    body = [table(summary, ["what", "files"]),
            '<p class="muted">Nothing was deleted: set-aside files are in the quarantine folder; '
            "<code>datacurate restore</code> moves them back. Duplicate clusters, conflicts and leaks: "
            '<a href="clean-duplicates.html">clean-duplicates.html</a>.</p>']
    by_reason: dict[str, list] = {}
    for d in result.decisions:
        by_reason.setdefault(d.reason, []).append(d)
    for reason, decisions in sorted(by_reason.items()):
        cards = [card(ws.abs(now.get(d.path, d.path)), [d.path, d.detail or ""], preview=reason not in NO_PREVIEW)
                 for d in decisions[:MAX_CARDS_PER_REASON]]
        more = len(decisions) - MAX_CARDS_PER_REASON
        tail = f'<p class="muted">and {more} more (see clean-decisions.csv)</p>' if more > 0 else ""
        body.append(f"<h2>{esc(reason)} ({len(decisions)})</h2><div class=grid>{''.join(cards)}</div>{tail}")
    if result.fixes:
        rows = [{"file": f.path, "now": f.dst, "action": f.action, "why": f.detail} for f in result.fixes]
        body.append("<h2>fixed</h2>" + table(rows, ["file", "now", "action", "why"]))
    kept_flagged = [(p, f) for p, f in result.flags.items() if f and p not in decided_paths(result)]
    if result.flags:
        counts = [{"flag": f, "images": n} for f, n in result.flag_counts.items()]
        body.append("<h2>quality flags</h2>" + (table(counts, ["flag", "images"]) if counts else "<p>none</p>")
                    + '<p class="muted">Flags are reported for every image (clean-decisions.csv, column flags). '
                      "By default dark, light, low-information and placeholder scraped images are set aside; "
                      "<code>--drop FLAGS</code> sets flagged images of any source aside, <code>--keep-flags</code> none.</p>")
    if kept_flagged:
        cards = [card(ws.abs(now.get(p, p)), [p, ", ".join(f)]) for p, f in kept_flagged[:MAX_CARDS_PER_REASON]]
        body.append(f"<h2>kept, with flags ({len(kept_flagged)})</h2><div class=grid>{''.join(cards)}</div>")
    conflicts = result.conflicts_reported
    if conflicts:
        rows = [{"kept": p.a, "other": p.b, "distance": p.distance} for p in conflicts]
        body.append("<h2>label conflicts between originals (nothing moved: decide by hand)</h2>"
                    + table(rows, ["kept", "other", "distance"]))
    return write_page(path, f"datacurate clean: {ws.root.name}", "".join(body))
