"""Thumbnails for the HTML reports (the pages themselves are jinja2 templates in datacurate/data)."""

from __future__ import annotations

import base64
import html
import io
import os


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def thumbnail_jpeg(path: str | os.PathLike, size: int = 160) -> bytes | None:
    """A JPEG thumbnail (longest side `size`) of the image at `path`, or None when it cannot be decoded."""
    from datacurate.core.imageio import load_rgb

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
