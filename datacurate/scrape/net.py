"""Polite, bounded HTTP: per-host concurrency and minimum delay, Retry-After backoff, robots.txt,
X-Robots-Tag, a streamed byte limit, timeouts, a redirect cap, and no private addresses.

Every request (result pages, robots.txt, images) goes through `Net.fetch`, which follows
redirects itself so that each hop is checked (address, robots) and counted.
"""

from __future__ import annotations

import email.utils
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import urllib3
from urllib3 import exceptions as ue

NO_AI = {"noai", "noimageai", "noindex", "noimageindex", "none"}


class Refused(Exception):
    """A request that produced no usable body; `reason` is a short tag for the summary."""

    def __init__(self, reason: str, detail: str = "", status: int | None = None, content_type: str | None = None,
                 nbytes: int | None = None, url: str | None = None):
        super().__init__(detail or reason)
        self.reason, self.detail, self.status = reason, detail, status
        self.content_type, self.nbytes, self.url = content_type, nbytes, url


@dataclass
class Fetched:
    url: str                      # final URL after redirects
    status: int
    content_type: str | None
    data: bytes
    headers: dict = field(default_factory=dict)


@dataclass
class NetConfig:
    user_agent: str
    robots_token: str
    timeout: float = 15.0
    per_host: int = 4
    delay: float = 0.1
    retries: int = 3
    max_wait: float = 60.0
    max_redirects: int = 5
    allow_private: bool = False
    ignore_robots: bool = False


class HostGate:
    """At most `per_host` requests at once to a host, starts at least `delay` seconds apart;
    a 429/503 pushes the host's next start back by its Retry-After."""

    def __init__(self, per_host: int, delay: float, stop: threading.Event):
        self.per_host, self.delay, self.stop = per_host, delay, stop
        self._cond = threading.Condition()
        self._active: dict[str, int] = {}
        self._next: dict[str, float] = {}

    def enter(self, host: str) -> None:
        with self._cond:
            while True:
                if self.stop.is_set():
                    raise Refused("stopped", "interrupted")
                now = time.monotonic()
                wait_for = self._next.get(host, 0.0) - now
                if self._active.get(host, 0) < self.per_host and wait_for <= 0:
                    self._active[host] = self._active.get(host, 0) + 1
                    self._next[host] = now + self.delay
                    return
                self._cond.wait(timeout=min(0.2, wait_for) if wait_for > 0 else 0.2)

    def leave(self, host: str) -> None:
        with self._cond:
            self._active[host] -= 1
            self._cond.notify_all()

    def cool_down(self, host: str, seconds: float) -> None:
        with self._cond:
            self._next[host] = max(self._next.get(host, 0.0), time.monotonic() + seconds)


