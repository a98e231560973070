"""Self-contained HTML pages: one template, inline thumbnails, atomic writes."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

from datacurate.fsutil import atomic_write_text

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse} td,th{padding:.25em .7em;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:.6em}
.card{width:170px;font-size:.75em;border:1px solid #ddd;border-radius:4px;padding:4px;word-break:break-all}
.card img,.card .none{width:160px;height:160px;object-fit:contain;background:#f4f4f4;display:block}
.card .none{display:flex;align-items:center;justify-content:center;color:#999}
.row{display:flex;gap:.6em;align-items:flex-start;margin:.5em 0;padding:.4em;border:1px solid #eee}
.kept{border-color:#2a7;box-shadow:0 0 0 2px #2a7 inset}
.muted{color:#777}
"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def thumbnail_jpeg(path: str | os.PathLike, size: int = 160) -> bytes | None:
    """A JPEG thumbnail (longest side `size`) of the image at `path`, or None when it cannot be decoded."""
    from datacurate.imageio import load_rgb

    try:
        im = load_rgb(path, size)
        im.thumbnail((size, size))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=80)
    except Exception:  # noqa: BLE001 - broken files are exactly what these pages show
        return None
    return buf.getvalue()


def thumbnail(path: str | os.PathLike, size: int = 160) -> str | None:
    """A JPEG data URI of the image at `path`, or None when it cannot be decoded."""
    data = thumbnail_jpeg(path, size)
    return None if data is None else "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def card(path: str | os.PathLike, lines: list[str], *, kept: bool = False, preview: bool = True) -> str:
    """One thumbnail with caption lines (plain text); preview=False for files that must not be decoded."""
    uri = thumbnail(path) if preview else None
    img = f'<img src="{uri}" alt="">' if uri else '<div class="none">no preview</div>'
    caption = "<br>".join(esc(x) for x in lines)
    return f'<div class="card{" kept" if kept else ""}">{img}{caption}</div>'


def table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"n" if isinstance(r.get(c), (int, float)) else ""}">{esc(r.get(c, ""))}</td>' for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def page(title: str, body: str) -> str:
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>{body}</body></html>")


def write_page(path: Path, title: str, body: str) -> Path:
    atomic_write_text(path, page(title, body))
    return path
