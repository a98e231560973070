"""Search engines on icrawler 0.6.10: its Feeder and Parser classes, with the parts that lose
results replaced.

Each engine is an icrawler Feeder subclass (which result-page URLs to ask for, from a base URL
that can be overridden, with the keyword URL-encoded) and an icrawler Parser subclass whose
`read_page(content, url)` returns every image URL on a page (any format) and says whether the
page was recognised at all. The parsers still answer icrawler's `parse(response)` contract, so
they plug into an icrawler `Crawler` too. icrawler's own thread pools and downloader are not used:
they poll with fixed sleeps, save by counter and URL extension, and cannot be made polite
(see datacurate/scrape/download.py for what replaces them).
"""

from __future__ import annotations

import html
import json
import queue
import re
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import quote, quote_plus, urlencode, urljoin, urlsplit

from bs4 import BeautifulSoup
from icrawler import Feeder, Parser
from icrawler.builtin.baidu import BaiduFeeder as _IcBaiduFeeder, BaiduParser as _IcBaiduParser
from icrawler.builtin.bing import BingFeeder as _IcBingFeeder
from icrawler.builtin.google import GoogleFeeder as _IcGoogleFeeder
from icrawler.utils import Signal

from datacurate.scrape.options import ENGINES as BASES

IMAGE_URL_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


