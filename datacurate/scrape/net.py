"""Polite, bounded HTTP: per-host concurrency and minimum delay, Retry-After backoff, robots.txt,
X-Robots-Tag, a streamed byte limit, timeouts, a redirect cap, and no private addresses.

Every request (result pages, robots.txt, images) goes through `Net.fetch`, which follows
redirects itself so that each hop is checked (address, robots) and counted. The name is resolved
once and checked, and the connection goes to that very address (a pool per checked address, with
the name kept for the Host header, TLS SNI and certificate check): a DNS answer that changes
between the check and the connection cannot reach another address. A watchdog thread holds a
deadline for each request, from the request to the last body byte: when it passes, it shuts the
socket down, so a server that drips one byte at a time cannot hold a request past --timeout.
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
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

NO_AI = {"noai", "noimageai", "noindex", "noimageindex", "none"}


class Refused(Exception):
    """A request that produced no usable body; `reason` is a short tag for the summary."""

    def __init__(self, reason: str, detail: str = "", status: int | None = None, content_type: str | None = None,
                 nbytes: int | None = None, url: str | None = None):
        super().__init__(detail or reason)
        self.reason, self.detail, self.status = reason, detail, status
        self.content_type, self.nbytes, self.url = content_type, nbytes, url
        self.body = b""  # the start of an error page's body, when asked for (error_body=True)


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
    allow_hosts: tuple[str, ...] = ()   # names or addresses allowed even when private or link-local


class HostGate:
    """At most `per_host` requests at once to a host, starts at least `delay` seconds apart;
    a 429/503 pushes the host's next start back by its Retry-After."""

    def __init__(self, per_host: int, delay: float, stop: threading.Event):
        self.per_host, self.delay, self.stop = per_host, delay, stop
        self._cond = threading.Condition()
        self._active: dict[str, int] = {}
        self._next: dict[str, float] = {}
        self._limits: dict[str, tuple[int, float]] = {}

    def configure(self, host: str, per_host: int, delay: float) -> None:
        """A stricter limit for one host (an API that asks for serial requests or a request rate)."""
        with self._cond:
            self._limits[host] = (min(per_host, self.per_host), max(delay, self.delay))

    def enter(self, host: str) -> None:
        per_host, delay = self._limits.get(host, (self.per_host, self.delay))
        with self._cond:
            while True:
                if self.stop.is_set():
                    raise Refused("stopped", "interrupted")
                now = time.monotonic()
                wait_for = self._next.get(host, 0.0) - now
                if self._active.get(host, 0) < per_host and wait_for <= 0:
                    self._active[host] = self._active.get(host, 0) + 1
                    self._next[host] = now + delay
                    return
                self._cond.wait(timeout=min(0.2, wait_for) if wait_for > 0 else 0.2)

    def leave(self, host: str) -> None:
        with self._cond:
            self._active[host] -= 1
            self._cond.notify_all()

    def cool_down(self, host: str, seconds: float) -> None:
        with self._cond:
            self._next[host] = max(self._next.get(host, 0.0), time.monotonic() + seconds)


# Cloud metadata services (AWS IPv4/IPv6 and ECS, Alibaba, Oracle...) besides the link-local ranges.
METADATA = {ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "169.254.169.253",
                                              "fd00:ec2::254", "fd00:ec2::23", "100.100.100.200", "192.0.0.192")}


def _address(ip: str):
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr


def is_private_address(ip: str) -> bool:
    addr = _address(ip)
    return (addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast or addr.is_reserved
            or addr.is_unspecified or addr in METADATA)


def is_metadata_address(ip: str) -> bool:
    """Link-local (169.254/16, fe80::/10) or a known cloud metadata address: refused even with
    --allow-private, unless the host or address is named with --allow-host."""
    addr = _address(ip)
    return addr.is_link_local or addr in METADATA


