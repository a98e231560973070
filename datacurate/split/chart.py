"""The balance report's HTML page: a stacked bar chart (matplotlib, inline SVG) and the table.

The chart is SVG with its text kept as text, so the browser draws class names in any script
(a PNG would show boxes for Chinese names wherever matplotlib has no CJK font).
"""

from __future__ import annotations

import html
import io
import unicodedata
import warnings

from datacurate.split.counts import Balance

COLORS = {"train original": "#2b6cb0", "train scraped": "#90cdf4", "valid": "#dd6b20", "test": "#805ad5"}


def bar_chart_svg(balance: Balance) -> str:
    """Horizontal stacked bars per class: train (original, scraped), valid, test; the minimum as a line."""
    import matplotlib
    from matplotlib.figure import Figure

    classes = balance.classes[::-1]  # first class on top
    parts = {"train original": [balance.n(c, "train", "original") for c in classes],
             "train scraped": [balance.n(c, "train", "scraped") for c in classes],
             "valid": [balance.n(c, "valid") for c in classes],
             "test": [balance.n(c, "test") for c in classes]}
    if not any(parts["test"]):
        parts.pop("test")
    y = list(range(len(classes)))
    height = 1.2 + 0.28 * max(len(classes), 1)
    label_in = max((_text_width(c) for c in classes), default=4) * 9 * 0.62 / 72  # 9 pt text
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 9}), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing-glyph warnings: the browser renders the text
        fig = Figure(figsize=(8, height))  # margins set by hand: a layout engine doubles the drawing time
        fig.subplots_adjust(left=min(0.5, (label_in + 0.25) / 8), right=0.97, top=1 - 0.45 / height, bottom=0.5 / height)
        ax = fig.add_subplot()
        left = [0] * len(classes)
        for name, values in parts.items():
            ax.barh(y, values, left=left, color=COLORS[name], label=name, height=0.7)
            left = [a + b for a, b in zip(left, values)]
        if balance.min_per_class:
            ax.axvline(balance.min_per_class, color="#c53030", linestyle="--", linewidth=1,
                       label=f"minimum ({balance.min_per_class} train)")
        ax.set_yticks(y, classes)
        ax.set_ylim(-0.6, len(classes) - 0.4)
        under = set(balance.under)
        for label in ax.get_yticklabels():
            if label.get_text() in under:
                label.set_color("#c53030")
        ax.set_xlabel("images")
        ax.grid(axis="x", alpha=0.3)
        fig.legend(loc="upper center", ncols=5, fontsize=8, frameon=False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def _text_width(s: str) -> int:
    """Width in half-width character cells (CJK characters count two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def html_page(balance: Balance, title: str = "Class balance") -> str:
    """A self-contained HTML page: summary, chart, table."""
    rows, cols = balance.table()
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr{}>{}</tr>".format(' class="under"' if r.get("flag") else "",
                               "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols))
        for r in rows)
    chart = bar_chart_svg(balance) if balance.classes else "<p>No images are split yet.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} th, td {{ padding: 2px 10px; border-bottom: 1px solid #ddd; }}
td:not(:first-child) {{ text-align: right; }} tr.under td {{ color: #c53030; }}
.chart svg {{ max-width: 100%; height: auto; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(balance.summary())}.{' Final mode: everything is in train.' if balance.final else ''}</p>
<div class="chart">{chart}</div>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
</body></html>
"""
