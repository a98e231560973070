"""Refusals named as refusals: an engine that will not answer this client says so in its own words.

Three kinds, apart from a page that is well-formed but holds no results (empty) and one whose
markup the parser does not know (format-changed):

- `blocked`: the engine refuses this client: HTTP 403 or 429 (after the retries), a CAPTCHA, a
  JavaScript wall (Google's /httpservice/retry/enablejs), Google's /sorry/, Baidu's antiFlag.
- `bad-key`: the engine rejects the API key (HTTP 401, Flickr code 100, Openverse "Invalid token").
- `engine-error`: the engine answers with an error of its own (an API error code, HTTP 400 or 5xx).

datacurate respects a refusal: it never disguises itself as a browser to get past one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

KINDS = ("blocked", "bad-key", "engine-error")
# What a user can do, per kind (the summary prints it after the engine's words).
ADVICE = {
    "blocked": "datacurate does not disguise itself as a browser to get past a refusal: use another engine "
               "({others}), or list one after it with --fallback",
    "bad-key": "check the key (--flickr-key / $FLICKR_APIKEY; new Flickr keys need a Pro account; "
               "--openverse-token / $OPENVERSE_TOKEN)",
    "engine-error": "the engine reported an error of its own; try again later or use another engine",
}
ALTERNATIVES = ("bing", "wikimedia", "openverse", "baidu")  # engines "blocked" suggests, less the ones that refused


def advice(kind: str, refused: list[str]) -> str:
    """What to do about a refusal of `kind`, never suggesting an engine among `refused`."""
    others = ", ".join(e for e in ALTERNATIVES if e not in refused)
    return ADVICE[kind].format(others=others) if kind in ADVICE else ""


_CAPTCHA = re.compile(rb"captcha|cf-chl-|challenge-platform|/sorry/index|unusual traffic", re.I)
_JS_WALL = re.compile(rb"/httpservice/retry/enablejs", re.I)


@dataclass(frozen=True)
class Refusal:
    """Why an engine gave no results: its kind, the engine's own words, the HTTP status, the URL."""

    kind: str
    words: str
    status: int | None = None
    url: str | None = None

    def text(self) -> str:
        status = f"HTTP {self.status}: " if self.status not in (None, 200) and f"HTTP {self.status}" not in self.words else ""
        return f"{self.kind}: {status}{self.words}"


def words_of(content: bytes, limit: int = 200) -> str:
    """A page's own words: a JSON `message`/`detail`/`error.info`, else the HTML title and heading,
    else the first line of text."""
    text = content.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        err = doc.get("error")
        for value in (doc.get("message"), doc.get("detail"), err.get("info") if isinstance(err, dict) else err,
                      doc.get("description")):
            if isinstance(value, str) and value.strip():
                return _clip(value, limit)
    if "<" in text:
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(text, "html.parser")
        for tag in soup(["script", "style"]):
            tag.decompose()
        parts = [t.get_text(" ", strip=True) for t in soup.find_all(["title", "h1", "h2", "p"])[:4]]
        parts = [p for p in dict.fromkeys(parts) if p]
        if parts:
            return _clip(": ".join(parts), limit)
        text = soup.get_text(" ", strip=True)
    return _clip(text.splitlines()[0] if text else "", limit) or "(no text)"


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def from_status(status: int | None, content: bytes, url: str | None) -> Refusal | None:
    """A refused result-page request (non-200 after retries) as a Refusal; None when it is no refusal
    (404: a wrong base URL, not the engine's answer)."""
    if status is None:
        return None
    body = content or b""
    if status == 401:
        return Refusal("bad-key", words_of(body) if body else "HTTP 401 Unauthorized", status, url)
    if status in (403, 429) or (url and "/sorry/" in url):
        return Refusal("blocked", _blocked_words(body, url, status), status, url)
    if status == 400 or status >= 500:
        return Refusal("engine-error", words_of(body) if body else f"HTTP {status}", status, url)
    return None


def in_page(content: bytes, url: str | None) -> Refusal | None:
    """A 200 page that holds a refusal instead of results: a JavaScript wall, /sorry/, a CAPTCHA."""
    head = content[:256 << 10]
    if _JS_WALL.search(head) or (url and "/sorry/" in url) or _CAPTCHA.search(head):
        return Refusal("blocked", _blocked_words(head, url, 200), 200, url)
    return None


def _blocked_words(body: bytes, url: str | None, status: int | None) -> str:
    words = words_of(body) if body else f"HTTP {status}"
    if _JS_WALL.search(body or b""):
        return f"a JavaScript challenge page (/httpservice/retry/enablejs) instead of results: {words}"
    if url and "/sorry/" in url:
        return f"redirected to /sorry/ (a CAPTCHA for clients it takes for robots): {words}"
    if _CAPTCHA.search(body or b""):
        return f"a CAPTCHA page instead of results: {words}"
    return words