class Deadline:
    """One request's deadline; past it the watchdog shuts the request's socket down."""

    def __init__(self, at: float):
        self.at, self.sock, self.fired = at, None, False
        self._lock = threading.Lock()

    def attach(self, sock) -> None:
        with self._lock:
            self.sock = sock
            if self.fired:
                _shutdown(sock)

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            if self.sock is not None:
                _shutdown(self.sock)


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Watchdog:
    """A thread that fires the deadlines that passed (one thread for all requests of a Net)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._armed: set[Deadline] = set()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> Deadline:
        dl = Deadline(time.monotonic() + seconds)
        with self._cond:
            self._armed.add(dl)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="deadline-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        return dl

    def disarm(self, dl: Deadline) -> None:
        with self._cond:
            self._armed.discard(dl)

    def _loop(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [d for d in self._armed if d.at <= now]
                self._armed.difference_update(due)
                nxt = min((d.at for d in self._armed), default=now + 1.0)
                if not due:
                    self._cond.wait(timeout=min(1.0, max(0.01, nxt - now)))
            for d in due:
                d.fire()


_local = threading.local()  # the deadline of the request this thread is making


class _DeadlineMixin:
    """Hands the connection's socket to the current request's deadline before the response is read."""

    def getresponse(self, *args, **kwargs):
        dl = getattr(_local, "deadline", None)
        if dl is not None and self.sock is not None:
            dl.attach(self.sock)
        return super().getresponse(*args, **kwargs)


class _HTTP(_DeadlineMixin, HTTPConnection):
    pass


class _HTTPS(_DeadlineMixin, HTTPSConnection):
    pass


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
        self.headers = {"User-Agent": config.user_agent,
                        "Accept": "image/*,text/html,application/json;q=0.9,*/*;q=0.5"}
        self.watchdog = Watchdog()
        self._pools: dict[tuple, HTTPConnectionPool] = {}
        self._addr_cache: dict[str, list[str] | Refused] = {}
        self._robots: dict[str, RobotFileParser | str] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    # -- checks ---------------------------------------------------------------------------------
    def check_address(self, url: str) -> str:
        """Resolve the URL's host once, check every address, and return the one to connect to."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Refused("bad-url", f"not an http(s) URL: {url[:200]}")
        host = parts.hostname.lower()
        with self._lock:
            cached = self._addr_cache.get(host)
        if cached is None:
            cached = self._resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
            with self._lock:
                self._addr_cache[host] = cached
        if isinstance(cached, Refused):
            raise Refused(cached.reason, cached.detail, url=url)
        return cached[0]

    def _resolve(self, host: str, port: int) -> list[str] | Refused:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, ValueError, OSError) as exc:
            return Refused("dns-error", f"{host}: {exc}")
        ips = list(dict.fromkeys(i[4][0] for i in infos))
        if not ips:
            return Refused("dns-error", f"{host}: no address")
        named = host in self.config.allow_hosts
        for ip in ips:
            if named or ip.split("%")[0].lower() in self.config.allow_hosts:
                continue
            if is_metadata_address(ip):
                return Refused("link-local-address", f"{host} resolves to {ip}, a link-local or cloud metadata "
                                                     f"address: refused even with --allow-private (name it with "
                                                     f"--allow-host {host} if you mean it)")
            if is_private_address(ip) and not self.config.allow_private:
                return Refused("private-address", f"{host} resolves to {ip} (use --allow-private for intranet "
                                                  f"mirrors, or --allow-host {host})")
        return sorted(ips, key=lambda ip: ":" in ip)  # IPv4 first

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
              check_headers: Callable[[int, Mapping], None] | None = None, headers: Mapping[str, str] | None = None,
              error_body: bool = False) -> Fetched:
        """GET with redirects, retries on 429/503 and connection errors; raises Refused (with the
        start of an error page's body in `.body` when `error_body`). `headers` go to the first
        host only (never to a host a redirect leads to)."""
        retries = self.config.retries if retries is None else retries
        attempt = 0
        while True:
            try:
                return self._fetch_once(url, max_bytes, check_robots, check_headers, headers or {}, error_body)
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

    def _fetch_once(self, url: str, max_bytes: int, check_robots: bool, check_headers, headers, error_body) -> Fetched:
        current, first_host = url, urlsplit(url).netloc.lower()
        for _hop in range(self.config.max_redirects + 1):
            ip = self.check_address(current)
            if check_robots and not self.robots_allows(current):
                raise Refused("robots-txt", f"robots.txt of {urlsplit(current).netloc} disallows {urlsplit(current).path}", url=current)
            host = urlsplit(current).netloc.lower()
            extra = headers if host == first_host else {}
            self.gate.enter(host)
            try:
                result = self._get(current, ip, host, max_bytes, check_headers, extra, error_body)
            finally:
                self.gate.leave(host)
            if isinstance(result, Fetched):
                return result
            current = result  # a redirect target
        raise Refused("too-many-redirects", f"more than {self.config.max_redirects} redirects from {url[:200]}")

    def _pool(self, url: str, ip: str) -> HTTPConnectionPool:
        """The connection pool for this URL's origin at the checked address `ip`."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (parts.scheme, parts.hostname, port, ip)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                kw = dict(maxsize=max(4, self.config.per_host), block=False, retries=False, headers=self.headers)
                if parts.scheme == "https":
                    pool = HTTPSConnectionPool(ip, port, server_hostname=parts.hostname,
                                               assert_hostname=parts.hostname, **kw)
                    pool.ConnectionCls = _HTTPS
                else:
                    pool = HTTPConnectionPool(ip, port, **kw)
                    pool.ConnectionCls = _HTTP
                self._pools[key] = pool
        return pool

    def _get(self, url: str, ip: str, host: str, max_bytes: int, check_headers, headers, error_body) -> Fetched | str:
        timeout = self.config.timeout
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        dl = self.watchdog.arm(timeout)
        _local.deadline = dl
        try:
            try:
                resp = self._pool(url, ip).urlopen(
                    "GET", target, headers={**self.headers, **headers, "Host": parts.netloc}, preload_content=False,
                    redirect=False, retries=False, assert_same_host=False,
                    timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout))
            except Exception as exc:  # noqa: BLE001 - sorted into reasons below
                raise (_late(timeout, url) if dl.fired else _refusal(exc)) from None
            return self._answer(resp, url, host, max_bytes, check_headers, error_body, dl)
        finally:
            _local.deadline = None
            self.watchdog.disarm(dl)

    def _answer(self, resp, url: str, host: str, max_bytes: int, check_headers, error_body, dl) -> Fetched | str:
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
                if error_body:
                    try:
                        exc.body = self._read(resp, 64 << 10, ctype, url, dl, cut=True)
                    except Refused:
                        pass
                raise exc
            if check_headers is not None:
                check_headers(resp.status, resp.headers)
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise Refused("over-byte-limit", f"Content-Length {int(declared)} is over {max_bytes} bytes",
                              status=200, content_type=ctype, nbytes=int(declared), url=url)
            data = self._read(resp, max_bytes, ctype, url, dl)
            complete = True
            return Fetched(url, resp.status, ctype, data, dict(resp.headers))
        finally:
            if complete:
                resp.release_conn()
            else:
                resp.close()  # do not drain what we refused

    def _read(self, resp, max_bytes: int, ctype, url, dl: Deadline, cut: bool = False) -> bytes:
        """The body, streamed; past `max_bytes` a Refused (or, with `cut`, the first max_bytes)."""
        chunks, total = [], 0
        try:
            for chunk in resp.stream(16 << 10, decode_content=True):
                total += len(chunk)
                if total > max_bytes:
                    if cut:
                        chunks.append(chunk)
                        break
                    raise Refused("over-byte-limit", f"body passed {max_bytes} bytes; aborted", status=200,
                                  content_type=ctype, nbytes=total, url=url)
                if dl.fired:
                    raise _late(self.config.timeout, url, ctype, total)
                if self.stop.is_set():
                    raise Refused("stopped", "interrupted")
                chunks.append(chunk)
        except Refused:
            raise
        except Exception as exc:  # noqa: BLE001
            if dl.fired:
                raise _late(self.config.timeout, url, ctype, total) from None
            got = _refusal(exc)
            reason = "incomplete-body" if got.reason == "connection-error" else got.reason
            raise Refused(reason, got.detail, status=200, content_type=ctype, nbytes=total, url=url) from None
        if dl.fired:  # the watchdog's shutdown ends the stream like an end of file
            raise _late(self.config.timeout, url, ctype, total)
        return b"".join(chunks)[:max_bytes] if cut else b"".join(chunks)


def _late(timeout: float, url: str, ctype: str | None = None, nbytes: int | None = None) -> Refused:
    return Refused("timeout", f"answer not complete within {timeout:g} s (the whole-request deadline)",
                   status=200 if nbytes is not None else None, content_type=ctype, nbytes=nbytes, url=url)


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
