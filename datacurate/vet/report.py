"""reports/vet.html (jinja2) and reports/vet.csv: the evidence behind every flag.

The page shows, per class, the flagged images sorted by score, each beside its nearest originals
of its own class (and, for wrong-class, of the class it looks like), with score and threshold.
Pictures are small JPEG thumbnails in reports/vet-thumbs/ named by content hash (written once,
loaded lazily), so the page works offline and stays light at 10,000 images.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from datacurate.fsutil import atomic_write_bytes, atomic_write_text
from datacurate.vet.records import Score, VetResult
from datacurate.workspace import Workspace

THUMB = 128
CSV_COLUMNS = ("path", "class", "source", "distance", "threshold", "quality", "likeliest", "likeliest_prob", "flag",
               "looks_like", "sha256")

TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>vet: off-topic and wrong-class images</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse} td,th{padding:.25em .7em;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.row{display:flex;gap:.5em;align-items:flex-start;margin:.5em 0;padding:.4em;border:1px solid #eee;flex-wrap:wrap}
.card{width:{{ thumb + 8 }}px;font-size:.72em;word-break:break-all}
.card img,.card .none{width:{{ thumb }}px;height:{{ thumb }}px;object-fit:contain;background:#f4f4f4;display:block}
.flagged{border:2px solid #c33;padding:2px}
.sep{align-self:center;color:#777;font-size:.8em;width:5em}
.muted{color:#777}
</style></head><body>
<h1>vet: off-topic and wrong-class images</h1>
<p>{{ model }}. {{ verb }} {{ moved }} scraped images{% if listed %}; {{ listed }} originals listed, not moved{% endif %}.
Scores: off-topic = mean cosine distance to the nearest originals of the image's class (over the class threshold
is off-topic); wrong-class = probability of the class it looks like (out of sample). Every image's scores: vet.csv.</p>
<table><tr><th>class</th><th>originals</th><th>scraped</th><th>threshold</th><th>off-topic</th><th>wrong-class</th></tr>
{% for name, c in classes.items() %}<tr><td>{{ name }}</td><td class="n">{{ c.originals }}</td><td class="n">{{ c.scraped }}</td>
<td class="n">{{ "%.3f"|format(c.threshold) }}</td><td class="n">{{ c["off-topic"] }}</td><td class="n">{{ c["wrong-class"] }}</td></tr>
{% endfor %}</table>
{% if skipped %}<h2>Classes not vetted</h2><ul>{% for name, why in skipped.items() %}<li>{{ name }}: {{ why }}</li>{% endfor %}</ul>{% endif %}
{% if notes %}<p class="muted">{% for n in notes %}{{ n }}<br>{% endfor %}</p>{% endif %}
{% for name, rows in by_class.items() %}
<h2>{{ name }}</h2>
{% for r in rows %}<div class="row">
{{ card(r.path, [r.reason ~ (" (original, not moved)" if not r.move else ""), r.detail], r.flagged) }}
<span class="sep">nearest {{ r.klass }} originals</span>{% for p in r.own %}{{ card(p, [p.rsplit("/", 1)[-1]]) }}{% endfor %}
{% if r.looks_like %}<span class="sep">nearest {{ r.looks_like }} originals</span>{% for p in r.other %}{{ card(p, [p.rsplit("/", 1)[-1]]) }}{% endfor %}{% endif %}
</div>{% endfor %}
{% endfor %}
{% if kept %}<h2>Restored by you, not judged again</h2><ul>{% for p in kept %}<li>{{ p }}</li>{% endfor %}</ul>{% endif %}
</body></html>
"""


def write_reports(ws: Workspace, result: VetResult) -> dict[str, str]:
    """Write vet.csv and vet.html under reports/; returns {name: workspace-relative path}."""
    ws.reports.mkdir(parents=True, exist_ok=True)
    csv_path = ws.reports / "vet.csv"
    _write_csv(csv_path, result.scores)
    html_path = ws.reports / "vet.html"
    _write_html(ws, html_path, result)
    return {"csv": ws.rel(csv_path), "html": ws.rel(html_path)}


def _write_csv(path: Path, scores: list[Score]) -> None:
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(CSV_COLUMNS)
    for s in scores:
        out.writerow([s.path, s.klass, s.source, f"{s.distance:.5f}", f"{s.threshold:.5f}", _num(s.quality),
                      s.likeliest or "", _num(s.likeliest_prob), s.flag, s.looks_like or "", s.sha256])
    atomic_write_text(path, buf.getvalue())


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.5f}"


def _write_html(ws: Workspace, path: Path, result: VetResult) -> None:
    import jinja2
    from markupsafe import Markup, escape

    scores = {s.path: s for s in result.scores}
    shas = {s.path: s.sha256 for s in result.scores}
    thumbs = ws.reports / "vet-thumbs"

    def card(p: str, lines: list[str], flagged: bool = False) -> Markup:
        name = _thumbnail(ws, thumbs, p, shas.get(p))
        img = (f'<img loading="lazy" src="vet-thumbs/{escape(name)}" alt="">' if name else '<div class="none">no preview</div>')
        cls = "card flagged" if flagged else "card"
        return Markup(f'<div class="{cls}">{img}{"<br>".join(str(escape(x)) for x in lines if x)}</div>')

    by_class: dict[str, list[dict]] = {}
    for f in result.flags:
        s = scores.get(f.path)
        where = f.dst or f.path
        if f.dst:  # moved: the thumbnail comes from its new place
            shas[where] = shas.get(f.path, "")
        by_class.setdefault(f.klass, []).append({
            "path": where, "reason": f.reason, "detail": f"{f.path} — {f.detail}", "move": f.move, "flagged": True,
            "klass": f.klass, "looks_like": f.looks_like, "own": s.own_neighbours if s else [],
            "other": s.other_neighbours if s else []})
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(TEMPLATE).render(
        model=result.model, verb="Would set aside" if result.dry_run else "Set aside", moved=len(result.moved),
        listed=len(result.listed), classes=result.classes, skipped=result.skipped_classes, notes=result.notes,
        by_class=by_class, kept=result.kept_by_user, card=card, thumb=THUMB)
    atomic_write_text(path, html)


def _thumbnail(ws: Workspace, folder: Path, rel: str, sha: str | None) -> str | None:
    """The file name of rel's thumbnail in `folder` (made once per content), or None when it does not decode."""
    from datacurate.imageio import load_rgb

    if not sha:
        return None
    name = f"{sha[:24]}.jpg"
    if (folder / name).is_file():
        return name
    try:
        im = load_rgb(ws.abs(rel), THUMB)
        im.thumbnail((THUMB, THUMB))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=80)
    except Exception:  # noqa: BLE001 - a preview is not worth failing the report for
        return None
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / name, buf.getvalue())
    return name
