"""`scrape` in the real world: refusals named as refusals, fallback, licences, bad input, safety
(whole-request deadline, link-local and DNS-rebinding refusals), a full disk. Real HTTP on
127.0.0.1 against the fake engine, which sends what the real engines send."""

from __future__ import annotations

import csv
import errno
import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest
import yaml

from datacurate.core.errors import UserError
from datacurate.demo.engine import FakeEngine, ImageSpec, make_image
from datacurate.scrape.net import Net, NetConfig, Refused
from datacurate.core.workspace import Workspace
from conftest import ROOT
from test_scrape import KEY, classes, db, run_cli, saved_files, scrape


@pytest.mark.parametrize("engine, fault, extra, code, words", [
    ("baidu", "antiflag", [], 3, "baidu: blocked: Forbid spider access (antiFlag 1)"),
    ("bing", "captcha", [], 3, "bing: blocked: a CAPTCHA page instead of results"),
    ("bing", "sorry", [], 3, "bing: blocked: HTTP 429: redirected to /sorry/"),
    ("bing", "403", [], 3, "bing: blocked: HTTP 403: Wikimedia Error: Error: Please set a user-agent"),
    ("flickr", "bad-key", ["--flickr-key", KEY], 4, "flickr: bad-key: Invalid API Key (Key has expired) (code 100)"),
    ("openverse", "bad-key", ["--openverse-token", "old"], 4, "openverse: bad-key: HTTP 401: Invalid token."),
    ("wikimedia", "api-error", ["--contact", "me@example.org"], 3, "wikimedia: blocked: You've exceeded your rate limit"),
    ("baidu", "changed", [], 5, "baidu: format-changed: a result page was not recognised"),
])
def test_refusals_are_named_in_the_engines_words_with_their_exit_code(ws, engine, fault, extra, code, words):
    classes(ws, "cat")
    with FakeEngine({"cat": [make_image(1)]}, page_faults={engine: fault}) as fe:
        proc = scrape(ws, fe, "-e", engine, *extra, engines=(engine,))
        pages = sum(fe.hits(p) for p in ("/images/", "/search/", "/services/", "/w/", "/v1/"))
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr.strip().splitlines()[-1] and f"refused: {words}" in proc.stdout
    assert "page format may have changed" not in proc.stderr or fault == "changed"
    assert pages <= 2  # a refused engine is asked no further
    advice = proc.stderr.strip().splitlines()[-1].rpartition("use another engine (")[2]
    assert code != 3 or (advice and f"{engine}," not in advice and f"{engine})" not in advice)  # never the one that refused


def test_google_s_javascript_wall_is_a_refusal_and_google_is_not_offered(ws):
    classes(ws, "cat")
    proc = run_cli("-C", str(ws), "scrape", "-e", "bing,google")
    assert proc.returncode == 2 and "needs JavaScript and does not work from a command-line client" in proc.stderr
    assert "needs JavaScript and does not work from a command-line client" in " ".join(run_cli("scrape", "--help").stdout.split())
    with FakeEngine({"cat": [make_image(1)]}) as fe:  # what google.com/search?tbm=isch sends, through a site crawl
        proc = scrape(ws, fe, "-e", "greedy", "--base-url", f"greedy={fe.base_url}/search?q={{query}}&tbm=isch",
                      engines=())
    assert proc.returncode == 3, proc.stderr
    assert "greedy: blocked: a JavaScript challenge page (/httpservice/retry/enablejs)" in proc.stderr


