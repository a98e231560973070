"""Parsers against fixtures with the structure of real engine answers (as captured 2021-2026 and as
the APIs' own docs show them): results read, refusals named, licences normalised."""

from __future__ import annotations

import html
import json

import pytest

from datacurate.core.errors import UserError
from datacurate.scrape import engines as eng
from datacurate.demo.engine import baidu_encode
from datacurate.scrape.licenses import normalise, parse_filter
from datacurate.scrape.refusals import from_status, in_page


def _m(murl: str, purl: str, n: int) -> str:
    meta = {"sid": "", "cturl": "", "cid": f"c{n}", "purl": purl, "murl": murl,
            "turl": f"https://tse{n}.mm.bing.net/th/id/OIP.a{n}?pid=ImgDet&rs=1", "md5": f"{n:032x}",
            "shkey": "", "t": f"Tin can {n} | Example", "mid": f"{n:040X}", "desc": "", "ow": 1200, "oh": 800}
    return html.escape(json.dumps(meta, separators=(",", ":")), quote=True)


BING = ('<!DOCTYPE html><html><body><div id="mmComponent_images_1"><ul class="dgControl_list">'
        + "".join(f'<li data-idx="{n}"><div class="iuscp isv"><div class="imgpt"><a class="iusc" style="height:186px;'
                  f'width:279px" m="{_m(u, p, n)}" mad="{{}}" href="/images/search?view=detailV2&amp;ccid=a{n}&amp;'
                  f'id={n:040X}"><div class="img_cont hoff"><img class="mimg" src="https://tse{n}.mm.bing.net/th?'
                  f'id=OIP.a{n}&amp;w=279" alt="tin can"></div></a></div></div></li>'
                  for n, (u, p) in enumerate([("https://cdn.example.com/a/can.jpg?x=1&y=2", "https://shop.example.com/can"),
                                              ("https://img.example.org/b/can.png", "https://blog.example.org/post"),
                                              ("https://img.example.org/c/can.webp", None)]))
        + "</ul></div></body></html>")


def test_bing_a_iusc_m_gives_murl_and_purl_for_every_format():
    page = eng.read_page(eng.ENGINES["bing"], BING.encode(), "https://www.bing.com/images/async?q=can")
    assert page.candidates == [("https://cdn.example.com/a/can.jpg?x=1&y=2", "https://shop.example.com/can"),
                               ("https://img.example.org/b/can.png", "https://blog.example.org/post"),
                               ("https://img.example.org/c/can.webp", None)]
    assert page.refusal is None and page.recognised


def test_baidu_prefers_replaceurl_to_the_expiring_objurl_and_names_antiflag():
    gimg2 = "https://gimg2.baidu.com/image_search/src=http%3A%2F%2Fimg.example.cn%2Fa.jpg&refer=http%3A%2F%2Fw.example.cn&app=2002&size=f9999,10000&q=a80&n=0&g=0n&fmt=auto?sec=1700000000&t=abc"
    doc = {"queryEnc": "%D2%D7%C0%AD%B9%DE", "queryExt": "易拉罐", "listNum": 1600, "displayNum": 41736, "bdFmtDispNum": "约41,700",
           "data": [
               {"adType": "0", "thumbURL": "https://img1.baidu.com/it/u=1,2&fm=253&fmt=auto&app=138&f=JPEG?w=500&h=375",
                "middleURL": "https://img1.baidu.com/it/u=1,2&fm=253&fmt=auto&app=138&f=JPEG?w=500&h=375",
                "objURL": baidu_encode(gimg2), "fromURL": baidu_encode("http://w.example.cn/p.html"), "width": 500,
                "height": 375, "type": "jpg", "fromPageTitleEnc": "易拉罐",
                "replaceUrl": [{"ObjURL": "http://img.example.cn/a.jpg", "ObjUrl": "http://img.example.cn/a.jpg",
                                "FromURL": "http://w.example.cn/p.html", "FromUrl": "http://w.example.cn/p.html"}]},
               {"adType": "0", "objURL": baidu_encode("http://img.example.cn/b.png"), "fromURL": baidu_encode("http://w.example.cn/q.html")},
               {"adType": "0", "thumbURL": "https://img2.baidu.com/it/u=3,4&fm=253"},
               {}]}
    page = eng.read_page(eng.ENGINES["baidu"], json.dumps(doc, ensure_ascii=False).encode(), "https://image.baidu.com/search/acjson")
    assert page.candidates == [("http://img.example.cn/a.jpg", "http://w.example.cn/p.html"),
                               ("http://img.example.cn/b.png", "http://w.example.cn/q.html"),
                               ("https://img2.baidu.com/it/u=3,4&fm=253", None)]
    refused = eng.read_page(eng.ENGINES["baidu"], b'{"antiFlag":1,"message":"Forbid spider access","bfe_log_id":"1"}', "u")
    assert refused.refusal.kind == "blocked" and refused.refusal.words == "Forbid spider access (antiFlag 1)"


