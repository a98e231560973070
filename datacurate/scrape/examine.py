"""What scrape checks in a download, here or on a Ray worker (scrape.remote): the full decode, and
the X-Robots-Tag header that forbids keeping an image."""

from __future__ import annotations

from dataclasses import dataclass

from datacurate.core.imageio import inspect_bytes
from datacurate.scrape.net import Refused, x_robots_forbids
from datacurate.scrape.options import ROBOTS_TOKEN
from datacurate.scrape.store import to_trainable

HASH_KINDS = ("phash",)


@dataclass
class Examined:
    """What the full decode found in a download (here or on a Ray worker): the bytes to save, or why not."""

    status: int | None
    content_type: str | None
    nbytes: int | None
    sha256: str | None = None
    reason: str | None = None
    detail: str = ""
    data: bytes = b""
    saved: object = None          # the Inspection of `data` (a GIF's PNG, or the download itself)


def examine(got, limits) -> Examined:
    """Decode fully (the same check as clean), and what would be saved: the bytes, or a PNG for a GIF."""
    ex = Examined(got.status, got.content_type, len(got.data))
    ins = inspect_bytes(got.data, limits, HASH_KINDS)
    ex.sha256 = ins.sha256
    if not ins.ok:
        ex.reason, ex.detail = ins.reason, ins.detail
        return ex
    ex.data, ex.saved = to_trainable(got.data, ins, limits)
    if not ex.saved.ok:
        ex.reason, ex.detail = ex.saved.reason, ex.saved.detail
    return ex


def check_x_robots(status: int, headers) -> None:
    """Refuse a download whose X-Robots-Tag forbids datacurate's robots token (Net.fetch's check_headers)."""
    value = headers.get("X-Robots-Tag")
    if value:
        word = x_robots_forbids(value, ROBOTS_TOKEN)
        if word:
            raise Refused("x-robots-tag", f"X-Robots-Tag: {value}", status=status,
                          content_type=headers.get("Content-Type"))