def test_baidu_refusal_falls_back_to_bing_with_the_chinese_queries(ws):
    classes(ws, "可回收物_易拉罐", "厨余垃圾_蛋壳")
    (ws / "q.yaml").write_text("可回收物_易拉罐: [易拉罐]\n厨余垃圾_蛋壳: [蛋壳]\n", encoding="utf-8")
    images = {"易拉罐": [make_image(i) for i in range(4)], "蛋壳": [make_image(10 + i) for i in range(4)]}
    with FakeEngine(images, page_faults={"baidu": "antiflag"}) as fe:
        proc = scrape(ws, fe, "-e", "baidu,bing", "--fallback", "--queries", "q.yaml", "-n", "3",
                      engines=("baidu", "bing"))
        bing_pages = fe.hits("/images/async")
    assert proc.returncode == 0, proc.stderr
    assert "baidu blocked: Forbid spider access (antiFlag 1); falling back to bing" in proc.stderr
    assert "refused: baidu: blocked" in proc.stdout and bing_pages == 2
    assert [len(saved_files(ws, c)) for c in ("厨余垃圾_蛋壳", "可回收物_易拉罐")] == [3, 3]
    with db(ws) as con:
        assert {r[0] for r in con.execute("SELECT query FROM provenance WHERE engine='bing'")} == {"易拉罐", "蛋壳"}
    with FakeEngine(images) as fe:  # baidu answering: bing is never asked
        proc = scrape(ws, fe, "-e", "baidu,bing", "--fallback", "--queries", "q.yaml", "-n", "4",
                      engines=("baidu", "bing"))
        assert fe.hits("/images/async") == 0 and fe.hits("/search/acjson") >= 2
    assert proc.returncode == 0, proc.stderr
    assert [len(saved_files(ws, c)) for c in ("厨余垃圾_蛋壳", "可回收物_易拉罐")] == [4, 4]
    recipe = yaml.safe_load((ROOT / "pipelines" / "garbage.yaml").read_text(encoding="utf-8"))["scrape"]
    assert recipe["engine"] == "baidu,bing" and recipe["fallback"] is True


def test_license_filter_keeps_only_allowed_licences_and_attribution_lists_them(ws):
    classes(ws, "cat")
    specs = [ImageSpec(make_image(i), license=lic, author=f"名前 {i}") for i, lic in
             enumerate(["by", "by-nc", "cc0", "by-nd", "pdm", "by-sa", "by-nc-sa"])]
    with FakeEngine({"cat": specs}) as fe:
        proc = scrape(ws, fe, "-e", "wikimedia", "--contact", "https://example.org/me", "--license", "commercial,modification",
                      engines=("wikimedia",))
    assert proc.returncode == 0, proc.stderr
    with db(ws) as con:
        got = dict(con.execute("SELECT license, reason FROM provenance").fetchall())
    assert got == {"by": None, "cc0": None, "pdm": None, "by-sa": None, "by-nc": "license", "by-nd": "license",
                   "by-nc-sa": "license"}
    rows = list(csv.DictReader((ws / "reports" / "attribution.csv").open(encoding="utf-8")))
    assert sorted(r["license"] for r in rows) == ["by", "by-sa", "cc0", "pdm"]
    assert {r["author"] for r in rows} == {"名前 0", "名前 2", "名前 4", "名前 5"}
    assert all(r["source_page"].endswith(".html") and r["image_url"] for r in rows)
    with FakeEngine({"cat": specs}) as fe:  # openverse and flickr filter on their side: the filter goes with the query
        proc = scrape(ws, fe, "-e", "openverse,flickr", "--flickr-key", KEY, "--openverse-token", "t", "--license",
                      "by-nc,by-nc-sa", "-n", "6", engines=("openverse", "flickr"))
    assert proc.returncode == 0, proc.stderr
    assert len(saved_files(ws, "cat")) == 6
    with db(ws) as con:
        kept = {r[0] for r in con.execute("SELECT license FROM provenance WHERE reason IS NULL")}
        sent = {r[0] for r in con.execute("SELECT license FROM provenance WHERE engine IN ('openverse', 'flickr')")}
    assert kept == {"by", "cc0", "pdm", "by-sa", "by-nc", "by-nc-sa"}
    assert sent == {"by-nc", "by-nc-sa"}  # the engines filtered: nothing else was even offered


@pytest.mark.parametrize("args, message", [
    (["--license", "gpl"], "unknown licence 'gpl'"),
    (["--license", "cc0", "-e", "bing"], "engine bing does not say under which licence"),
    (["-e", "flickr", "--flickr-key", "abc123"], "a Flickr API key is 32 hexadecimal characters"),
    (["--delay", "nan"], "scrape: delay must be a finite number, got nan"),
    (["--timeout", "inf"], "scrape: timeout must be a finite number, got inf"),
    (["-n", "99999999999999999999"], "scrape: max_per_class must be a whole number from 0 to 1000000, got 99999999999999999999"),
    (["-e", "urls", "--urls", "/etc"], "urls folder /etc holds no <class>.txt file"),
    (["-e", "wikimedia"], "give --contact EMAIL_OR_URL"),
    (["--license", "by-nc,commercial", "-e", "openverse"], "allows no licence at all"),
])
def test_bad_input_is_one_line_and_exit_2(ws, args, message):
    classes(ws, "cat")
    proc = run_cli("-C", str(ws), "scrape", *args, drop=("FLICKR_APIKEY",))
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_class_folder_names_that_are_not_utf8_get_a_clear_line(ws):
    classes(ws, "cat")
    os.mkdir(os.path.join(os.fsencode(ws / "data" / "original"), b"caf\xe9"))
    for extra in ([], ["--dry-run"]):
        proc = run_cli("-C", str(ws), "scrape", *extra)
        assert proc.returncode == 2 and "is not UTF-8" in proc.stderr and "internal error" not in proc.stderr
    proc = run_cli("-C", str(ws), "scrape", "--dry-run", "--class", "cat")
    assert proc.returncode == 0 and "query: cat" in proc.stdout