GOOGLE = ('<!DOCTYPE html><html lang="en"><head><title>Google Search</title><style>body{background-color:#fff}'
          '</style></head><body><noscript><style>table,div,span,p{display:none}</style><meta content="0;url=/httpservice'
          '/retry/enablejs?sei=Vx2bZ8K" http-equiv="refresh"><div style="display:block">Please click <a href="/httpservice'
          '/retry/enablejs?sei=Vx2bZ8K">here</a> if you are not redirected within a few seconds.</div></noscript>'
          '<script nonce="x">(function(){var e=\'/search?q=tin+can&udm=2&sei=Vx2bZ8K\';setTimeout(function(){'
          'location.replace(e)},2000)})();</script></body></html>')


def test_google_s_javascript_wall_and_sorry_page_are_refusals_not_format_changes():
    page = eng.read_page(eng.ENGINES["greedy"], GOOGLE.encode(), "https://www.google.com/search?q=tin+can&udm=2")
    assert page.candidates == [] and page.refusal.kind == "blocked"
    assert "JavaScript challenge page (/httpservice/retry/enablejs)" in page.refusal.words
    sorry = from_status(429, b"<html><body><div id=infoDiv>Our systems have detected unusual traffic from your "
                             b"computer network.</div></body></html>", "https://www.google.com/sorry/index?continue=x")
    assert sorry.kind == "blocked" and "unusual traffic" in sorry.words and "/sorry/" in sorry.words
    assert in_page(b"<html><body><ul class=dgControl_list></ul></body></html>", "u") is None
    assert from_status(404, b"nope", "u") is None and from_status(401, b'{"detail":"Invalid token."}', "u").kind == "bad-key"


def test_flickr_ok_and_fail_answers():
    ok = {"photos": {"page": 1, "pages": 1, "perpage": 100, "total": 2, "photo": [
        {"id": "5212", "owner": "12037949754@N01", "secret": "ab", "server": "4046", "farm": 5, "title": "tin",
         "ispublic": 1, "isfriend": 0, "isfamily": 0, "license": "4", "ownername": "Jane Doe",
         "url_l": "https://live.staticflickr.com/4046/5212_ab_b.jpg", "height_l": 768, "width_l": 1024},
        {"id": "5213", "owner": "1@N01", "title": "no url", "license": "0"}]}, "stat": "ok"}
    page = eng.read_page(eng.ENGINES["flickr"], json.dumps(ok).encode(), "u")
    assert page.candidates == [("https://live.staticflickr.com/4046/5212_ab_b.jpg",
                                "https://www.flickr.com/photos/12037949754@N01/5212")]
    assert page.info[page.candidates[0][0]] == {"license": "by", "license_version": "2.0", "author": "Jane Doe",
                                                 "license_url": "https://creativecommons.org/licenses/by/2.0/", "title": "tin"}
    fail = eng.read_page(eng.ENGINES["flickr"], b'{"stat":"fail","code":100,"message":"Invalid API Key (Key has expired)"}', "u")
    assert (fail.refusal.kind, fail.refusal.words) == ("bad-key", "Invalid API Key (Key has expired) (code 100)")
    other = eng.read_page(eng.ENGINES["flickr"], b'{"stat":"fail","code":105,"message":"Service currently unavailable"}', "u")
    assert other.refusal.kind == "engine-error"


def _commons_page(pageid: int, index: int, title: str, short: str, artist: str, url: str | None) -> dict:
    meta = {"ObjectName": {"value": title, "source": "commons-desc-page"},
            "LicenseShortName": {"value": short, "source": "commons-desc-page", "hidden": ""},
            "Artist": {"value": artist, "source": "commons-desc-page"}}
    if url:
        meta["LicenseUrl"] = {"value": url, "source": "commons-desc-page", "hidden": ""}
    return {"pageid": pageid, "ns": 6, "title": f"File:{title}.jpg", "index": index, "imagerepository": "local",
            "imageinfo": [{"size": 2748511, "width": 4000, "height": 3000,
                           "thumburl": f"https://upload.wikimedia.org/wikipedia/commons/thumb/a/ab/{title}.jpg/1280px-{title}.jpg",
                           "thumbwidth": 1280, "thumbheight": 960,
                           "url": f"https://upload.wikimedia.org/wikipedia/commons/a/ab/{title}.jpg",
                           "descriptionurl": f"https://commons.wikimedia.org/wiki/File:{title}.jpg",
                           "mime": "image/jpeg", "extmetadata": meta}]}


