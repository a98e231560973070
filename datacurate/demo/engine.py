"""A loopback fake image-search engine: result pages in the structure the real Bing, Baidu,
Flickr, Wikimedia Commons and Openverse answers have (captured 2021-2026), Google's JavaScript
wall, the images behind them, and the faults and refusals real engines and image hosts produce.

Used by the scrape tests, the scrape benchmark, and the offline `datacurate demo` (to serve extra
pictures, broken files and duplicates for each class of a generated dataset). Nothing here
touches the network: the server listens on 127.0.0.1, port 0 (any free port).

API::

    from datacurate.demo.engine import FakeEngine, ImageSpec, make_image

    images = {
        "cat photo": [make_image(1), make_image(2, fmt="PNG"), ImageSpec(make_image(3), fault="404")],
        "dog photo": [ImageSpec(make_image(4), fault="webp")],
    }
    with FakeEngine(images, page_faults={"google": "429"}, latency=0.1) as fe:
        fe.base_url               # "http://127.0.0.1:PORT"
        fe.hits("/img/...")       # how many requests reached a path
        fe.max_inflight           # the most image requests held at once (counted until answered)
        fe.user_agents            # set of User-Agent headers seen

`images` maps a query (exact text, as the client sends it) to its ranked results; each result is
raw image bytes or an `ImageSpec(data, fault=None, ext=None, license=None, author=None)`. A
query the engine does not know gets an empty result page. Image URLs are
`/img/<query id>/<rank>.<ext>` (ext defaults to the data's format; faults "webp" and "png" serve
those formats behind a `.jpg` URL). The licence engines give each result `license` (a code:
cc0, pdm, by, by-sa, by-nc...; default: LICENSES by rank) and `author` (default "Author <rank>").

Endpoints: Bing `/images/async?q=&first=&count=` (HTML, `a.iusc[m]` JSON with murl, purl, turl,
35 per page), Baidu `/search/acjson?tn=resultjson_com&word=&pn=&rn=` (JSON `data[]`: `objURL`
obfuscated and decoding to an expiring gimg2-style link that answers 403, `replaceUrl[0].ObjURL`
the original, `thumbURL`, `fromURL`; 30 per page), Google `/search?q=&tbm=isch` (the JavaScript
challenge page real Google image search sends clients without JavaScript: no images), Flickr
`/services/rest/?method=flickr.photos.search&api_key=&text=&page=&per_page=` (a key that is not
32 hex digits gets `stat: fail`, code 100), Wikimedia Commons `/w/api.php?action=query&
generator=search&gsrsearch=&gsroffset=&prop=imageinfo` (formatversion 2, extmetadata),
Openverse `/v1/images/?q=&page=&page_size=&license=` (page_size over 20 without a token is a
401, as anonymous use is), a crawlable site `/site?q=&p=` (10 images per page, a link to the
next page), `/robots.txt`, `/redirect?to=URL` (a 302 to any URL).

Image faults (`ImageSpec.fault`): "404", "500", "503", "429" (the first `retry_times` requests
get 429 with `Retry-After: retry_after`, then the image), "429-always", "slow" (answers after
`slow_seconds`), "timeout" (headers, a few bytes, then silence for `stall_seconds`),
"truncated" (Content-Length promises more than is sent), "cut" (a whole response holding half
an image), "html" (an HTML error page served as image/jpeg), "webp", "png" (that format behind
a .jpg URL as image/jpeg), "huge" (`huge_bytes` of data, no Content-Length), "huge-declared"
(the same with Content-Length), "bomb" (a tiny PNG claiming 20000x20000 pixels),
"redirect" (one 302 to the image), "redirect-loop" (302s forever), "robots" (served under
/private/, which robots.txt disallows), "noai" (`X-Robots-Tag: noai`), "drip" (one byte every
`drip_seconds`, no Content-Length).
Page faults (`page_faults={"bing"|"baidu"|"google"|"flickr"|"wikimedia"|"openverse"|"site": fault}`):
"429", "503" (always refused, with Retry-After), "429-once", "500", "404", "empty" (a well-formed
page with no results), "changed" (markup the parsers do not know), "runs-out" (bing: past the last
result a blank page without the results list, as Bing's /images/async sends), "slow", "drip" (the page one
byte every `drip_seconds`); the refusals real engines send: "403" (a 403 page with the words
Wikimedia sends clients without a proper User-Agent), "captcha" (a 200 page with a CAPTCHA),
"sorry" (a 302 to Google's /sorry/ page, which answers 429), "antiflag" (Baidu's
`{"antiFlag":1,"message":"Forbid spider access"}`), "bad-key" (Flickr's `stat: fail` code 100
"Invalid API Key (Key has expired)", Openverse's 401 "Invalid token."), "api-error"
(Wikimedia's `{"error": {"code", "info"}}`).
`latency` (seconds) delays every image response (the benchmark uses 0.1).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterable, Mapping
from urllib.parse import parse_qs, quote, urlsplit

IMAGE_FAULTS = (
    "404", "500", "503", "429", "429-always", "slow", "timeout", "truncated", "cut", "html", "webp", "png",
    "huge", "huge-declared", "bomb", "redirect", "redirect-loop", "robots", "noai", "drip",
)
PAGE_FAULTS = ("429", "503", "429-once", "500", "404", "empty", "changed", "runs-out", "slow", "drip",
               "403", "captcha", "sorry", "antiflag", "bad-key", "api-error")
PAGE_SIZES = {"bing": 35, "baidu": 30, "flickr": 100, "wikimedia": 50, "openverse": 20, "site": 10}
LICENSES = ("by-sa", "cc0", "by", "pdm", "by-nc")  # the default licence of result r: LICENSES[r % 5]
# How each engine names a licence code: Wikimedia's LicenseShortName, Flickr's licence id, Openverse's version.
COMMONS_NAMES = {"by-sa": "CC BY-SA 4.0", "cc0": "CC0", "by": "CC BY 2.0", "pdm": "Public domain",
                 "by-nc": "CC BY-NC 2.0", "by-nd": "CC BY-ND 4.0", "by-nc-sa": "CC BY-NC-SA 2.0"}
FLICKR_IDS = {"by-nc-sa": "1", "by-nc": "2", "by-nc-nd": "3", "by": "4", "by-sa": "5", "by-nd": "6", "cc0": "9",
              "pdm": "10"}
LICENSE_URLS = {"cc0": "https://creativecommons.org/publicdomain/zero/1.0/",
                "pdm": "https://creativecommons.org/publicdomain/mark/1.0/"}
WIKIMEDIA_403 = (b"<!DOCTYPE html><html lang=\"en\"><head><title>Wikimedia Error</title></head><body><h1>Error</h1>"
                 b"<p>Please set a user-agent and respect our robot policy https://w.wiki/4wJS. See also "
                 b"https://phabricator.wikimedia.org/T400119.</p></body></html>")
CAPTCHA_PAGE = (b"<html><head><title>Verify you are human</title></head><body><form id=\"captcha-form\">"
                b"<div class=\"g-recaptcha\" data-sitekey=\"6Lc\"></div></form><p>Please complete the security check "
                b"to continue.</p></body></html>")
SORRY_PAGE = (b"<html><head><meta http-equiv=\"content-type\" content=\"text/html; charset=utf-8\"><title>"
              b"https://www.google.com/search?q=cat&amp;tbm=isch</title></head><body><div id=\"captcha-form\">"
              b"<div id=\"infoDiv\">Our systems have detected unusual traffic from your computer network. This page "
              b"checks to see if it&#39;s really you sending the requests, and not a robot.</div></div></body></html>")
# What Google image search sends a client without JavaScript (2025-2026): no results, a challenge.
GOOGLE_ENABLEJS = ("<!DOCTYPE html><html lang=\"en\"><head><title>Google Search</title><style>body{{background-color:"
                   "#fff}}</style><script nonce=\"x\">(function(){{var sei='{sei}';window.google={{kEI:sei}};}})();"
                   "</script></head><body><noscript><style>table,div,span,p{{display:none}}</style><meta content="
                   "\"0;url=/httpservice/retry/enablejs?sei={sei}\" http-equiv=\"refresh\"><div style=\"display:"
                   "block\">Please click <a href=\"/httpservice/retry/enablejs?sei={sei}\">here</a> if you are not "
                   "redirected within a few seconds.</div></noscript><script nonce=\"x\">(function(){{var e="
                   "'/search?q={q}&tbm=isch&sei={sei}';setTimeout(function(){{location.replace(e)}},2000)}})();"
                   "</script></body></html>")
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\n"
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp"}
_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}


@dataclass
class ImageSpec:
    """One search result: the bytes behind it, an optional fault, an optional URL extension."""

    data: bytes
    fault: str | None = None
    ext: str | None = None
    license: str | None = None
    author: str | None = None

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in IMAGE_FAULTS:
            raise ValueError(f"unknown image fault {self.fault!r}; known: {', '.join(IMAGE_FAULTS)}")


def make_image(seed: int, size: tuple[int, int] = (64, 48), fmt: str = "JPEG") -> bytes:
    """A small deterministic picture, different for every seed (stripes, blocks and a gradient)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.integers(0, 256, size=3)
    freq = rng.uniform(0.05, 0.4, size=3)
    arr = np.stack([(base[c] + 120 * np.sin(xx * freq[c] + yy * freq[(c + 1) % 3] + seed)) % 256 for c in range(3)], -1)
    bx, by = rng.integers(0, max(1, w // 2)), rng.integers(0, max(1, h // 2))
    arr[by:by + h // 3, bx:bx + w // 3] = rng.integers(0, 256, size=3)
    im = Image.fromarray(arr.astype("uint8"), "RGB")
    out = io.BytesIO()
    im.save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A ~100-byte PNG whose header claims width x height pixels (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def baidu_encode(url: str) -> str:
    """Baidu's objURL obfuscation (the inverse of icrawler's BaiduParser._decode_url)."""
    plain = "abcdefghijklmnopqrstuvw1234567890"
    cipher = "wkv1ju2it3hs4g5rq6fp7eo8dn9cm0bla"
    table = {p: c for c, p in zip(cipher, plain)}
    out = "".join(table.get(ch, ch) for ch in url)
    return out.replace(":", "_z2C$q").replace(".", "_z&e3B").replace("/", "AzdH3F")


def _qid(query: str) -> str:
    return hashlib.sha1(query.encode("utf-8")).hexdigest()[:10]


def _format_of(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in (b"GIF8",):
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    return "JPEG"


def _convert(data: bytes, fmt: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, format=fmt)
    return out.getvalue()


class FakeEngine:
    """A ThreadingHTTPServer on 127.0.0.1 in a background thread; use as a context manager."""

    def __init__(
        self,
        images: Mapping[str, Iterable[bytes | ImageSpec]] | None = None,
        *,
        page_faults: Mapping[str, str] | None = None,
        latency: float = 0.0,
        retry_after: int = 1,
        retry_times: int = 1,
        slow_seconds: float = 0.5,
        stall_seconds: float = 5.0,
        huge_bytes: int = 3 << 20,
        drip_seconds: float = 0.5,
        robots_txt: str = ROBOTS_TXT,
        host: str = "127.0.0.1",
    ):
        self.results: dict[str, list[ImageSpec]] = {}
        for query, items in (images or {}).items():
            self.results[query] = [i if isinstance(i, ImageSpec) else ImageSpec(bytes(i)) for i in items]
        self.by_qid = {_qid(q): q for q in self.results}
        for engine, fault in (page_faults or {}).items():
            if fault not in PAGE_FAULTS:
                raise ValueError(f"unknown page fault {fault!r} for {engine}; known: {', '.join(PAGE_FAULTS)}")
        self.page_faults = dict(page_faults or {})
        self.latency, self.retry_after, self.retry_times = latency, retry_after, retry_times
        self.slow_seconds, self.stall_seconds, self.huge_bytes = slow_seconds, stall_seconds, huge_bytes
        self.drip_seconds = drip_seconds
        self.robots_txt = robots_txt
        self.host = host
        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self._inflight = 0
        self.max_inflight = 0
        self.user_agents: set[str] = set()
        self.authorizations: set[str] = set()  # Authorization headers seen (Openverse tokens)
        self.log: list[tuple[float, str]] = []  # (time, path) of every request
        self._server: ThreadingHTTPServer | None = None
        self._base = ""
        self._thread: threading.Thread | None = None
        self._converted: dict[tuple[str, int], bytes] = {}

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "FakeEngine":
        engine = self

        class Handler(_Handler):
            fake = engine

        server = _Server((self.host, 0), Handler)
        self._server = server
        self._base = f"http://{self.host}:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeEngine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._base, "start the engine first"
        return self._base

    # -- bookkeeping ----------------------------------------------------------------------------
    def hits(self, path_prefix: str = "/") -> int:
        """Requests whose path starts with `path_prefix`."""
        with self._lock:
            return sum(n for p, n in self._hits.items() if p.startswith(path_prefix))

    def _count(self, path: str, ua: str) -> int:
        with self._lock:
            self._hits[path] = self._hits.get(path, 0) + 1
            self.user_agents.add(ua)
            self.log.append((time.monotonic(), path))
            return self._hits[path]

    # -- result URLs ----------------------------------------------------------------------------
    def image_url(self, query: str, rank: int) -> str:
        """The URL of a query's rank-th result (0-based)."""
        spec = self.results[query][rank]
        ext = spec.ext or ("jpg" if spec.fault in ("webp", "png", "html", "huge", "huge-declared") else
                           "png" if spec.fault == "bomb" else _EXT.get(_format_of(spec.data), "jpg"))
        folder = "private" if spec.fault == "robots" else "img"
        return f"{self.base_url}/{folder}/{_qid(query)}/{rank}.{ext}"

    def page_of(self, query: str, rank: int) -> str:
        return f"{self.base_url}/pages/{_qid(query)}/{rank}.html"

    def license_of(self, query: str, rank: int) -> tuple[str, str]:
        """(licence code, author) of a query's rank-th result."""
        spec = self.results[query][rank]
        return spec.license or LICENSES[rank % len(LICENSES)], spec.author or f"Author {rank}"

    def ranked(self, query: str, start: int, count: int) -> list[tuple[int, str, str]]:
        items = self.results.get(query, [])
        return [(r, self.image_url(query, r), self.page_of(query, r)) for r in range(start, min(len(items), start + count))]

    def body_of(self, qid: str, rank: int) -> tuple[ImageSpec, bytes] | None:
        query = self.by_qid.get(qid)
        if query is None or not 0 <= rank < len(self.results[query]):
            return None
        spec = self.results[query][rank]
        data = spec.data
        if spec.fault in ("webp", "png"):
            key = (qid, rank)
            if key not in self._converted:
                self._converted[key] = _convert(data, spec.fault.upper())
            data = self._converted[key]
        return spec, data


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # listen() backlog: the default 5 drops SYNs under load (1 s client retries)
    block_on_close = False


class _Handler(BaseHTTPRequestHandler):
    fake: FakeEngine
    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:  # quiet
        pass

    # -- plumbing -------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", ctype: str = "text/html; charset=utf-8", headers=None,
              length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:  # noqa: N802
        fe = self.fake
        parts = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        hit = fe._count(parts.path, self.headers.get("User-Agent", ""))
        if self.headers.get("Authorization"):
            with fe._lock:
                fe.authorizations.add(self.headers["Authorization"])
        route = parts.path
        if route == "/robots.txt":
            return self._send(200, fe.robots_txt.encode(), "text/plain")
        if route.startswith(("/img/", "/private/", "/loop/")):
            return self._image(route, hit)
        if route.startswith("/gimg2/"):  # Baidu's proxied copies expire (the sec= parameter)
            return self._send(403, b"<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1>"
                                   b"<p>link expired</p></body></html>")
        if route.startswith("/sorry/"):
            return self._send(429, SORRY_PAGE)
        if route == "/redirect":  # a 302 to any URL (?to=): a host that sends clients elsewhere
            return self._send(302, b"", headers={"Location": q.get("to", "/")})
        engine = {"/images/async": "bing", "/search/acjson": "baidu", "/search": "google",
                  "/services/rest/": "flickr", "/services/rest": "flickr", "/w/api.php": "wikimedia",
                  "/v1/images/": "openverse", "/v1/images": "openverse", "/site": "site"}.get(route)
        if engine is None:
            return self._send(404, b"<html><body>Not found</body></html>")
        if self._page_fault(engine, hit):
            return
        getattr(self, f"_{engine}")(q)

    def _page_fault(self, engine: str, hit: int) -> bool:
        fault = self.fake.page_faults.get(engine)
        if fault in ("429", "503") or (fault == "429-once" and hit == 1):
            code = 503 if fault == "503" else 429
            self._send(code, b"<html><body>Too many requests</body></html>", headers={"Retry-After": str(self.fake.retry_after)})
            return True
        if fault in ("500", "404"):
            self._send(int(fault), b"<html><body>error</body></html>")
            return True
        if fault == "403":
            self._send(403, WIKIMEDIA_403)
            return True
        if fault == "captcha":
            self._send(200, CAPTCHA_PAGE)
            return True
        if fault == "sorry":
            self._send(302, b"", headers={"Location": f"/sorry/index?continue={quote(self.path, safe='')}&q=EgQ"})
            return True
        if fault == "antiflag" and engine == "baidu":
            self._send(200, b'{"antiFlag":1,"message":"Forbid spider access","bfe_log_id":"1234567890"}',
                       "application/json; charset=utf-8")
            return True
        if fault == "bad-key" and engine == "flickr":
            self._send(200, b'{"stat":"fail","code":100,"message":"Invalid API Key (Key has expired)"}',
                       "application/json")
            return True
        if fault == "bad-key" and engine == "openverse":
            self._send(401, b'{"detail":"Invalid token."}', "application/json")
            return True
        if fault == "api-error" and engine == "wikimedia":
            self._send(200, json.dumps({"error": {"code": "ratelimited", "info": "You've exceeded your rate limit. "
                                                  "Please wait some time and try again.", "*": ""}}).encode(),
                       "application/json; charset=utf-8")
            return True
        if fault == "drip":
            self._drip(GOOGLE_ENABLEJS.format(sei="drip", q="x").encode(), "text/html; charset=utf-8")
            return True
        if fault == "slow":
            time.sleep(self.fake.slow_seconds)
        return False

    def _drip(self, data: bytes, ctype: str) -> None:
        """One byte every drip_seconds, no Content-Length (the body ends when the connection closes)."""
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.end_headers()
        try:
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(self.fake.drip_seconds)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _results(self, engine: str, query: str, start: int, count: int):
        if self.fake.page_faults.get(engine) == "empty":
            return []
        return self.fake.ranked(query, start, count)

    # -- result pages ---------------------------------------------------------------------------
    def _bing(self, q: dict) -> None:
        query, first = q.get("q", ""), int(q.get("first", "0") or 0)
        count = int(q.get("count", PAGE_SIZES["bing"]) or PAGE_SIZES["bing"])
        rows = self._results("bing", query, first, count)
        if self.fake.page_faults.get("bing") == "changed":
            body = "".join(f'<figure class="res"><img data-full="{u}"></figure>' for _, u, _ in rows)
            return self._send(200, f"<html><body><main>{body}</main></body></html>".encode())
        if self.fake.page_faults.get("bing") == "runs-out" and not rows:
            return self._send(200, b"<html><head><script>var _G={};</script></head><body><div id=\"b_content\"></div>"
                                   b"</body></html>")
        items = []
        for rank, url, page in rows:
            m = json.dumps({"cid": str(rank), "purl": page, "murl": url, "turl": f"{self.fake.base_url}/th/{rank}.jpg",
                            "md5": hashlib.md5(url.encode()).hexdigest(), "t": f"result {rank}"}, separators=(",", ":"))
            items.append(f'<li><div class="iuscp"><div class="imgpt"><a class="iusc" m="{html.escape(m)}" '
                         f'href="/images/search?view=detailV2&amp;id={rank}"><img class="mimg" '
                         f'src="{self.fake.base_url}/th/{rank}.jpg" alt="result"></a></div></div></li>')
        body = f'<html><body><ul class="dgControl_list">{"".join(items)}</ul></body></html>'
        self._send(200, body.encode())

    def _baidu(self, q: dict) -> None:
        query = q.get("word", "")
        pn, rn = int(q.get("pn", "0") or 0), int(q.get("rn", "30") or 30)
        rows = self._results("baidu", query, pn, rn)
        if self.fake.page_faults.get("baidu") == "changed":
            doc = {"result": {"items": [{"image": u} for _, u, _ in rows]}}
        else:
            base = self.fake.base_url
            data = [{"adType": "0", "thumbURL": f"{base}/th/{r}.jpg", "middleURL": f"{base}/th/{r}.jpg",
                     "objURL": baidu_encode(f"{base}/gimg2/app=2002&size=f9999&src={quote(u, safe='')}&sec=1700000000"),
                     "fromURL": baidu_encode(p), "hoverURL": "", "width": 64, "height": 48, "type": "jpg",
                     "fromPageTitleEnc": f"result {r}", "replaceUrl": [{"ObjURL": u, "ObjUrl": u, "FromURL": p,
                                                                         "FromUrl": p}]}
                    for r, u, p in rows]
            doc = {"queryExt": query, "listNum": len(self.fake.results.get(query, [])), "data": data + [{}]}
        self._send(200, json.dumps(doc, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _google(self, q: dict) -> None:
        """What Google image search answers a client without JavaScript: a challenge, no results."""
        sei = hashlib.sha1(q.get("q", "").encode()).hexdigest()[:16]
        self._send(200, GOOGLE_ENABLEJS.format(sei=sei, q=quote(q.get("q", ""))).encode())

    def _flickr(self, q: dict) -> None:
        if not re.fullmatch(r"[0-9a-f]{32}", q.get("api_key", "")):
            return self._send(200, b'{"stat":"fail","code":100,"message":"Invalid API Key (Key has invalid format)"}',
                              "application/json")
        query = q.get("text", "")
        page, per = int(q.get("page", "1") or 1), int(q.get("per_page", "100") or 100)
        wanted = set(q["license"].split(",")) if q.get("license") else None
        rows = [r for r in self._results("flickr", query, 0, 10**6)
                if wanted is None or FLICKR_IDS.get(self.fake.license_of(query, r[0])[0], "0") in wanted]
        total = len(rows)
        photos = []
        for r, u, _ in rows[(page - 1) * per:page * per]:
            code, author = self.fake.license_of(query, r)
            photos.append({"id": str(r), "owner": "12345678@N00", "secret": "abc", "server": "65535", "farm": 66,
                           "title": f"photo {r}", "ispublic": 1, "isfriend": 0, "isfamily": 0,
                           "license": FLICKR_IDS.get(code, "0"), "ownername": author, "url_c": u,
                           "height_c": 600, "width_c": 800})
        doc = {"photos": {"page": page, "pages": max(1, -(-total // per)), "perpage": per, "total": total,
                          "photo": photos}, "stat": "ok"}
        self._send(200, json.dumps(doc).encode(), "application/json")

    def _wikimedia(self, q: dict) -> None:
        query = q.get("gsrsearch", "").replace(" filetype:bitmap", "")
        offset, limit = int(q.get("gsroffset", "0") or 0), int(q.get("gsrlimit", "50") or 50)
        rows = self._results("wikimedia", query, offset, limit)
        if self.fake.page_faults.get("wikimedia") == "changed":
            return self._send(200, json.dumps({"results": [u for _, u, _ in rows]}).encode(), "application/json")
        pages = []
        for i, (r, u, p) in enumerate(rows):
            code, author = self.fake.license_of(query, r)
            name = f"File:Result {r} of {_qid(query)}.jpg"
            meta = {"ObjectName": {"value": f"Result {r}", "source": "commons-desc-page"},
                    "LicenseShortName": {"value": COMMONS_NAMES.get(code, code), "source": "commons-desc-page",
                                         "hidden": ""},
                    "Artist": {"value": f"<a href=\"//commons.wikimedia.org/wiki/User:A{r}\" title=\"User:A{r}\">"
                                        f"{html.escape(author)}</a>", "source": "commons-desc-page"}}
            if code not in ("pdm",):
                meta["LicenseUrl"] = {"value": LICENSE_URLS.get(code, f"https://creativecommons.org/licenses/{code}/"
                                                                      f"{'4.0' if code == 'by-sa' else '2.0'}"),
                                      "source": "commons-desc-page", "hidden": ""}
            pages.append({"pageid": 1000 + r, "ns": 6, "title": name, "index": offset + i + 1,
                          "imagerepository": "local",
                          "imageinfo": [{"size": 4000, "width": 64, "height": 48, "thumburl": u, "thumbwidth": 64,
                                         "thumbheight": 48, "url": u, "descriptionurl": p,
                                         "descriptionshorturl": f"{self.fake.base_url}/w/index.php?curid={1000 + r}",
                                         "mime": "image/jpeg", "extmetadata": meta}]})
        more = len(self.fake.results.get(query, [])) > offset + limit
        doc: dict = {"batchcomplete": True}
        if more:
            doc = {"continue": {"gsroffset": offset + limit, "continue": "gsroffset||"}}
        if pages:
            doc["query"] = {"pages": pages}
        self._send(200, json.dumps(doc).encode(), "application/json; charset=utf-8")

    def _openverse(self, q: dict) -> None:
        query = q.get("q", "")
        page, size = int(q.get("page", "1") or 1), int(q.get("page_size", "20") or 20)
        if size > 20 and not self.headers.get("Authorization"):
            return self._send(401, json.dumps({"detail": "Anonymous requests are limited to page_size 20; "
                                                         "authenticate to request more."}).encode(), "application/json")
        wanted = set(q["license"].split(",")) if q.get("license") else None
        rows = [r for r in self._results("openverse", query, 0, 10**6)
                if wanted is None or self.fake.license_of(query, r[0])[0] in wanted]
        if self.fake.page_faults.get("openverse") == "changed":
            return self._send(200, json.dumps({"items": [u for _, u, _ in rows]}).encode(), "application/json")
        results = []
        for r, u, p in rows[(page - 1) * size:page * size]:
            code, author = self.fake.license_of(query, r)
            version = "1.0" if code in ("cc0", "pdm") else "2.0"
            results.append({"id": f"0000-{r}", "title": f"Result {r}", "indexed_on": "2024-01-01T00:00:00Z",
                            "foreign_landing_url": p, "url": u, "creator": author,
                            "creator_url": f"https://www.flickr.com/photos/a{r}", "license": code,
                            "license_version": version,
                            "license_url": LICENSE_URLS.get(code, f"https://creativecommons.org/licenses/{code}/{version}/"),
                            "provider": "flickr", "source": "flickr", "category": None, "filesize": None,
                            "filetype": "jpg", "tags": [], "attribution": f'"Result {r}" by {author} is licensed under '
                                                                         f"CC {code.upper()} {version}.",
                            "fields_matched": ["title"], "mature": False, "height": 48, "width": 64,
                            "thumbnail": f"{self.fake.base_url}/v1/images/0000-{r}/thumb/",
                            "detail_url": f"{self.fake.base_url}/v1/images/0000-{r}/",
                            "related_url": f"{self.fake.base_url}/v1/images/0000-{r}/related/",
                            "unstable__sensitivity": []})
        doc = {"result_count": len(rows), "page_count": max(1, -(-len(rows) // size)), "page_size": size,
               "page": page, "results": results, "warnings": []}
        self._send(200, json.dumps(doc).encode(), "application/json")

    def _site(self, q: dict) -> None:
        query, p = q.get("q", ""), int(q.get("p", "0") or 0)
        rows = self._results("site", query, p * PAGE_SIZES["site"], PAGE_SIZES["site"])
        imgs = "".join(f'<img src="{u}" alt="x">' for _, u, _ in rows)
        more = len(self.fake.results.get(query, [])) > (p + 1) * PAGE_SIZES["site"]
        nxt = f'<a href="/site?q={quote(query)}&amp;p={p + 1}">next</a>' if more else ""
        body = f'<html><body>{imgs}{nxt}<a href="https://elsewhere.example/">away</a></body></html>'
        self._send(200, body.encode())

    # -- images ---------------------------------------------------------------------------------
    def _image(self, route: str, hit: int) -> None:
        fe = self.fake
        with fe._lock:
            fe._inflight += 1
            fe.max_inflight = max(fe.max_inflight, fe._inflight)
        try:
            if fe.latency:
                time.sleep(fe.latency)
        finally:  # counted before answering: a client cannot start its next request before this
            with fe._lock:
                fe._inflight -= 1
        self._image_body(route, hit)

    def _image_body(self, route: str, hit: int) -> None:
        fe = self.fake
        parts = route.strip("/").split("/")
        if parts[0] == "loop":
            n = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            return self._send(302, b"", headers={"Location": f"/loop/{(n + 1) % 3}"})
        try:
            qid, rank = parts[1], int(parts[2].split(".")[0])
        except (IndexError, ValueError):
            return self._send(404, b"no such image")
        found = fe.body_of(qid, rank)
        if found is None:
            return self._send(404, b"<html><body>404 Not Found</body></html>")
        spec, data = found
        fault = spec.fault
        ctype = "image/jpeg" if fault in ("webp", "png") else _MIME.get(_format_of(data), "image/jpeg")
        if fault in ("404", "500", "503"):
            return self._send(int(fault), b"<html><body>error</body></html>")
        if fault == "429-always" or (fault == "429" and hit <= fe.retry_times):
            return self._send(429, b"slow down", "text/plain", headers={"Retry-After": str(fe.retry_after)})
        if fault == "slow":
            time.sleep(fe.slow_seconds)
        if fault == "redirect" and "redirected" not in route:
            return self._send(302, b"", headers={"Location": route.rsplit(".", 1)[0] + ".redirected." + route.rsplit(".", 1)[1]})
        if fault == "redirect-loop":
            return self._send(302, b"", headers={"Location": "/loop/0"})
        if fault == "html":
            return self._send(200, b"<!DOCTYPE html><html><head><title>Access denied</title></head><body>"
                                   b"<h1>403 Forbidden</h1></body></html>", "image/jpeg")
        if fault == "bomb":
            return self._send(200, bomb_png(), "image/png")
        if fault == "noai":
            return self._send(200, data, ctype, headers={"X-Robots-Tag": "noai, noimageai"})
        if fault == "cut":
            return self._send(200, data[: len(data) // 2], ctype)
        if fault == "truncated":
            return self._send(200, data[: len(data) // 2], ctype, length=len(data))
        if fault == "timeout":
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:16])
            self.wfile.flush()
            time.sleep(fe.stall_seconds)
            return
        if fault in ("huge", "huge-declared"):
            return self._huge(data, declared=fault == "huge-declared")
        if fault == "drip":
            return self._drip(data, ctype)
        self._send(200, data, ctype)

    def _huge(self, data: bytes, declared: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        if declared:
            self.send_header("Content-Length", str(self.fake.huge_bytes))
        self.end_headers()
        sent, block = 0, data[:2] + b"\x00" * (64 << 10)
        try:
            while sent < self.fake.huge_bytes:
                self.wfile.write(block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass
