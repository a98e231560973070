"""Scrape options: defaults (the `scrape:` section of datacurate.yaml uses the same keys), checks."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from datacurate import __version__
from datacurate.errors import UserError
from datacurate.imageio import Limits

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
# Upper bounds: a number past them is a typo, not a wish (-n 99999999999999999999).
MAXIMA = {"max_per_class": 1_000_000, "max_pages": 10_000, "concurrency": 1024, "per_host": 256, "delay": 3600.0,
          "timeout": 3600.0, "retries": 100, "max_wait": 86400.0, "max_redirects": 100, "min_size": 100_000,
          "max_pixels": 10**12, "max_aspect": 10_000.0}

DEFAULTS: dict[str, Any] = {
    "engine": "bing",
    "fallback": False,         # engines after the first are used only when the ones before them refuse
    "suffix": "",
    "template": "{class} {suffix}",
    "queries": None,           # YAML file of per-class overrides
    "classes": (),             # only these classes (default: every class under data/original)
    "max_per_class": 100,
    "max_pages": 10,           # result pages per query and engine
    "base_url": {},            # engine -> base URL (mirrors, proxies, tests)
    "urls": None,              # YAML {class: [url, ...]} or a folder of <class>.txt, for --engine urls
    "flickr_key": None,        # else $FLICKR_APIKEY
    "openverse_token": None,   # else $OPENVERSE_TOKEN; optional (anonymous use is rate-limited)
    "license": None,           # e.g. cc0,pdm,by,by-sa or commercial,modification: keep only these licences
    "contact": None,           # e-mail or URL for the User-Agent (Wikimedia's policy asks for one)
    "concurrency": 16,         # downloads and page fetches at once, all hosts together
    "per_host": 4,             # requests at once to one host
    "delay": 0.1,              # minimum seconds between two requests to one host
    "timeout": 15.0,           # seconds per request (connect, each read, and the whole body)
    "retries": 3,              # tries after a 429/503 or a connection error
    "max_wait": 60.0,          # longest Retry-After honoured; longer means give up
    "max_bytes": "20MB",       # per image, streamed and aborted past it
    "max_redirects": 5,
    "min_size": Limits().min_size,
    "max_pixels": Limits().max_pixels,
    "max_aspect": Limits().max_aspect,
    "ignore_robots": False,
    "allow_private": False,
    "allow_host": (),          # hosts or addresses allowed even when private or link-local (cloud metadata)
    "user_agent": USER_AGENT,
}


@dataclass
class ScrapeOptions:
    """Checked scrape options (see DEFAULTS for what each means)."""

    engines: list[str]
    fallback: bool = False
    suffix: str = ""
    template: str = "{class} {suffix}"
    queries: str | None = None
    classes: tuple[str, ...] = ()
    max_per_class: int = 100
    max_pages: int = 10
    base_url: dict[str, str] = field(default_factory=dict)
    urls: str | None = None
    flickr_key: str | None = None
    openverse_token: str | None = None
    license: frozenset[str] | None = None
    contact: str | None = None
    concurrency: int = 16
    per_host: int = 4
    delay: float = 0.1
    timeout: float = 15.0
    retries: int = 3
    max_wait: float = 60.0
    max_bytes: int = 20 << 20
    max_redirects: int = 5
    min_size: int = 32
    max_pixels: int = Limits().max_pixels
    max_aspect: float = 10.0
    ignore_robots: bool = False
    allow_private: bool = False
    allow_host: tuple[str, ...] = ()
    user_agent: str = USER_AGENT
    dry_run: bool = False

    @property
    def limits(self) -> Limits:
        return Limits(max_pixels=self.max_pixels, min_size=self.min_size, max_aspect=self.max_aspect)

    def base_for(self, engine: str) -> str | None:
        return self.base_url.get(engine) or ENGINES[engine]


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


def _number(opts: Mapping[str, Any], key: str, kind: type, low: float, *, above: bool = False) -> Any:
    value, name = opts[key], key.replace("_", "-")
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{name}: {value!r} is not a {'whole ' if kind is int else ''}number") from None
    if not math.isfinite(number):
        raise UserError(f"{name}: {value!r} is not a finite number")
    if number < low or (above and number == low):
        raise UserError(f"{name}: {value!r} must be {'more than' if above else 'at least'} {low:g}")
    if number > MAXIMA[key]:
        raise UserError(f"{name}: {value!r} must be at most {MAXIMA[key]:.0f}")
    return number


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


def check_options(opts: Mapping[str, Any], *, dry_run: bool = False) -> ScrapeOptions:
    """Validate merged options (flag > yaml > default) into a ScrapeOptions."""
    from datacurate.scrape.licenses import LICENSED_ENGINES, parse_filter

    engines = _engines(opts["engine"])
    classes = opts["classes"] or ()
    classes = (classes,) if isinstance(classes, str) else tuple(str(c) for c in classes)
    out = ScrapeOptions(
        engines=engines,
        fallback=bool(opts["fallback"]),
        suffix=str(opts["suffix"] or ""),
        template=str(opts["template"]),
        queries=str(opts["queries"]) if opts["queries"] else None,
        classes=classes,
        max_per_class=_number(opts, "max_per_class", int, 0),
        max_pages=_number(opts, "max_pages", int, 1),
        base_url=parse_base_urls(opts["base_url"]),
        urls=str(opts["urls"]) if opts["urls"] else None,
        flickr_key=str(opts["flickr_key"] or os.environ.get("FLICKR_APIKEY") or "").strip() or None,
        openverse_token=str(opts["openverse_token"] or os.environ.get("OPENVERSE_TOKEN") or "").strip() or None,
        license=parse_filter(opts["license"]),
        contact=str(opts["contact"]).strip() if opts["contact"] else None,
        concurrency=_number(opts, "concurrency", int, 1),
        per_host=_number(opts, "per_host", int, 1),
        delay=_number(opts, "delay", float, 0),
        timeout=_number(opts, "timeout", float, 0, above=True),
        retries=_number(opts, "retries", int, 0),
        max_wait=_number(opts, "max_wait", float, 0),
        max_bytes=parse_size(opts["max_bytes"]),
        max_redirects=_number(opts, "max_redirects", int, 0),
        min_size=_number(opts, "min_size", int, 1),
        max_pixels=_number(opts, "max_pixels", int, 1),
        max_aspect=_number(opts, "max_aspect", float, 1),
        ignore_robots=bool(opts["ignore_robots"]),
        allow_private=bool(opts["allow_private"]),
        allow_host=_hosts(opts["allow_host"]),
        user_agent=str(opts["user_agent"] or USER_AGENT),
        dry_run=dry_run,
    )
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
    if out.contact:
        if any(ch in out.contact for ch in "\r\n()"):
            raise UserError(f"contact: {out.contact!r} must be one line without parentheses (an e-mail or URL)")
        if out.user_agent == USER_AGENT:
            out.user_agent = USER_AGENT[:-1] + f"; contact: {out.contact})"
    if "greedy" in engines and "greedy" not in out.base_url:
        raise UserError("engine greedy crawls one site: give it with --base-url greedy=URL ({query} in the URL is replaced by the query)")
    if "urls" in engines and not out.urls:
        raise UserError("engine urls needs --urls FILE (YAML {class: [url, ...]} or a folder of <class>.txt files)")
    return out