def is_private_address(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return (addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast or addr.is_reserved
            or addr.is_unspecified)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def x_robots_forbids(values: str, token: str) -> str | None:
    """The directive in an X-Robots-Tag header that forbids use by `token` (or all bots), if any."""
    for part in values.split(","):
        part = part.strip().lower()
        if ":" in part:
            bot, _, rest = part.partition(":")
            if bot.strip() not in (token, "all", "*") and bot.strip() not in NO_AI:
                continue
            part = rest.strip() if bot.strip() not in NO_AI else part
        for word in part.split():
            if word in NO_AI:
                return word
    return None


class Net:
    """Shared by all worker threads (urllib3's PoolManager is thread-safe; requests costs twice
    the CPU per request, which shows at a hundred images a second)."""

    def __init__(self, config: NetConfig, stop: threading.Event | None = None):
        self.config = config
        self.stop = stop or threading.Event()
        self.gate = HostGate(config.per_host, config.delay, self.stop)
        self.pool = urllib3.PoolManager(
            num_pools=256, maxsize=max(4, config.per_host), block=False, retries=False,
            headers={"User-Agent": config.user_agent,
                     "Accept": "image/*,text/html,application/json;q=0.9,*/*;q=0.5"})
        self._addr_cache: dict[str, str | None] = {}
        self._robots: dict[str, RobotFileParser | str] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    # -- checks ---------------------------------------------------------------------------------
    def check_address(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Refused("bad-url", f"not an http(s) URL: {url[:200]}")
        if self.config.allow_private:
            return
        host = parts.hostname
        with self._lock:
            cached = self._addr_cache.get(host, "?")
        if cached == "?":
            try:
                infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                           type=socket.SOCK_STREAM)
                bad = next((i[4][0] for i in infos if is_private_address(i[4][0])), None)
            except (socket.gaierror, UnicodeError, ValueError) as exc:
                raise Refused("dns-error", f"{host}: {exc}") from None
            cached = bad
            with self._lock:
                self._addr_cache[host] = cached
        if cached:
            raise Refused("private-address", f"{host} resolves to {cached} (use --allow-private for intranet mirrors)")

    def robots_allows(self, url: str) -> bool:
        if self.config.ignore_robots:
            return True
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            lock = self._robots_locks.setdefault(origin, threading.Lock())
        with lock:
            rules = self._robots.get(origin)
            if rules is None:
                rules = self._load_robots(origin)
                self._robots[origin] = rules
        if isinstance(rules, str):
            return rules == "allow"
        return rules.can_fetch(self.config.robots_token, url)

    def _load_robots(self, origin: str) -> RobotFileParser | str:
        """RFC 9309: 2xx parsed; 4xx means no rules; 5xx or unreachable means disallow all."""
        try:
            got = self.fetch(origin + "/robots.txt", max_bytes=512 << 10, check_robots=False, retries=1)
        except Refused as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                return "allow"
            return "disallow"
        parser = RobotFileParser()
        parser.parse(got.data.decode("utf-8", "ignore").splitlines())
        return parser

    # -- fetching -------------------------------------------------------------------------------
    def fetch(self, url: str, *, max_bytes: int, check_robots: bool = True, retries: int | None = None,
              check_headers: Callable[[int, Mapping], None] | None = None) -> Fetched:
        """GET with redirects, retries on 429/503 and connection errors; raises Refused."""
        retries = self.config.retries if retries is None else retries
        attempt = 0
        while True:
            try:
                return self._fetch_once(url, max_bytes, check_robots, check_headers)
            except Refused as exc:
                wait = self._retry_wait(exc, attempt, retries)
                if wait is None:
                    raise
                attempt += 1
                if self.stop.wait(wait):
                    raise Refused("stopped", "interrupted") from None

    def _retry_wait(self, exc: Refused, attempt: int, retries: int) -> float | None:
        if attempt >= retries:
            return None
        if exc.status in (429, 503):
            wait = getattr(exc, "retry_after", None)
            wait = min(2.0 ** attempt, 30.0) if wait is None else wait
            if wait > self.config.max_wait:
                exc.detail += f" (Retry-After {wait:.0f} s is over --max-wait {self.config.max_wait:g} s)"
                return None
            return wait
        if exc.reason == "connection-error":
            return min(0.5 * 2.0 ** attempt, 8.0)
        return None

    def _fetch_once(self, url: str, max_bytes: int, check_robots: bool, check_headers) -> Fetched:
        current = url
        for _hop in range(self.config.max_redirects + 1):
            self.check_address(current)
            if check_robots and not self.robots_allows(current):
                raise Refused("robots-txt", f"robots.txt of {urlsplit(current).netloc} disallows {urlsplit(current).path}", url=current)
            host = urlsplit(current).netloc.lower()
            self.gate.enter(host)
            try:
                result = self._get(current, host, max_bytes, check_headers)
            finally:
                self.gate.leave(host)
            if isinstance(result, Fetched):
                return result
            current = result  # a redirect target
        raise Refused("too-many-redirects", f"more than {self.config.max_redirects} redirects from {url[:200]}")

    def _get(self, url: str, host: str, max_bytes: int, check_headers) -> Fetched | str:
        timeout = self.config.timeout
        started = time.monotonic()
        try:
            resp = self.pool.request("GET", url, preload_content=False, redirect=False, retries=False,
                                     timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout))
        except Exception as exc:  # noqa: BLE001 - sorted into reasons below
            raise _refusal(exc) from None
        complete = False
        try:
            ctype = resp.headers.get("Content-Type")
            if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                return urljoin(url, resp.headers["Location"])
            if resp.status != 200:
                exc = Refused(f"http-{resp.status}", f"HTTP {resp.status} {resp.reason or ''}".strip(),
                              status=resp.status, content_type=ctype, url=url)
                after = retry_after_seconds(resp.headers.get("Retry-After"))
                exc.retry_after = after  # type: ignore[attr-defined]
                if resp.status in (429, 503):
                    self.gate.cool_down(host, min(after if after is not None else 1.0, self.config.max_wait))
                raise exc
            if check_headers is not None:
                check_headers(resp.status, resp.headers)
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise Refused("over-byte-limit", f"Content-Length {int(declared)} is over {max_bytes} bytes",
                              status=200, content_type=ctype, nbytes=int(declared), url=url)
            data = self._read(resp, max_bytes, started, ctype, url)
            complete = True
            return Fetched(url, resp.status, ctype, data, dict(resp.headers))
        finally:
            if complete:
                resp.release_conn()
            else:
                resp.close()  # do not drain what we refused

    def _read(self, resp, max_bytes: int, started: float, ctype, url) -> bytes:
        chunks, total = [], 0
        try:
            for chunk in resp.stream(64 << 10, decode_content=True):
                total += len(chunk)
                if total > max_bytes:
                    raise Refused("over-byte-limit", f"body passed {max_bytes} bytes; aborted", status=200,
                                  content_type=ctype, nbytes=total, url=url)
                if time.monotonic() - started > self.config.timeout:
                    raise Refused("timeout", f"body not complete within {self.config.timeout:g} s", status=200,
                                  content_type=ctype, nbytes=total, url=url)
                if self.stop.is_set():
                    raise Refused("stopped", "interrupted")
                chunks.append(chunk)
        except Refused:
            raise
        except Exception as exc:  # noqa: BLE001
            got = _refusal(exc)
            reason = "incomplete-body" if got.reason == "connection-error" else got.reason
            raise Refused(reason, got.detail, status=200, content_type=ctype, nbytes=total, url=url) from None
        return b"".join(chunks)


def _refusal(exc: BaseException) -> Refused:
    """A urllib3 / socket error as a reason."""
    if isinstance(exc, (ue.ConnectTimeoutError, ue.ReadTimeoutError, socket.timeout)) and not isinstance(
            exc, ue.NewConnectionError):
        return Refused("timeout", _short(exc))
    if isinstance(exc, ue.NameResolutionError):
        return Refused("dns-error", _short(exc))
    if isinstance(exc, (ue.LocationValueError, ValueError)):
        return Refused("bad-url", _short(exc))
    if isinstance(exc, (ue.HTTPError, OSError)):
        return Refused("connection-error", _short(exc))
    raise exc


def _short(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}"
