"""A browser-free check of datacurate's HTML reports (html.parser only).

`crawl(page)` parses a page and every local page it links to (under the same reports folder),
checks that every <img src> and <a href> to a local file exists (a <base href> is honoured), and
returns what it found: the cards per page, and the pager and view links.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class Page:
    path: Path
    title: str = ""
    base: str = ""
    imgs: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    cards: list[dict] = field(default_factory=list)    # {"class", "reason", "file": first link in the card}
    views: dict[str, str] = field(default_factory=dict)  # the filter's view -> first page
    text: str = ""


class _Parser(HTMLParser):
    def __init__(self, page: Page):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.stack: list[str] = []
        self.in_title = self.in_script = False
        self.card: dict | None = None
        self.card_depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in ("img", "br", "meta", "base", "input"):
            self.stack.append(tag)
        if tag == "base":
            self.page.base = a.get("href", "")
        elif tag == "title":
            self.in_title = True
        elif tag == "script":
            self.in_script = True
        elif tag == "img":
            self.page.imgs.append(a["src"])
        elif tag == "a" and a.get("href"):
            self.page.links.append(a["href"])
            if self.card is not None and self.card.get("file") is None:
                self.card["file"] = a["href"]
        if tag == "div" and "card" in (a.get("class") or "").split() and "data-reason" in a:
            self.card = {"class": a["data-class"], "reason": a["data-reason"], "file": None}
            self.card_depth = len(self.stack)

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        elif tag == "script":
            self.in_script = False
        if self.stack and self.stack[-1] == tag:
            if tag == "div" and self.card is not None and len(self.stack) == self.card_depth:
                self.page.cards.append(self.card)
                self.card = None
            self.stack.pop()
        else:
            raise AssertionError(f"{self.page.path}: </{tag}> closes <{self.stack[-1] if self.stack else None}>")

    def handle_data(self, data):
        if self.in_title:
            self.page.title += data
        if self.in_script:
            m = re.search(r"var VIEWS = (\{.*?\});", data, re.S)
            if m:
                self.page.views = json.loads(m.group(1))
        else:
            self.page.text += data


def parse(path: Path) -> Page:
    page = Page(path)
    parser = _Parser(page)
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    assert not parser.stack or parser.stack == ["html"] or parser.stack == [], (path, parser.stack)
    return page


def local(page: Page, url: str) -> Path | None:
    """The file a relative URL names (None for other schemes and in-page anchors)."""
    parts = urlsplit(url)
    if parts.scheme or url.startswith("#") or not parts.path:
        return None
    return (page.path.parent / page.base / unquote(parts.path)).resolve()


def crawl(start: Path) -> dict[Path, Page]:
    """Every .html page reachable from `start` inside its folder tree; every local img and link checked."""
    root = start.parent.resolve()
    pages: dict[Path, Page] = {}
    todo = [start.resolve()]
    while todo:
        path = todo.pop()
        if path in pages:
            continue
        page = pages[path] = parse(path)
        for url in page.imgs + page.links + list(page.views.values()):
            target = local(page, url)
            if target is None:
                continue
            assert target.exists(), f"{path.name}: {url} -> {target} does not exist"
            if target.suffix == ".html" and root in target.parents:
                todo.append(target)
    return pages
