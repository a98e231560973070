"""Scrape options: defaults (the `scrape:` section of datacurate.yaml uses the same keys), checks."""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

from pydantic import PrivateAttr, field_validator

from datacurate.core.version import __version__
from datacurate.core.errors import UserError
from datacurate.core.imageio import Limits
from datacurate.core.options import StageOptions, opt

USER_AGENT = f"datacurate/{__version__} (image dataset builder; honours robots.txt and X-Robots-Tag)"
ROBOTS_TOKEN = "datacurate"
# Engine -> default base URL (None: must be given). datacurate/scrape/engines.py holds the code.
ENGINES: dict[str, str | None] = {
    "bing": "https://www.bing.com",
    "baidu": "https://image.baidu.com",
    "wikimedia": "https://commons.wikimedia.org",
    "openverse": "https://api.openverse.org",
    "flickr": "https://api.flickr.com",
    "greedy": None,
    "urls": None,
}
# Engines datacurate no longer offers, and why (asked for by name, they get this line and exit 2).
RETIRED = {
    "google": "Google image search needs JavaScript and does not work from a command-line client: since 2025 it "
              "answers every client without JavaScript with a challenge page (/httpservice/retry/enablejs) and "
              "heavy ones with /sorry/, which hold no images; use bing, wikimedia or openverse",
}
FLICKR_KEY = re.compile(r"[0-9a-f]{32}")
def parse_size(value: Any, name: str = "max_bytes") -> int:
    """Bytes from 123, '123', '20MB', '512k', '1.5G'."""
    if isinstance(value, bool):
        raise UserError(f"{name}: {value!r} is not a size")
    if isinstance(value, (int, float)):
        n = int(value)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*", str(value), re.I)
        if not m:
            raise UserError(f"{name}: {value!r} is not a size (try 20MB, 512KB or a number of bytes)")
        n = int(float(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()])
    if n <= 0:
        raise UserError(f"{name}: {value!r} must be more than 0 bytes")
    return n


