"""Search engines on icrawler 0.6.10: its Feeder and Parser classes, with the parts that lose
results replaced.

Each engine is an icrawler Feeder subclass (which result-page URLs to ask for, from a base URL
that can be overridden, with the keyword URL-encoded) and an icrawler Parser subclass whose
`read_page(content, url)` returns every image URL on a page (any format) and says whether the
page was recognised at all, or which refusal it holds (datacurate/scrape/refusals.py), and what
the engine says about each image's licence and author (`Page.info`). The parsers still answer
icrawler's `parse(response)` contract, so they plug into an icrawler `Crawler` too.

Google image search is not offered: it answers clients without JavaScript with a challenge page
that holds no images (see options.RETIRED); the refusal detector still names that page. icrawler's own thread pools and downloader are not used:
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
from icrawler.utils import Signal

from datacurate.scrape import licenses as lic
from datacurate.scrape import refusals
from datacurate.scrape.options import ENGINES as BASES
from datacurate.scrape.refusals import Refusal

IMAGE_URL_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


@dataclass
class Page:
    """What one result page held: (image URL, page URL) pairs, links to follow, recognised or not,
    a refusal instead of results, and per image URL what the engine says of it (license,
    license_version, license_url, author, title)."""

    candidates: list[tuple[str, str | None]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    recognised: bool = True
    refusal: Refusal | None = None
    info: dict[str, dict] = field(default_factory=dict)
    url: str | None = None
    results_like: bool = False  # an unrecognised page that still holds images or image URLs (new markup?)


def _json(content: bytes):
    try:
        return json.loads(_text(content), strict=False)
    except ValueError:
        return None


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
    """JSON `data` list: the original image from `replaceUrl[0].ObjURL` (the de-obfuscated `objURL`
    of newer answers is a gimg2.baidu.com link that expires), else `objURL` (de-obfuscated by
    icrawler's decoder), else hoverURL/middleURL/thumbURL. `{"antiFlag": 1, "message": ...}` is a
    refusal; a missing `data` key is an unrecognised page, not a dead thread."""

    _decode = _IcBaiduParser._decode_url

    @classmethod
    def read_page(cls, content: bytes, url: str) -> Page:
        doc = _json(_text(content).replace("\\'", "'").encode())
        if isinstance(doc, dict) and doc.get("antiFlag"):
            words = str(doc.get("message") or "antiFlag")
            return Page(recognised=True, refusal=Refusal("blocked", f"{words} (antiFlag {doc['antiFlag']})", 200, url))
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
            return Page(recognised=False)
        pairs = []
        for item in doc["data"]:
            if not isinstance(item, dict):
                continue
            page = cls._plain(item["fromURL"]) if item.get("fromURL") else None
            first = item["replaceUrl"][0] if isinstance(item.get("replaceUrl"), list) and item["replaceUrl"] else None
            original = (first.get("ObjURL") or first.get("ObjUrl")) if isinstance(first, dict) else None
            if original:
                pairs.append((original, first.get("FromURL") or first.get("FromUrl") or page))
            elif item.get("objURL"):
                pairs.append((cls._plain(item["objURL"]), page))
            else:
                plain = item.get("hoverURL") or item.get("middleURL") or item.get("thumbURL")
                if plain:
                    pairs.append((plain, page))
        return Page(_unique(pairs))

    @classmethod
    def _plain(cls, value: str) -> str:
        return value if value.startswith(("http://", "https://")) else cls._decode(None, value)


# -- Flickr -----------------------------------------------------------------------------------------
class FlickrFeeder(Feeder):
    """flickr.photos.search pages with the image URLs, licence and owner asked for as `extras` (no
    getSizes calls); `--license` becomes the `license` parameter (Flickr's licence ids)."""

    page_size = 100

    def feed(self, keyword, offset, max_num, apikey="", base_url="https://api.flickr.com", licenses=None):
        for i in range(offset, offset + max_num, self.page_size):
            params = {"method": "flickr.photos.search", "api_key": apikey, "text": keyword, "format": "json",
                      "nojsoncallback": 1, "sort": "relevance", "content_type": 1, "media": "photos",
                      "extras": "license,owner_name,url_l,url_c,url_z,url_m,url_o", "per_page": self.page_size,
                      "page": i // self.page_size + 1}
            if licenses is not None:
                params["license"] = ",".join(k for k, v in lic.FLICKR.items() if v[0] in licenses)
            self.out_queue.put(f"{base_url.rstrip('/')}/services/rest/?" + urlencode(params))


class FlickrParser(_PageParser):
    """`photos.photo[]`; `{"stat": "fail", "code": 100, "message": ...}` is a bad key, other codes
    the engine's own error."""

    @classmethod
    def read_page(cls, content: bytes, url: str) -> Page:
        doc = _json(content)
        if isinstance(doc, dict) and doc.get("stat") == "fail":
            words = f"{doc.get('message') or 'stat: fail'} (code {doc.get('code')})"
            return Page(refusal=Refusal("bad-key" if doc.get("code") == 100 else "engine-error", words, 200, url))
        try:
            photos = doc["photos"]["photo"]
        except (KeyError, TypeError):
            return Page(recognised=False)
        pairs, info = [], {}
        for p in photos:
            src = next((p[k] for k in ("url_l", "url_c", "url_z", "url_m", "url_o") if p.get(k)), None)
            if src:
                pairs.append((src, f"https://www.flickr.com/photos/{p.get('owner', '')}/{p.get('id', '')}"))
                code, version, lurl = lic.FLICKR.get(str(p.get("license", "")), (None, None, None))
                info[src] = {"license": code, "license_version": version, "license_url": lurl,
                             "author": p.get("ownername") or p.get("owner"), "title": p.get("title")}
        return Page(_unique(pairs), info=info)


# -- Wikimedia Commons ------------------------------------------------------------------------------
class WikimediaFeeder(Feeder):
    """The Commons API: files (namespace 6, bitmaps) found by full-text search, with their URL, size,
    MIME type and licence metadata in one answer (generator=search, prop=imageinfo)."""

    page_size = 50
    thumb_width = 1280  # one of Commons' standard thumbnail widths; originals run to tens of MB

    def feed(self, keyword, offset, max_num, base_url="https://commons.wikimedia.org"):
        for i in range(offset, offset + max_num, self.page_size):
            params = {"action": "query", "format": "json", "formatversion": 2, "generator": "search",
                      "gsrsearch": f"{keyword} filetype:bitmap", "gsrnamespace": 6, "gsrlimit": self.page_size,
                      "gsroffset": i, "prop": "imageinfo", "iiprop": "url|size|mime|extmetadata",
                      "iiextmetadatafilter": "LicenseShortName|LicenseUrl|License|Artist|ObjectName",
                      "iiurlwidth": self.thumb_width, "maxlag": 5}
            self.out_queue.put(f"{base_url.rstrip('/')}/w/api.php?" + urlencode(params))


class WikimediaParser(_PageParser):
    """`query.pages[].imageinfo[0]` (formatversion 2 list or 1 mapping) in search order; licence
    from extmetadata LicenseShortName/LicenseUrl, author from Artist (HTML to text)."""

    @classmethod
    def read_page(cls, content: bytes, url: str) -> Page:
        doc = _json(content)
        if not isinstance(doc, dict):
            return Page(recognised=False)
        if isinstance(doc.get("error"), dict):
            err = doc["error"]
            kind = "blocked" if err.get("code") in ("ratelimited", "blocked", "autoblocked") else "engine-error"
            return Page(refusal=Refusal(kind, f"{err.get('info') or err.get('code')} ({err.get('code')})", 200, url))
        if "query" not in doc:
            return Page(recognised="batchcomplete" in doc or "continue" in doc)
        pages = doc["query"].get("pages") or []
        pages = list(pages.values()) if isinstance(pages, dict) else list(pages)
        pairs, info = [], {}
        for p in sorted((p for p in pages if isinstance(p, dict)), key=lambda p: p.get("index", 0)):
            ii = (p.get("imageinfo") or [None])[0]
            if not isinstance(ii, dict) or not str(ii.get("mime", "image/")).startswith("image/"):
                continue
            src = ii.get("thumburl") or ii.get("url")
            if not src:
                continue
            meta = ii.get("extmetadata") or {}
            value = lambda k: _html_text((meta.get(k) or {}).get("value"))  # noqa: E731
            code, version = lic.normalise(value("LicenseShortName") or value("License"), value("LicenseUrl"))
            pairs.append((src, ii.get("descriptionurl")))
            info[src] = {"license": code, "license_version": version, "license_url": value("LicenseUrl"),
                         "author": value("Artist"), "title": value("ObjectName") or p.get("title")}
        return Page(_unique(pairs), info=info)


def _html_text(value) -> str | None:
    if not value:
        return None
    text = BeautifulSoup(str(value), "html.parser").get_text(" ", strip=True) if "<" in str(value) else str(value)
    return " ".join(text.split()) or None


# -- Openverse --------------------------------------------------------------------------------------
class OpenverseFeeder(Feeder):
    """`/v1/images/?q=&page=&page_size=20` (anonymous clients get at most 20 a page); `--license`
    becomes the `license` parameter."""

    page_size = 20

    def feed(self, keyword, offset, max_num, base_url="https://api.openverse.org", licenses=None):
        for i in range(offset, offset + max_num, self.page_size):
            params = {"q": keyword, "page": i // self.page_size + 1, "page_size": self.page_size}
            if licenses is not None:
                params["license"] = ",".join(sorted(licenses))
            self.out_queue.put(f"{base_url.rstrip('/')}/v1/images/?" + urlencode(params))


class OpenverseParser(_PageParser):
    """`results[]`: url, foreign_landing_url, license, license_version, license_url, creator, title."""

    @classmethod
    def read_page(cls, content: bytes, url: str) -> Page:
        doc = _json(content)
        if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
            return Page(recognised=False)
        pairs, info = [], {}
        for r in doc["results"]:
            if isinstance(r, dict) and r.get("url"):
                pairs.append((r["url"], r.get("foreign_landing_url")))
                code = str(r.get("license") or "").lower() or None
                info[r["url"]] = {"license": code, "license_version": r.get("license_version"),
                                  "license_url": r.get("license_url"), "author": r.get("creator"),
                                  "title": r.get("title")}
        return Page(_unique(pairs), info=info)


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
    "bing": (BingFeeder, BingParser), "baidu": (BaiduFeeder, BaiduParser),
    "wikimedia": (WikimediaFeeder, WikimediaParser), "openverse": (OpenverseFeeder, OpenverseParser),
    "flickr": (FlickrFeeder, FlickrParser), "greedy": (GreedyFeeder, GreedyParser), "urls": (None, None),
}
ENGINES = {name: EngineSpec(name, f, p, BASES[name], getattr(f, "page_size", 0)) for name, (f, p) in _CLASSES.items()}


def page_urls(spec: EngineSpec, query: str, base_url: str, max_pages: int, apikey: str = "",
              licenses: frozenset[str] | None = None) -> list[str]:
    """The result-page URLs an engine's icrawler feeder puts on its queue for one query."""
    feeder = spec.feeder(1, Signal(), None)
    feeder.out_queue = queue.Queue()
    kwargs: dict = {"base_url": base_url}
    if spec.name == "flickr":
        kwargs["apikey"] = apikey
    if spec.name in ("flickr", "openverse"):
        kwargs["licenses"] = licenses
    if spec.name == "greedy":
        feeder.feed(query, **kwargs)
    else:
        feeder.feed(query, 0, max(1, max_pages) * spec.page_size, **kwargs)
    return list(feeder.out_queue.queue)


def read_page(spec: EngineSpec, content: bytes, url: str) -> Page:
    """Parse one result page with the engine's parser; a page without results that holds a JavaScript
    wall, /sorry/ or a CAPTCHA is a refusal, whichever the engine."""
    page = spec.parser.read_page(content, url)
    page.url = url
    if page.refusal is None and not page.candidates:
        found = refusals.in_page(content, url)
        if found is not None:
            page.refusal, page.recognised = found, True
    if not page.recognised:
        page.results_like = len(_IMAGE_TAGS.findall(content)) + len(_IMAGE_URLS.findall(content)) >= 2
    return page


# An unrecognised page with these is results in markup the parser does not know; without them it is a blank
# page (what an engine sends past the last result).
_IMAGE_TAGS = re.compile(rb"<img\b", re.I)
_IMAGE_URLS = re.compile(rb"https?:(?:\\?/){2}[^\s\"'<>]+?\.(?:jpe?g|png|gif|webp|bmp|tiff?)\b", re.I)