def test_wikimedia_formatversion_2_and_1_give_licence_and_author_in_search_order():
    p1 = _commons_page(11, 2, "Can_b", "CC BY-SA 4.0", '<a href="//commons.wikimedia.org/wiki/User:Ann" title="User:Ann">Ann</a>',
                       "https://creativecommons.org/licenses/by-sa/4.0")
    p2 = _commons_page(12, 1, "Can_a", "Public domain", "<span>NASA</span>", None)
    pdf = {"pageid": 13, "ns": 6, "title": "File:x.pdf", "index": 3, "imageinfo": [{"mime": "application/pdf", "url": "https://x/x.pdf"}]}
    v2 = {"batchcomplete": True, "continue": {"gsroffset": 50, "continue": "gsroffset||"}, "query": {"pages": [p1, p2, pdf]}}
    v1 = {"batchcomplete": "", "query": {"pages": {"11": p1, "12": p2, "13": pdf}}}
    for doc in (v2, v1):
        page = eng.read_page(eng.ENGINES["wikimedia"], json.dumps(doc).encode(), "u")
        assert [u.rsplit("-", 1)[1] for u, _ in page.candidates] == ["Can_a.jpg", "Can_b.jpg"]
        a, b = (page.info[u] for u, _ in page.candidates)
        assert (a["license"], a["author"], b["license"], b["license_version"], b["author"]) == ("pdm", "NASA", "by-sa", "4.0", "Ann")
    assert eng.read_page(eng.ENGINES["wikimedia"], b'{"batchcomplete":true}', "u").recognised  # no results
    err = eng.read_page(eng.ENGINES["wikimedia"], b'{"error":{"code":"maxlag","info":"Waiting for a database server: 6 seconds lagged."}}', "u")
    assert err.refusal.kind == "engine-error" and "lagged" in err.refusal.words


def test_openverse_results_give_licence_creator_and_landing_page():
    doc = {"result_count": 1, "page_count": 1, "page_size": 20, "page": 1, "results": [
        {"id": "4bc4", "title": "Tin can", "indexed_on": "2020-01-01T00:00:00Z", "foreign_landing_url": "https://www.flickr.com/photos/x/1",
         "url": "https://live.staticflickr.com/1/1_b.jpg", "creator": "Bob", "creator_url": "https://www.flickr.com/photos/x",
         "license": "by-nc", "license_version": "2.0", "license_url": "https://creativecommons.org/licenses/by-nc/2.0/",
         "provider": "flickr", "source": "flickr", "category": None, "filesize": None, "filetype": None, "tags": [],
         "attribution": '"Tin can" by Bob is licensed under CC BY-NC 2.0.', "fields_matched": ["title"], "mature": False,
         "height": 375, "width": 500, "thumbnail": "https://api.openverse.org/v1/images/4bc4/thumb/",
         "detail_url": "https://api.openverse.org/v1/images/4bc4/", "related_url": "https://api.openverse.org/v1/images/4bc4/related/",
         "unstable__sensitivity": []}], "warnings": []}
    page = eng.read_page(eng.ENGINES["openverse"], json.dumps(doc).encode(), "u")
    assert page.candidates == [("https://live.staticflickr.com/1/1_b.jpg", "https://www.flickr.com/photos/x/1")]
    assert page.info["https://live.staticflickr.com/1/1_b.jpg"]["license"] == "by-nc"
    assert eng.read_page(eng.ENGINES["openverse"], b'{"detail":"x"}', "u").recognised is False


def test_licence_names_and_filters():
    assert normalise("CC BY-SA 3.0") == ("by-sa", "3.0") and normalise("cc-by-4.0") == ("by", "4.0")
    assert normalise("CC0") == ("cc0", "1.0") and normalise("Public domain") == ("pdm", None)
    assert normalise("GFDL") == ("GFDL", None) and normalise(None) == (None, None)
    assert normalise("x", "https://creativecommons.org/publicdomain/zero/1.0/deed.en") == ("cc0", "1.0")
    assert parse_filter("commercial") == {"cc0", "pdm", "by", "by-sa", "by-nd", "sampling+"}
    assert parse_filter("by,by-nc,commercial") == {"by"} and parse_filter(None) is None
    with pytest.raises(UserError, match="unknown licence 'mit'"):
        parse_filter("cc0,mit")