@dataclass
class Page:
    """What one result page held: (image URL, page URL) pairs, links to follow, recognised or not."""

    candidates: list[tuple[str, str | None]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    recognised: bool = True


def _text(content: bytes) -> str:
    return content.decode("utf-8", "ignore")


def _http(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def _unique(pairs: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    seen: set[str] = set()
    out = []
    for url, page in pairs:
        if url and url not in seen and _http(url):
            seen.add(url)
            out.append((url, page))
    return out


class _PageParser(Parser):
    """icrawler Parser whose parsing lives in `read_page` (no thread state needed)."""

    def __init__(self, thread_num: int = 1, signal=None, session=None, **kwargs):
        super().__init__(thread_num, signal or Signal(), session, **kwargs)

    @classmethod
    def read_page(cls, content: bytes, url: str) -> Page:  # pragma: no cover - abstract
        raise NotImplementedError

    def parse(self, response, **kwargs) -> Iterator[dict]:
        page = self.read_page(response.content, response.url)
        for rank, (file_url, page_url) in enumerate(page.candidates):
            yield {"file_url": file_url, "page_url": page_url, "rank": rank}


# -- Bing -------------------------------------------------------------------------------------------
class BingFeeder(_IcBingFeeder):
    """icrawler's BingFeeder with a base URL, an encoded keyword and Bing's real page size (35)."""

    page_size = 35

    def feed(self, keyword, offset, max_num, filters=None, base_url="https://www.bing.com"):
        filter_str = self.get_filter().apply(filters)
        extra = "&qft=" + quote(filter_str, safe="+:-_") if filter_str else ""
        for i in range(offset, offset + max_num, self.page_size):
            self.out_queue.put(f"{base_url.rstrip('/')}/images/async?q={quote_plus(keyword)}&first={i}"
                               f"&count={self.page_size}&mmasync=1{extra}")


class BingParser(_PageParser):
    """Reads the JSON in every `m` attribute (a.iusc / div.imgpt > a); keeps every image format."""

    @classmethod
    def read_page(cls, content: bytes, url: str) -> Page:
        soup = BeautifulSoup(_text(content), "html.parser")
        anchors = soup.find_all("a", attrs={"m": True})  # a.iusc[m], div.imgpt > a[m] (no CSS engine: fast)
        pairs = []
        for a in anchors:
            try:
                meta = json.loads(html.unescape(a["m"]))
            except (ValueError, TypeError):
                continue
            if isinstance(meta, dict) and meta.get("murl"):
                pairs.append((meta["murl"], meta.get("purl")))
        recognised = bool(anchors) or bool(soup.find(class_=("dgControl_list", "dgControl"))
                                           or soup.find(id="mmComponent_images_1"))
        return Page(_unique(pairs), recognised=recognised)


# -- Baidu ------------------------------------------------------------------------------------------
class BaiduFeeder(_IcBaiduFeeder):
    """icrawler's BaiduFeeder with a base URL and the keyword encoded as UTF-8."""

    page_size = 30

    def feed(self, keyword, offset, max_num, filters=None, base_url="https://image.baidu.com"):
        filter_str = self.get_filter().apply(filters, sep="&")
        for i in range(offset, offset + max_num, self.page_size):
            url = (f"{base_url.rstrip('/')}/search/acjson?tn=resultjson_com&ipn=rj&word={quote(keyword)}"
                   f"&pn={i}&rn={self.page_size}")
            self.out_queue.put(url + ("&" + filter_str if filter_str else ""))


class BaiduParser(_PageParser):
    """JSON `data` list (objURL de-obfuscated by icrawler's decoder, else hoverURL/middleURL/
    thumbURL, and the newer replaceUrl list); a missing `data` key is an unrecognised page, not a
    dead thread."""

    _decode = _IcBaiduParser._decode_url

    @classmethod
    def read_page(cls, content: bytes, url: str) -> Page:
        try:
            doc = json.loads(_text(content).replace("\\'", "'"), strict=False)
        except ValueError:
            return Page(recognised=False)
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
            return Page(recognised=False)
        pairs = []
        for item in doc["data"]:
            if not isinstance(item, dict):
                continue
            page = cls._decode(None, item["fromURL"]) if item.get("fromURL") else None
            if item.get("objURL"):
                pairs.append((cls._decode(None, item["objURL"]), page))
            elif isinstance(item.get("replaceUrl"), list) and item["replaceUrl"]:
                last = item["replaceUrl"][-1]
                pairs.append((last.get("ObjURL") or last.get("ObjUrl"), last.get("FromURL") or page))
            else:
                plain = item.get("hoverURL") or item.get("middleURL") or item.get("thumbURL")
                if plain:
                    pairs.append((plain, page))
        return Page(_unique(pairs))


# -- Google -----------------------------------------------------------------------------------------
class GoogleFeeder(_IcGoogleFeeder):
    """icrawler's GoogleFeeder with a base URL."""

    page_size = 100

    def feed(self, keyword, offset, max_num, language=None, filters=None, base_url="https://www.google.com"):
        filter_str = self.get_filter().apply(filters, sep=",")
        for i in range(offset, offset + max_num, self.page_size):
            params = dict(q=keyword, ijn=i // self.page_size, start=i, tbs=filter_str, tbm="isch")
            if language:
                params["lr"] = "lang_" + language
            self.out_queue.put(f"{base_url.rstrip('/')}/search?" + urlencode(params))


_GOOGLE_ARRAY = re.compile(r'\["(https?://[^"\\]*(?:\\.[^"\\]*)*)",(\d+),(\d+)\]')
_GOOGLE_LOOSE = re.compile(r'https?://[^"\'\s\\\[\]]+?\.(?:jpe?g|png|webp|gif|bmp)\b', re.I)


class GoogleParser(_PageParser):
    """Image URLs from the `["url", height, width]` arrays in the page's scripts, every format,
    thumbnails (encrypted-tbn*.gstatic.com) left out; no match is an empty page, not a TypeError."""

    @classmethod
    def read_page(cls, content: bytes, url: str) -> Page:
        soup = BeautifulSoup(_text(content), "html.parser")
        scripts = [s.get_text() for s in soup.find_all("script")]
        pairs = []
        for txt in scripts:
            found = [m.group(1) for m in _GOOGLE_ARRAY.finditer(txt)] or _GOOGLE_LOOSE.findall(txt)
            for raw in found:
                u = _unescape_js(raw)
                if "gstatic.com" not in urlsplit(u).netloc:
                    pairs.append((u, None))
        recognised = any("AF_initDataCallback" in t for t in scripts) or bool(pairs)
        return Page(_unique(pairs), recognised=recognised)


def _unescape_js(s: str) -> str:
    try:
        return json.loads(f'"{s}"')
    except ValueError:
        return s.encode("utf-8").decode("unicode-escape", "ignore")


# -- Flickr -----------------------------------------------------------------------------------------
class FlickrFeeder(Feeder):
    """flickr.photos.search pages with the image URLs asked for as `extras` (no getSizes calls)."""

    page_size = 100

    def feed(self, keyword, offset, max_num, apikey="", base_url="https://api.flickr.com"):
        for i in range(offset, offset + max_num, self.page_size):
            params = {"method": "flickr.photos.search", "api_key": apikey, "text": keyword, "format": "json",
                      "nojsoncallback": 1, "sort": "relevance", "content_type": 1, "media": "photos",
                      "extras": "url_l,url_c,url_z,url_m,url_o", "per_page": self.page_size,
                      "page": i // self.page_size + 1}
            self.out_queue.put(f"{base_url.rstrip('/')}/services/rest/?" + urlencode(params))


class FlickrParser(_PageParser):
    @classmethod
    def read_page(cls, content: bytes, url: str) -> Page:
        try:
            doc = json.loads(_text(content))
            photos = doc["photos"]["photo"]
        except (ValueError, KeyError, TypeError):
            return Page(recognised=False)
        pairs = []
        for p in photos:
            src = next((p[k] for k in ("url_l", "url_c", "url_z", "url_m", "url_o") if p.get(k)), None)
            if src:
                pairs.append((src, f"https://www.flickr.com/photos/{p.get('owner', '')}/{p.get('id', '')}"))
        return Page(_unique(pairs))


# -- Greedy (one site) ------------------------------------------------------------------------------
class GreedyFeeder(Feeder):
    """The start page of a site; `{query}` in the base URL is replaced by the encoded query."""

    page_size = 0

    def feed(self, keyword, offset=0, max_num=0, base_url=""):
        self.out_queue.put(base_url.replace("{query}", quote_plus(keyword)))


class GreedyParser(_PageParser):
    """<img src/srcset/data-src> and links to image files as candidates; same-site pages as links."""

    @classmethod
    def read_page(cls, content: bytes, url: str) -> Page:
        soup = BeautifulSoup(_text(content), "html.parser")
        host = urlsplit(url).netloc
        pairs, links = [], []
        for img in soup.find_all("img"):
            for attr in ("src", "data-src", "data-original"):
                if img.get(attr):
                    pairs.append((urljoin(url, img[attr].strip()), url))
            if img.get("srcset"):
                best = img["srcset"].split(",")[-1].strip().split(" ")[0]
                pairs.append((urljoin(url, best), url))
        for a in soup.find_all("a", href=True):
            target = urljoin(url, a["href"].strip()).split("#")[0]
            if not _http(target):
                continue
            if urlsplit(target).path.lower().endswith(IMAGE_URL_EXTENSIONS):
                pairs.append((target, url))
            elif urlsplit(target).netloc == host:
                links.append(target)
        return Page(_unique(pairs), links=list(dict.fromkeys(links)))


# -- registry ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineSpec:
    """An engine: its icrawler feeder and parser, default base URL, and whether it needs a query."""

    name: str
    feeder: type | None
    parser: type | None
    default_base: str | None
    page_size: int


_CLASSES = {
    "bing": (BingFeeder, BingParser), "baidu": (BaiduFeeder, BaiduParser), "google": (GoogleFeeder, GoogleParser),
    "flickr": (FlickrFeeder, FlickrParser), "greedy": (GreedyFeeder, GreedyParser), "urls": (None, None),
}
ENGINES = {name: EngineSpec(name, f, p, BASES[name], getattr(f, "page_size", 0)) for name, (f, p) in _CLASSES.items()}


def page_urls(spec: EngineSpec, query: str, base_url: str, max_pages: int, apikey: str = "") -> list[str]:
    """The result-page URLs an engine's icrawler feeder puts on its queue for one query."""
    feeder = spec.feeder(1, Signal(), None)
    feeder.out_queue = queue.Queue()
    kwargs = {"base_url": base_url}
    if spec.name == "flickr":
        kwargs["apikey"] = apikey
    if spec.name == "greedy":
        feeder.feed(query, **kwargs)
    else:
        feeder.feed(query, 0, max(1, max_pages) * spec.page_size, **kwargs)
    return list(feeder.out_queue.queue)


def read_page(spec: EngineSpec, content: bytes, url: str) -> Page:
    """Parse one result page with the engine's parser."""
    return spec.parser.read_page(content, url)
