"""Review pages that scale: every card reachable, sorted by need, filterable, static (file:// works).

A stage hands over its cards (one per file set aside, with the images it was compared with).
Cards are sorted by how much they need a person: the decision closest to its threshold first.
They are written into pages of `page_size` cards for every view: all cards, one reason, one
class, one reason in one class. The first page of "all" is reports/<stem>.html (with the stage's
summary above); the others lie in reports/<stem>-pages/ and set `<base href="../">`, so every
URL on every page is relative to reports/. Two selects and a few lines of inline JavaScript jump
between views; the summary page lists the same views as plain links. Pictures are thumbnail
files (reports/thumbs/, one per content, made in parallel; a small JPEG, PNG, GIF or WebP is shown
as it is) that load lazily, each linking to the full-size file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

from datacurate.core.fsutil import atomic_write_text, remove_file
from datacurate.core.workspace import Workspace

PAGE_SIZE = 200
DIRECT_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")  # what every browser shows
DIRECT_SIDE = 256  # a picture at most twice its thumbnail (thumbs.SIZE) is shown as it is: the browser scales it
DIRECT_BYTES = 64 * 1024
PLAN = "plan — nothing was moved"


@dataclass
class Pic:
    """An image shown on a card: where it is now (workspace-relative), its content, a caption."""

    path: str
    sha256: str | None
    label: str = ""


@dataclass
class Card:
    """One decision for a person to review."""

    pic: Pic                     # the file the decision is about (where it is now)
    klass: str
    reason: str
    lines: list[str]             # caption lines (plain text)
    need: float = 0.0            # lower first: how close the decision came to going the other way
    compared: list[Pic] = field(default_factory=list)  # what it was compared with (keeper, neighbours)
    preview: bool = True         # False: a file that must not be decoded (a bomb, not an image)


def environment():
    """The jinja2 environment of datacurate's report templates (datacurate/data/*.html.j2)."""
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("datacurate", "data"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


class Pictures:
    """Thumbnails and links for the pictures a report shows, relative to reports/.

    A small picture a browser shows as it is (JPEG, PNG, GIF or WebP, at most DIRECT_SIDE px and
    DIRECT_BYTES) is its own thumbnail: no second decode, no file made. Known from the catalog's
    files rows when `cat` is given, else from the file's header.
    """

    def __init__(self, ws: Workspace, quiet: bool = True, cat=None):
        self.ws = ws
        self.quiet = quiet
        self.cat = cat
        self.wanted: dict[str, Path] = {}
        self.thumbs: dict[str, str] = {}
        self.direct: set[str] = set()

    def want(self, pics: Iterable[Pic]) -> None:
        for p in pics:
            if p.sha256 and p.sha256 not in self.wanted:
                self.wanted[p.sha256] = self.ws.abs(p.path)

    def make(self) -> None:
        """Make the thumbnails not made yet (in parallel); small pictures are shown as they are."""
        from datacurate.report.thumbs import FOLDER, make_thumbnails

        todo = {sha: path for sha, path in self.wanted.items() if sha not in self.thumbs and sha not in self.direct}
        self.direct |= self._small(todo)
        present = [(path, sha) for sha, path in todo.items() if sha not in self.direct and path.is_file()]
        made = make_thumbnails(self.ws.reports / FOLDER, present, quiet=self.quiet)
        self.thumbs.update({sha: f"{FOLDER}/{name}" for sha, name in made.items()})

    def _small(self, todo: dict[str, Path]) -> set[str]:
        """The contents among `todo` small enough to show as they are."""
        if self.cat is not None:
            rows = self.cat.db.execute(
                f"SELECT DISTINCT sha256 FROM files WHERE problem IS NULL AND format IN ({','.join('?' * len(DIRECT_FORMATS))}) "
                "AND max(width, height) <= ? AND size <= ?", (*DIRECT_FORMATS, DIRECT_SIDE, DIRECT_BYTES))
            return {r[0] for r in rows if r[0] in todo}
        return {sha for sha, path in todo.items() if _small_file(path)}

    def thumb(self, pic: Pic) -> str | None:
        if pic.sha256 in self.direct:
            return self.href(pic)
        return self.thumbs.get(pic.sha256 or "")

    def href(self, pic: Pic) -> str | None:
        """The full-size file, relative to reports/ (None when it is not on disk)."""
        if "_hrefs" not in self.__dict__:
            self._up, self._hrefs = os.path.relpath(self.ws.root, self.ws.reports), {}
        if pic.path not in self._hrefs:
            self._hrefs[pic.path] = self._href(pic.path)
        return self._hrefs[pic.path]

    def _href(self, path: str) -> str | None:
        from datacurate.core.fsutil import text_path

        if not os.path.isfile(os.path.join(self.ws.root, text_path(path))):
            return None
        return quote(os.fsencode(os.path.join(self._up, text_path(path))).replace(os.sep.encode(), b"/"))


def _small_file(path: Path) -> bool:
    """A file a browser may show as its own thumbnail (read from its header; False when it cannot be read)."""
    from PIL import Image

    try:
        if path.stat().st_size > DIRECT_BYTES:
            return False
        with Image.open(path) as im:
            return im.format in DIRECT_FORMATS and max(im.size) <= DIRECT_SIDE
    except Exception:  # noqa: BLE001 - not an image, gone: a thumbnail (or "no preview") instead
        return False


def write_review(ws: Workspace, pics: Pictures, stem: str, title: str, cards: list[Card], *, summary: Any,
                 plan: bool, page_size: int = PAGE_SIZE, reason_label: str = "reason") -> dict[str, str]:
    """Write reports/<stem>.html and reports/<stem>-pages/*.html; return {"html": path, "pages": n}.

    `summary` is the stage's HTML (Markup) shown above the cards on the first page.
    """
    env = environment()
    macros = env.get_template("review-macros.html.j2").module
    cards = sorted(cards, key=lambda c: (c.need, c.reason, c.pic.path))
    html = [macros.card(c, pics) for c in cards]
    reasons = sorted({c.reason for c in cards})
    classes = sorted({c.klass for c in cards})
    folder = ws.reports / f"{stem}-pages"
    views = _views(cards, reasons, classes)
    urls: dict[tuple[int, int], list[str]] = {}
    by_members: dict[tuple[int, ...], list[str]] = {}
    for key, members in views.items():
        if tuple(members) in by_members:  # the same cards as a view already paged (one class only, ...)
            urls[key] = by_members[tuple(members)]
            continue
        n = max(1, -(-len(members) // page_size))
        urls[key] = by_members[tuple(members)] = [_url(stem, key, i) for i in range(n)]
    first = {f"{r}-{c}": pages[0] for (r, c), pages in urls.items()}
    written: set[Path] = set()
    page = env.get_template("review.html.j2")
    for key, members in views.items():
        pages = urls[key]
        if _url(stem, key, 0) != pages[0]:
            continue  # shares another view's pages
        for i, url in enumerate(pages):
            chunk = members[i * page_size:(i + 1) * page_size]
            text = page.render(
                title=title, plan=PLAN if plan else "", summary=summary if key == (0, 0) and i == 0 else None,
                stem=stem, base="" if i == 0 and key == (0, 0) else "../", cards=[html[j] for j in chunk],
                start=i * page_size, total=len(members), all_cards=len(cards), page=i, pages=pages,
                reasons=reasons, classes=classes, current=key, views=json.dumps(first, ensure_ascii=False).replace("<", "\\u003c"),
                counts=_counts(views, reasons, classes), reason_label=reason_label, first=first)
            target = ws.reports / url
            atomic_write_text(target, text, sync=False)  # a page is made again from the catalog when lost
            written.add(target)
    _sweep(folder, written)
    return {"html": f"{stem}.html", "pages": str(len(written))}


def _views(cards: list[Card], reasons: list[str], classes: list[str]) -> dict[tuple[int, int], list[int]]:
    """(reason index, class index) -> card indices; index 0 means every reason / class."""
    r_of = {r: i + 1 for i, r in enumerate(reasons)}
    c_of = {c: i + 1 for i, c in enumerate(classes)}
    views: dict[tuple[int, int], list[int]] = {(0, 0): []}
    for j, c in enumerate(cards):
        r, k = r_of[c.reason], c_of[c.klass]
        for key in ((0, 0), (r, 0), (0, k), (r, k)):
            views.setdefault(key, []).append(j)
    return views


def _counts(views, reasons, classes) -> dict[str, int]:
    return {f"{r}-{c}": len(m) for (r, c), m in views.items()}


def _url(stem: str, key: tuple[int, int], i: int) -> str:
    """A page's path relative to reports/."""
    if key == (0, 0) and i == 0:
        return f"{stem}.html"
    return f"{stem}-pages/{key[0]}-{key[1]}-{i + 1}.html"


def _sweep(folder: Path, written: set[Path]) -> None:
    """Remove pages of an earlier, larger report (our own files only: *.html in our folder)."""
    if folder.is_dir():
        for old in folder.glob("*.html"):
            if old not in written:
                remove_file(old)