def parse_base_urls(value: Any) -> dict[str, str]:
    """{engine: url} from a mapping (datacurate.yaml) or ENGINE=URL strings (the flag)."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        items = []
        for entry in ([value] if isinstance(value, str) else value):
            if "=" not in str(entry):
                raise UserError(f"--base-url {entry!r}: expected ENGINE=URL, e.g. bing=http://127.0.0.1:8080")
            k, v = str(entry).split("=", 1)
            items.append((k.strip(), v.strip()))
    out = {}
    for engine, url in items:
        if engine not in ENGINES:
            raise UserError(f"base_url: unknown engine {engine!r}; known: {', '.join(ENGINES)}")
        if not re.match(r"https?://[^/]+", str(url)):
            raise UserError(f"base_url for {engine}: {url!r} is not an http(s) URL")
        out[engine] = str(url)
    return out


def _engines(value: Any) -> list[str]:
    names = value if isinstance(value, (list, tuple)) else str(value).split(",")
    engines = list(dict.fromkeys(str(n).strip().lower() for n in names if str(n).strip()))
    if not engines:
        raise UserError("engine: name at least one of " + ", ".join(ENGINES))
    for name in engines:
        if name in RETIRED:
            raise UserError(f"engine {name}: {RETIRED[name]}")
        if name not in ENGINES:
            raise UserError(f"engine: unknown engine {name!r}; known: {', '.join(ENGINES)}")
    return engines


def _hosts(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else list(value or ())
    out = []
    for item in items:
        for host in str(item).split(","):
            host = host.strip().lower().strip("[]")
            if host:
                out.append(host)
    return tuple(dict.fromkeys(out))


def check_options(opts: Mapping[str, Any] | ScrapeOptions, *, dry_run: bool = False) -> ScrapeOptions:
    """Validated options (a mapping is resolved as flags over the defaults) and what the chosen engines need.

    An engine's key or token may come from the environment; wikimedia needs a contact, greedy a
    base URL, urls a list; a licence filter needs engines that say the licence.
    """
    from datacurate.scrape.licenses import LICENSED_ENGINES

    out = opts if isinstance(opts, ScrapeOptions) else ScrapeOptions.resolve(opts)
    engines = out.engines
    contact = str(out.contact).strip() if out.contact else None
    update = {"flickr_key": str(out.flickr_key or os.environ.get("FLICKR_APIKEY") or "").strip() or None,
              "openverse_token": str(out.openverse_token or os.environ.get("OPENVERSE_TOKEN") or "").strip() or None,
              "contact": contact}
    if contact and out.user_agent == USER_AGENT:
        update["user_agent"] = USER_AGENT[:-1] + f"; contact: {contact})"
    out = out.model_copy(update=update)
    out._dry_run = dry_run
    if "flickr" in engines and not out.flickr_key:
        raise UserError("engine flickr needs an API key (new keys need a Flickr Pro account): set FLICKR_APIKEY, "
                        "--flickr-key or scrape.flickr_key in datacurate.yaml")
    if "flickr" in engines and not FLICKR_KEY.fullmatch(out.flickr_key.lower()):
        raise UserError(f"flickr key: a Flickr API key is 32 hexadecimal characters; the one given has "
                        f"{len(out.flickr_key)} characters{'' if out.flickr_key.isalnum() else ' and not only letters and digits'}")
    if out.license is not None:
        blind = [e for e in engines if e not in LICENSED_ENGINES]
        if blind:
            raise UserError(f"license: engine {blind[0]} does not say under which licence an image is published, so "
                            f"nothing it finds could be kept with --license; use {', '.join(LICENSED_ENGINES)}")
    if "wikimedia" in engines and not out.contact:
        raise UserError("engine wikimedia: its User-Agent policy asks every program to name a contact: give "
                        "--contact EMAIL_OR_URL (or scrape.contact in datacurate.yaml)")
    if out.contact and any(ch in out.contact for ch in "\r\n()"):
        raise UserError(f"contact: {out.contact!r} must be one line without parentheses (an e-mail or URL)")
    if "greedy" in engines and "greedy" not in out.base_url:
        raise UserError("engine greedy crawls one site: give it with --base-url greedy=URL ({query} in the URL is replaced by the query)")
    if "urls" in engines and not out.urls:
        raise UserError("engine urls needs --urls FILE (YAML {class: [url, ...]} or a folder of <class>.txt files)")
    return out


class ScrapeOptions(StageOptions):
    """Checked scrape options: the `scrape:` section, the flags and the API keywords.

    After validation `engine` is a list of engine names, `license` a set of licences (or None),
    `base_url` a dict, `max_bytes` a number of bytes, `classes` and `allow_host` tuples.
    Upper bounds: a number past them is a typo, not a wish (-n 99999999999999999999).
    """

    SECTION = "scrape"
    engine: list[str] = opt("bing", "engines, comma-separated or a list: bing, baidu, wikimedia, openverse, flickr, greedy, urls")
    fallback: bool = opt(False, "engines after the first are used only when the ones before them refuse")
    suffix: str = opt("", "words added to every query through {suffix}")
    template: str = opt("{class} {suffix}", "query template with {class} and {suffix}")
    queries: str | None = opt(None, "YAML file of per-class overrides")
    classes: tuple[str, ...] = opt((), "only these classes (default: every class under data/original)")
    max_per_class: int = opt(100, "scraped images wanted per class (a re-run tops up)", ge=0, le=1_000_000)
    max_pages: int = opt(10, "result pages per query and engine", ge=1, le=10_000)
    base_url: dict[str, str] = opt({}, "engine -> base URL (mirrors, proxies, tests); ENGINE=URL strings too")
    urls: str | None = opt(None, "YAML {class: [url, ...]} or a folder of <class>.txt, for engine urls")
    flickr_key: str | None = opt(None, "Flickr API key (else $FLICKR_APIKEY)")
    openverse_token: str | None = opt(None, "Openverse token, optional (else $OPENVERSE_TOKEN)")
    license: frozenset[str] | None = opt(None, "keep only these licences, e.g. cc0,pdm,by,by-sa or commercial,modification")
    contact: str | None = opt(None, "e-mail or URL for the User-Agent (wikimedia asks for one)")
    concurrency: int = opt(16, "downloads and page fetches at once, all hosts together", ge=1, le=1024)
    per_host: int = opt(4, "requests at once to one host", ge=1, le=256)
    delay: float = opt(0.1, "minimum seconds between two requests to one host", ge=0, le=3600)
    timeout: float = opt(15.0, "seconds per request (connect, each read, and the whole body)", gt=0, le=3600)
    retries: int = opt(3, "tries after a 429/503 or a connection error", ge=0, le=100)
    max_wait: float = opt(60.0, "longest Retry-After honoured; longer means give up", ge=0, le=86400)
    max_bytes: int = opt("20MB", "per image, streamed and aborted past it (20MB, 512KB or a number of bytes)")
    max_redirects: int = opt(5, "redirects followed per request", ge=0, le=100)
    min_size: int = opt(Limits.min_size, "smallest side in pixels", ge=1, le=100_000)
    max_pixels: int = opt(Limits.max_pixels, "most pixels per image", ge=1, le=10**12)
    max_aspect: float = opt(Limits.max_aspect, "longest side over shortest side", ge=1, le=10_000)
    ignore_robots: bool = opt(False, "do not read robots.txt (X-Robots-Tag is still honoured)")
    allow_private: bool = opt(False, "allow private and loopback addresses (intranet mirrors, tests)")
    allow_host: tuple[str, ...] = opt((), "hosts or addresses allowed even when private or link-local")
    user_agent: str = opt(USER_AGENT, "User-Agent header")
    _dry_run: bool = PrivateAttr(False)

    @field_validator("engine", mode="before")
    @classmethod
    def _engine_names(cls, value: Any) -> list[str]:
        return _engines(value)

    @field_validator("license", mode="before")
    @classmethod
    def _licence_filter(cls, value: Any) -> frozenset[str] | None:
        from datacurate.scrape.licenses import parse_filter

        return parse_filter(value)

    @field_validator("base_url", mode="before")
    @classmethod
    def _base_urls(cls, value: Any) -> dict[str, str]:
        return parse_base_urls(value)

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _bytes(cls, value: Any) -> int:
        return parse_size(value)

    @field_validator("classes", mode="before")
    @classmethod
    def _class_names(cls, value: Any) -> tuple[str, ...]:
        return (value,) if isinstance(value, str) else tuple(str(c) for c in value or ())

    @field_validator("allow_host", mode="before")
    @classmethod
    def _allowed_hosts(cls, value: Any) -> tuple[str, ...]:
        return _hosts(value)

    @property
    def engines(self) -> list[str]:
        return list(self.engine)

    @property
    def dry_run(self) -> bool:
        return self._dry_run

    @property
    def limits(self) -> Limits:
        return Limits(max_pixels=self.max_pixels, min_size=self.min_size, max_aspect=self.max_aspect)

    def base_for(self, engine: str) -> str | None:
        return self.base_url.get(engine) or ENGINES[engine]


DEFAULTS: dict[str, Any] = ScrapeOptions.defaults()