def test_a_server_dripping_one_byte_at_a_time_is_cut_at_the_whole_request_deadline(ws):
    classes(ws, "cat")
    specs = [ImageSpec(make_image(1), fault="drip"), make_image(2)]
    with FakeEngine({"cat": specs}, drip_seconds=0.2) as fe:
        started = time.monotonic()
        proc = scrape(ws, fe, "--timeout", "1.5", engines=("bing",))  # the last --timeout wins
        took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert took < 12  # the dripped image alone would take minutes
    with db(ws) as con:
        assert dict(con.execute("SELECT rank, reason FROM provenance").fetchall()) == {0: "timeout", 1: None}
    net = Net(NetConfig("t", "datacurate", timeout=1.0, delay=0, allow_private=True, ignore_robots=True))
    with FakeEngine({}, page_faults={"bing": "drip"}, drip_seconds=0.2) as fe:
        started = time.monotonic()
        with pytest.raises(Refused) as exc:
            net.fetch(f"{fe.base_url}/images/async?q=x", max_bytes=1 << 20)
        assert exc.value.reason == "timeout" and time.monotonic() - started < 2.5


def test_link_local_and_metadata_addresses_are_refused_even_with_allow_private(monkeypatch):
    real = socket.getaddrinfo

    def fake_dns(host, port, *a, **kw):
        if host == "metadata.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]
        if host == "v6meta.example":
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00:ec2::254", port, 0, 0))]
        return real(host, port, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)
    net = Net(NetConfig("t", "datacurate", timeout=1, delay=0, allow_private=True, ignore_robots=True))
    with FakeEngine({"q": [make_image(1)]}) as fe:
        for target in ("http://169.254.169.254/latest/meta-data/", "http://metadata.example/x", "http://v6meta.example/"):
            with pytest.raises(Refused) as exc:
                net.fetch(f"{fe.base_url}/redirect?to={target}", max_bytes=1 << 20)
            assert exc.value.reason == "link-local-address" and "--allow-host" in exc.value.detail
        assert net.fetch(fe.image_url("q", 0), max_bytes=1 << 20).data[:3] == b"\xff\xd8\xff"  # loopback: allowed
    named = Net(NetConfig("t", "datacurate", allow_hosts=("metadata.example",)))
    assert named.check_address("http://metadata.example/x") == "169.254.169.254"  # named explicitly: allowed


