"""Scrape pieces that need no subprocess: parsers (against icrawler's own), header rules, queries."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest
from icrawler.builtin.bing import BingParser as IcBingParser

from datacurate.core.errors import UserError
from datacurate.scrape import engines as eng
from datacurate.demo.engine import FakeEngine, ImageSpec, baidu_encode, bomb_png, make_image
from datacurate.scrape.net import HostGate, is_private_address, retry_after_seconds, x_robots_forbids
from datacurate.scrape.options import DEFAULTS, check_options, parse_size
from datacurate.scrape.queries import class_text, plan_queries, render


class _Resp:
    def __init__(self, content: bytes, url: str):
        self.content, self.url = content, url


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read()


@pytest.fixture(scope="module")
def fake():
    items = [make_image(1), make_image(2, fmt="PNG"), make_image(3, fmt="WEBP"), make_image(4, fmt="GIF")]
    with FakeEngine({"cat": items, "空": []}) as fe:
        yield fe


def test_bing_parser_keeps_every_format_where_icrawler_keeps_jpg_only(fake):
    url = f"{fake.base_url}/images/async?q=cat&first=0"
    body = _get(url)
    ours = eng.BingParser.read_page(body, url)
    assert [u.rsplit(".", 1)[1] for u, _ in ours.candidates] == ["jpg", "png", "webp", "gif"]
    assert all(p and p.endswith(".html") for _, p in ours.candidates)
    theirs = [t["file_url"] for t in IcBingParser(1, None, None).parse(_Resp(body, url))]
    # icrawler's regex keeps .jpg only: a PNG/WebP/GIF result spills into the next JSON field
    assert [u for u in theirs if '"' not in u] == [ours.candidates[0][0]]
    assert all('"turl":"' in u for u in theirs[1:])


def test_baidu_parser_decodes_objurl_and_survives_missing_data(fake):
    url = "http://example.com/a/b_c-1.jpg?x=9"
    assert eng.BaiduParser._decode(None, baidu_encode(url)) == url
    page_url = f"{fake.base_url}/search/acjson?tn=resultjson_com&ipn=rj&word=cat&pn=0&rn=30"
    page = eng.BaiduParser.read_page(_get(page_url), page_url)
    assert len(page.candidates) == 4 and page.candidates[0][0].startswith(fake.base_url + "/img/")
    assert eng.BaiduParser.read_page(b'{"result": 1}', page_url).recognised is False
    assert eng.BaiduParser.read_page(b"<html>blocked</html>", page_url).recognised is False


def test_feeders_encode_queries_and_take_a_base_url():
    urls = eng.page_urls(eng.ENGINES["bing"], "ham & eggs #1+2", "http://m.example:81/", 2)
    assert urls == [
        "http://m.example:81/images/async?q=ham+%26+eggs+%231%2B2&first=0&count=35&mmasync=1",
        "http://m.example:81/images/async?q=ham+%26+eggs+%231%2B2&first=35&count=35&mmasync=1",
    ]
    baidu = eng.page_urls(eng.ENGINES["baidu"], "易拉罐", "https://image.baidu.com", 1)
    assert baidu == ["https://image.baidu.com/search/acjson?tn=resultjson_com&ipn=rj&word=%E6%98%93%E6%8B%89%E7%BD%90&pn=0&rn=30"]
    assert eng.page_urls(eng.ENGINES["greedy"], "red cup", "http://s.example/find?q={query}", 5) == ["http://s.example/find?q=red+cup"]


def test_greedy_parser_finds_images_and_same_site_links(fake):
    url = f"{fake.base_url}/site?q=cat&p=0"
    page = eng.GreedyParser.read_page(_get(url), url)
    assert len(page.candidates) == 4
    assert page.links == []  # 4 results fit one page; the off-site link is not followed


def test_x_robots_tag_rules():
    assert x_robots_forbids("noai", "datacurate") == "noai"
    assert x_robots_forbids("index, noimageai", "datacurate") == "noimageai"
    assert x_robots_forbids("googlebot: noindex", "datacurate") is None
    assert x_robots_forbids("datacurate: noindex", "datacurate") == "noindex"
    assert x_robots_forbids("all", "datacurate") is None
    assert x_robots_forbids("noarchive, nofollow", "datacurate") is None


def test_retry_after_and_private_addresses():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert 0 <= retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") < 1
    for ip in ("127.0.0.1", "10.1.2.3", "192.168.0.9", "169.254.169.254", "::1", "fe80::1", "0.0.0.0", "::ffff:10.0.0.1"):
        assert is_private_address(ip), ip
    for ip in ("93.184.216.34", "2606:2800:220:1::1"):
        assert not is_private_address(ip), ip


def test_host_gate_limits_concurrency_and_spaces_starts():
    gate = HostGate(per_host=2, delay=0.05, stop=threading.Event())
    starts, active, peak, lock = [], [0], [0], threading.Lock()

    def work():
        gate.enter("h")
        with lock:
            starts.append(time.monotonic())
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.03)
        with lock:
            active[0] -= 1
        gate.leave("h")

    threads = [threading.Thread(target=work) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    starts.sort()
    assert peak[0] <= 2
    assert all(b - a >= 0.045 for a, b in zip(starts, starts[1:]))


def test_queries_render_class_names_and_reject_bad_templates():
    assert class_text("可回收物_易拉罐") == "可回收物 易拉罐"
    assert render("{class} {suffix}", "tin_can", "") == "tin can"
    plan = plan_queries(["ben", "cat"], "{class} {suffix}", "toy", {"ben": ["ben 10 figure", "{class} action {suffix}"]})
    assert plan == {"ben": ["ben 10 figure", "ben action toy"], "cat": ["cat toy"]}
    with pytest.raises(UserError, match="no \\{class\\}"):
        plan_queries(["a"], "{suffix} photos", "x", {})
    with pytest.raises(UserError, match="unknown field"):
        plan_queries(["a"], "{class} {kind}", "x", {})


def test_options_are_checked(monkeypatch):
    monkeypatch.delenv("FLICKR_APIKEY", raising=False)
    with pytest.raises(UserError, match="needs an API key"):
        check_options({**DEFAULTS, "engine": "flickr"})
    with pytest.raises(UserError, match="expected ENGINE=URL"):
        check_options({**DEFAULTS, "base_url": ["bing"]})
    with pytest.raises(UserError, match="not an http"):
        check_options({**DEFAULTS, "base_url": {"bing": "ftp://x"}})
    assert parse_size("20MB") == 20 << 20 and parse_size(512) == 512 and parse_size("1.5k") == 1536
    for bad in ("lots", "-1", "0"):
        with pytest.raises(UserError):
            parse_size(bad)
    with pytest.raises(UserError, match="unknown engine 'yahoo'"):
        check_options({**DEFAULTS, "engine": "bing,yahoo"})
    with pytest.raises(UserError, match="per_host must be a whole number from 1"):
        check_options({**DEFAULTS, "per_host": 0})
    with pytest.raises(UserError, match="greedy"):
        check_options({**DEFAULTS, "engine": "greedy"})
    opts = check_options({**DEFAULTS, "engine": "Baidu, bing", "base_url": ["baidu=http://127.0.0.1:9"]})
    assert opts.engines == ["baidu", "bing"] and opts.base_for("baidu") == "http://127.0.0.1:9"
    assert opts.base_for("bing") == "https://www.bing.com"


def test_fake_engine_bomb_and_specs():
    from PIL import Image
    import io

    with pytest.raises(ValueError):
        ImageSpec(b"x", fault="nope")
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(bomb_png()))


def test_net_robots_opt_out_redirect_cap_and_private_refusal():
    from datacurate.scrape.net import Net, NetConfig, Refused

    specs = [make_image(1), ImageSpec(make_image(2), fault="robots"), ImageSpec(make_image(3), fault="redirect-loop")]
    with FakeEngine({"q": specs}, robots_txt="User-agent: datacurate\nDisallow: /private/\n") as fe:
        polite = Net(NetConfig("datacurate/test", "datacurate", delay=0, allow_private=True, max_redirects=3))
        with pytest.raises(Refused) as exc:
            polite.fetch(fe.image_url("q", 1), max_bytes=1 << 20)
        assert exc.value.reason == "robots-txt"
        rude = Net(NetConfig("datacurate/test", "datacurate", delay=0, allow_private=True, ignore_robots=True))
        assert rude.fetch(fe.image_url("q", 1), max_bytes=1 << 20).data[:3] == b"\xff\xd8\xff"
        with pytest.raises(Refused) as exc:
            polite.fetch(fe.image_url("q", 2), max_bytes=1 << 20)
        assert exc.value.reason == "too-many-redirects" and fe.hits("/loop/") == 3
        with pytest.raises(Refused) as exc:
            Net(NetConfig("x", "datacurate")).fetch(fe.image_url("q", 0), max_bytes=1 << 20)
        assert exc.value.reason == "private-address"
        assert fe.hits("/img/") == 1  # only the redirect-loop's first hop; the refused ones never connected