def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch):
    real = socket.getaddrinfo
    answers: list[str] = []

    def rebinding_dns(host, port, *a, **kw):
        if host == "rebind.example":  # first answer public, every later one loopback
            ip = "93.184.216.34" if not answers else "127.0.0.1"
            answers.append(ip)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]
        return real(host, port, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    with FakeEngine({"q": [make_image(1)]}) as fe:
        port = fe.base_url.rsplit(":", 1)[1]
        net = Net(NetConfig("t", "datacurate", timeout=1, delay=0, retries=0, ignore_robots=True))
        with pytest.raises(Refused) as exc:
            net.fetch(f"http://rebind.example:{port}/img/x/0.jpg", max_bytes=1 << 20)
        assert exc.value.reason in ("timeout", "connection-error")
        assert fe.hits() == 0 and answers == ["93.184.216.34"]  # resolved once; loopback never reached
    calls: list[str] = []

    def pinning_dns(host, port, *a, **kw):
        if host == "pin.example":  # first answer loopback (the fake engine), every later one elsewhere
            calls.append(host)
            return real("127.0.0.1" if len(calls) == 1 else "10.255.255.1", port, *a, **kw)
        return real(host, port, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", pinning_dns)
    with FakeEngine({"q": [make_image(1)]}) as fe:
        pinned = Net(NetConfig("t", "datacurate", timeout=1, delay=0, retries=0, allow_private=True, ignore_robots=True))
        url = fe.image_url("q", 0).replace("127.0.0.1", "pin.example")
        assert pinned.fetch(url, max_bytes=1 << 20).data[:3] == b"\xff\xd8\xff"
        assert pinned.fetch(url, max_bytes=1 << 20).status == 200  # later requests keep the checked address
        assert fe.hits("/img/") == 2 and calls == ["pin.example"]


def _ws_with(tmp: Path) -> Workspace:
    (tmp / "data" / "original" / "cat").mkdir(parents=True)
    return Workspace.open(tmp)


def test_a_full_disk_stops_with_one_line_and_no_file_without_its_rows(tmp_path, monkeypatch):
    from datacurate.scrape import DEFAULTS, check_options, scrape as run_scrape
    from datacurate.scrape import store

    ws = _ws_with(tmp_path)
    real_write, writes = store.atomic_write_bytes, []

    def filling(path, data):
        writes.append(path)
        if len(writes) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(store, "atomic_write_bytes", filling)
    with FakeEngine({"cat": [make_image(i) for i in range(12)]}) as fe:
        opts = check_options({**DEFAULTS, "base_url": {"bing": fe.base_url}, "allow_private": True, "delay": 0,
                              "concurrency": 2, "per_host": 2})
        with pytest.raises(UserError, match="disk full: no space left on the file system mounted at /"):
            run_scrape(ws, opts)
    _every_file_has_its_rows(ws, at_least=1)


def test_a_catalog_that_cannot_grow_takes_back_the_files_of_its_batch(tmp_path, monkeypatch):
    from datacurate.core.catalog import Catalog
    from datacurate.scrape import DEFAULTS, check_options, scrape as run_scrape

    ws = _ws_with(tmp_path)
    real_add, calls = Catalog.add_provenance, []

    def full_after_some(self, **row):
        calls.append(row)
        if len([c for c in calls if c.get("path")]) > 4 and row.get("path"):
            raise sqlite3.OperationalError("database or disk is full")
        real_add(self, **row)

    monkeypatch.setattr(Catalog, "add_provenance", full_after_some)
    with FakeEngine({"cat": [make_image(i) for i in range(12)]}) as fe:
        opts = check_options({**DEFAULTS, "base_url": {"bing": fe.base_url}, "allow_private": True, "delay": 0})
        with pytest.raises(UserError, match="disk full"):
            run_scrape(ws, opts)
    _every_file_has_its_rows(ws, at_least=1)


def _every_file_has_its_rows(ws: Workspace, at_least: int) -> None:
    files = {ws.rel(p) for p in saved_files(ws.root, "cat")}
    assert len(files) >= at_least
    with sqlite3.connect(ws.catalog_path) as con:
        prov = {r[0] for r in con.execute("SELECT path FROM provenance WHERE path IS NOT NULL")}
        rows = {r[0] for r in con.execute("SELECT path FROM files WHERE source='scraped'")}
    assert files == prov == rows
    assert not list((ws.state_dir / "scrape-tmp").glob("*"))


def test_results_that_run_out_are_the_end_not_a_changed_format(ws):
    """A blank page after recognised pages of the query ends the results: no format-changed alarm, never exit 5."""
    classes(ws, "cat")
    with FakeEngine({"cat": [make_image(1), make_image(2)]}, page_faults={"bing": "runs-out"}) as fe:
        first = scrape(ws, fe, "-n", "40")
        assert first.returncode == 0, first.stderr
        assert len(saved_files(ws, "cat")) == 2 and fe.hits("/images/") == 2
        assert "format" not in first.stdout + first.stderr and "2 of 40 wanted (results ran out)" in first.stderr
        again = scrape(ws, fe, "-n", "40")  # a top-up run: nothing new, and the results run out again
    assert again.returncode == 1, again.stderr
    last = again.stderr.strip().splitlines()[-1]
    assert "format" not in again.stdout + again.stderr and "results for these queries are used up" in last
    # a first page the parser does not know is still the alarm, and so is an unknown page that holds images
    from datacurate.scrape.engines import ENGINES, read_page
    blank = b"<html><head><script>var _G={};</script></head><body></body></html>"
    assert not read_page(ENGINES["bing"], blank, "u").recognised and not read_page(ENGINES["bing"], blank, "u").results_like
    moved = b"".join(b'<figure><img data-full="https://x.org/%d.jpg"></figure>' % i for i in range(3))
    assert read_page(ENGINES["bing"], moved, "u").results_like
