"""`datacurate scrape` end to end: the real CLI against the loopback fake engine over real HTTP."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datacurate.core.imageio import inspect_file
from datacurate.demo.engine import FakeEngine, ImageSpec, make_image
import conftest
from conftest import ROOT, ctrl_c_as_in_a_terminal, write

FAST = ["--allow-private", "--delay", "0", "--timeout", "2", "--retries", "1", "--max-bytes", "1MB"]


def run_cli(*args: str, env: dict | None = None, drop: tuple = ()) -> subprocess.CompletedProcess:
    """`datacurate ARGS` in this process (conftest.run_cli) with extra environment variables (and some removed)."""
    saved = dict(os.environ)
    try:
        for name in drop:
            os.environ.pop(name, None)
        os.environ.update(env or {})
        return conftest.run_cli(*args, timeout=120)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def scrape(ws: Path, fe: FakeEngine, *args: str, engines=("bing",), **kw) -> subprocess.CompletedProcess:
    bases = [a for e in engines for a in ("--base-url", f"{e}={fe.base_url}")]
    return run_cli("-C", str(ws), "-q", "scrape", *FAST, *bases, *args, **kw)


def classes(ws: Path, *names: str) -> None:
    for n in names:
        (ws / "data" / "original" / n).mkdir(parents=True, exist_ok=True)


def db(ws: Path) -> sqlite3.Connection:
    con = sqlite3.connect(ws / ".datacurate" / "catalog.sqlite")
    con.row_factory = sqlite3.Row
    return con


def saved_files(ws: Path, klass: str) -> list[Path]:
    folder = ws / "data" / "scraped" / klass
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_every_fault_is_rejected_for_its_reason_and_good_images_land_by_content(ws):
    classes(ws, "cat")
    held = make_image(999)
    write(ws / "data" / "original" / "cat" / "mine.jpg", held)
    write(ws / "data" / "test" / "cat" / "t.png", make_image(998, fmt="PNG"))
    good = {"jpg": make_image(1), "png": make_image(2, fmt="PNG")}
    results = [
        good["jpg"], good["png"],
        ImageSpec(make_image(3), fault="webp"), ImageSpec(make_image(4), fault="png"),
        ImageSpec(make_image(5), fault="429"), ImageSpec(make_image(6), fault="redirect"),
        ImageSpec(make_image(7, fmt="GIF")),
        good["jpg"], held, make_image(998, fmt="PNG"),                       # one image under many URLs
        ImageSpec(make_image(10), fault="404"), ImageSpec(make_image(11), fault="500"),
        ImageSpec(make_image(12), fault="html"), ImageSpec(make_image(13), fault="truncated"),
        ImageSpec(make_image(14), fault="cut"), ImageSpec(make_image(15), fault="bomb"),
        ImageSpec(make_image(16), fault="redirect-loop"), ImageSpec(make_image(17), fault="robots"),
        ImageSpec(make_image(18), fault="noai"), ImageSpec(make_image(19), fault="huge"),
        ImageSpec(make_image(20), fault="huge-declared"), ImageSpec(make_image(21), fault="timeout"),
        make_image(22, size=(12, 12)),
    ]
    with FakeEngine({"cat": results}, stall_seconds=4) as fe:
        proc = scrape(ws, fe)
        agents = fe.user_agents
    assert proc.returncode == 0, proc.stderr
    assert all(a.startswith("datacurate/") for a in agents)
    files = saved_files(ws, "cat")
    assert sorted(p.suffix for p in files) == [".jpg", ".jpg", ".jpg", ".png", ".png", ".png", ".webp"]
    for p in files:
        ins = inspect_file(p)
        assert ins.ok and p.name == ins.sha256[:16] + ins.true_extension()
    with db(ws) as con:
        prov = con.execute("SELECT * FROM provenance ORDER BY rank").fetchall()
        assert len(prov) == len(results)
        reasons = {r["rank"]: r["reason"] for r in prov}
        assert [reasons[i] for i in range(1, 7)] == [None] * 6
        assert {reasons[0], reasons[7]} == {None, "duplicate"}  # same bytes twice: whichever came first is kept
        assert [reasons[i] for i in range(8, len(results))] == [
            "duplicate", "duplicate", "http-404", "http-500", "not-an-image", "incomplete-body",
            "truncated", "too-large", "too-many-redirects", "robots-txt", "x-robots-tag", "over-byte-limit",
            "over-byte-limit", "timeout", "too-small"]
        first = prov[0] if prov[0]["path"] else prov[7]
        assert (first["engine"], first["query"], first["http_status"], first["content_type"]) == ("bing", "cat", 200, "image/jpeg")
        assert first["page_url"].endswith(f"/{first['rank']}.html") and first["bytes"] == len(good["jpg"])
        assert first["path"] == f"data/scraped/cat/{first['sha256'][:16]}.jpg"
        rows = con.execute("SELECT * FROM files WHERE source='scraped'").fetchall()
        assert len(rows) == 7 and all(r["status"] == "ok" and r["class"] == "cat" and r["checked"] for r in rows)
        assert {r["sha256"] for r in rows} <= {h[0] for h in con.execute("SELECT sha256 FROM hashes WHERE kind='phash'")}
    assert "duplicate:3" in proc.stdout and "saved 7 images" in proc.stdout


def test_top_up_fetches_only_the_difference_and_skips_settled_urls(ws):
    classes(ws, "可回收物_易拉罐", "dog")
    images = {"可回收物 易拉罐 can": [make_image(i) for i in range(8)], "dog can": [make_image(100 + i) for i in range(8)]}
    with FakeEngine(images) as fe:
        first = scrape(ws, fe, "--suffix", "can", "-n", "3")
        assert first.returncode == 0, first.stderr
        assert [len(saved_files(ws, c)) for c in ("dog", "可回收物_易拉罐")] == [3, 3]
        hits_after_first = fe.hits("/img/")
        assert hits_after_first == 6  # no more downloads than images wanted
        second = scrape(ws, fe, "--suffix", "can", "-n", "5")
        assert second.returncode == 0, second.stderr
        assert [len(saved_files(ws, c)) for c in ("dog", "可回收物_易拉罐")] == [5, 5]
        assert fe.hits("/img/") == hits_after_first + 4  # the 6 settled URLs were not fetched again
        pages_before = fe.hits("/images/")
        third = scrape(ws, fe, "--suffix", "can", "-n", "5")
        assert third.returncode == 0 and "already full (2 classes)" in third.stdout
        assert fe.hits("/images/") == pages_before
    with db(ws) as con:
        assert con.execute("SELECT count(*) FROM provenance WHERE reason='seen-before'").fetchone()[0] == 6


KEY = "0123456789abcdef0123456789abcdef"


def test_engines_baidu_wikimedia_openverse_flickr_with_queries_file_record_licences(ws):
    classes(ws, "可回收物_易拉罐", "ben", "cat")
    (ws / "queries.yaml").write_text("ben: ['ben 10 figure', '{class} toy']\ncat: skip\n", encoding="utf-8")
    images = {
        "可回收物 易拉罐": [make_image(1), make_image(2, fmt="WEBP")],
        "ben 10 figure": [make_image(3, fmt="GIF"), make_image(4, fmt="PNG")],
        "ben toy": [make_image(5)],
    }
    engines = ("baidu", "wikimedia", "openverse", "flickr")
    with FakeEngine(images) as fe:
        proc = scrape(ws, fe, "--queries", "queries.yaml", "-e", ",".join(engines), "--contact", "me@example.org",
                      "--openverse-token", "tok", engines=engines, env={"FLICKR_APIKEY": KEY})
        agents, auth = fe.user_agents, fe.authorizations
    assert proc.returncode == 0, proc.stderr
    assert agents == {next(iter(agents))} and "contact: me@example.org" in next(iter(agents))
    assert auth == {"Bearer tok"}
    assert len(saved_files(ws, "可回收物_易拉罐")) == 2 and len(saved_files(ws, "ben")) == 3
    assert not (ws / "data" / "scraped" / "cat").exists()
    with db(ws) as con:
        by = con.execute("SELECT engine, count(*), sum(reason IS NULL) FROM provenance GROUP BY engine").fetchall()
        assert {r[0]: r[1] for r in by} == {e: 5 for e in engines}  # every engine found all 5
        assert sum(r[2] for r in by) == 5  # the same URL from another engine is not fetched twice
        others = {r[0] for r in con.execute("SELECT reason FROM provenance WHERE reason IS NOT NULL")}
        assert others == {"repeat-url"}
        queries = {r[0] for r in con.execute("SELECT query FROM provenance WHERE class='ben'")}
        assert queries == {"ben 10 figure", "ben toy"}
        lic = con.execute("SELECT engine, license, author, page_url FROM provenance WHERE rank=1").fetchall()
        for engine, license, author, page in lic:
            if engine == "baidu":
                assert license is None and author is None  # baidu does not say
            else:
                assert (license, author) == ("cc0", "Author 1"), engine
                assert page.endswith("/photos/12345678@N00/1" if engine == "flickr" else "/1.html"), engine
    assert {p.suffix for p in saved_files(ws, "ben")} == {".png", ".jpg"}  # the GIF became a PNG
    rows = list(csv.DictReader((ws / "reports" / "attribution.csv").open(encoding="utf-8")))
    assert len(rows) == 5 and {r["class"] for r in rows} == {"ben", "可回收物_易拉罐"}
    assert all((r["license"] == "unknown") == (r["engine"] == "baidu") for r in rows)
    page = (ws / "reports" / "scrape.html").read_text("utf-8")  # rendered from datacurate/data/scrape.html.j2
    assert page.startswith("<!doctype html>") and "Licences and authors of the kept scraped images (5)" in page
    assert '<a href="attribution.csv">attribution.csv</a>' in page
    for r in rows:  # the source page is a link where there is one (baidu gives none)
        assert (f'<a href="{r["source_page"]}">' in page) == r["source_page"].startswith("http"), r


def test_greedy_site_and_urls_file(ws):
    classes(ws, "cup", "mug")
    images = {"cup": [make_image(i) for i in range(14)], "mug": [make_image(50), make_image(51)]}
    with FakeEngine(images) as fe:
        (ws / "urls.yaml").write_text(
            f"mug:\n  - {fe.image_url('mug', 0)}\n  - {fe.image_url('mug', 1)}\n  - {fe.base_url}/img/none/0.jpg\n",
            encoding="utf-8")
        proc = run_cli("-C", str(ws), "-q", "scrape", *FAST, "-e", "greedy,urls", "--urls", "urls.yaml", "-n", "12",
                       "--base-url", f"greedy={fe.base_url}/site?q={{query}}")
    assert proc.returncode == 0, proc.stderr
    assert len(saved_files(ws, "cup")) == 12  # across two site pages, stopped at the cap
    assert len(saved_files(ws, "mug")) == 2
    assert "http-404:1" in proc.stdout


def test_dry_run_prints_queries_and_pages_and_fetches_nothing(ws):
    classes(ws, "tin_can")
    (ws / "datacurate.yaml").write_text("scrape:\n  suffix: shirt doll\n  max_per_class: 40\n  engine: openverse\n",
                                        encoding="utf-8")
    with FakeEngine({}) as fe:
        proc = scrape(ws, fe, "--dry-run", "-e", "bing,baidu", engines=("bing", "baidu"))  # the flag beats the yaml
        assert fe.hits() == 0
    assert proc.returncode == 0, proc.stderr
    assert "query: tin can shirt doll" in proc.stdout
    assert f"{fe.base_url}/images/async?q=tin+can+shirt+doll&first=35&count=35" in proc.stdout
    assert "word=tin%20can%20shirt%20doll&pn=30&rn=30" in proc.stdout
    assert "first=70" not in proc.stdout and "/v1/images/" not in proc.stdout  # 40 wanted: 2 pages; no openverse
    assert "no new image" not in proc.stderr and "tin_can: have 0, want 40 more" in proc.stdout  # a plan, not a shortfall
    assert not (ws / "data" / "scraped").exists() and not (ws / ".datacurate").exists()


def test_no_image_at_all_is_a_failure_that_names_each_engine_s_reason(ws):
    classes(ws, "cat")
    faults = {"bing": "changed", "baidu": "empty", "wikimedia": "403"}
    engines = ("bing", "baidu", "wikimedia")
    with FakeEngine({"cat": [make_image(1)]}, page_faults=faults) as fe:
        proc = scrape(ws, fe, "-e", ",".join(engines), "--contact", "me@example.org", engines=engines)
    assert proc.returncode == 3, proc.stderr  # blocked outranks a changed format
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("datacurate: error: no class got a single image")
    assert "bing: format-changed: a result page was not recognised (the page format may have changed)" in last
    assert "baidu: 1 result pages held no images" in last
    assert "wikimedia: blocked: HTTP 403: " in last and "Please set a user-agent" in last
    assert "does not disguise itself as a browser" in last
    assert "Traceback" not in proc.stderr
    page = (ws / "reports" / "scrape.html").read_text("utf-8")
    assert "<h2>Engines that refused</h2>" in page and "<b>wikimedia</b>: blocked: HTTP 403" in page
    assert "(datacurate does not disguise itself as a browser" in page  # the advice, as on the terminal
    assert "(1 empty)" in page and "(1 unrecognised)" in page


def test_a_refusing_engine_is_given_up_while_another_delivers(ws):
    classes(ws, "cat")
    with FakeEngine({"cat": [make_image(1), make_image(2)]}, page_faults={"openverse": "503"}) as fe:
        proc = scrape(ws, fe, "-e", "openverse,bing", "--openverse-token", "t", engines=("openverse", "bing"))
        pages = fe.hits("/v1/images")
    assert proc.returncode == 0, proc.stderr
    assert "openverse engine-error: HTTP 503" in proc.stderr and len(saved_files(ws, "cat")) == 2
    assert "refused: openverse: engine-error: HTTP 503" in proc.stdout
    assert pages == 2  # one try and one retry after Retry-After, then never again


def test_private_addresses_are_refused_by_default(ws):
    classes(ws, "cat")
    with FakeEngine({"cat": [make_image(1)]}) as fe:
        proc = run_cli("-C", str(ws), "scrape", "--base-url", f"bing={fe.base_url}", "--retries", "0")
        assert fe.hits() == 0
    assert proc.returncode == 1 and "private-address" in proc.stderr


def test_per_host_limit_and_delay_are_kept(ws):
    classes(ws, "cat")
    with FakeEngine({"cat": [make_image(i) for i in range(8)]}, latency=0.1) as fe:
        proc = run_cli("-C", str(ws), "-q", "scrape", "--allow-private", "--base-url", f"bing={fe.base_url}",
                       "--per-host", "2", "--delay", "0.1", "-j", "8")
        starts = sorted(t for t, path in fe.log if path.startswith("/img/"))
        peak = fe.max_inflight
    assert proc.returncode == 0, proc.stderr
    assert len(saved_files(ws, "cat")) == 8
    assert peak == 2
    # 2 at a time with 0.1 s latency would take 0.3 s from first to last start; 0.1 s apart takes 0.7 s
    assert starts[-1] - starts[0] >= 0.63


@pytest.mark.parametrize("args, message", [
    (["-e", "yahoo"], "unknown engine 'yahoo'"),
    (["--max-bytes", "lots"], "is not a size"),
    (["--queries", "nope.yaml"], "does not exist"),
    (["--class", "zebra"], "'zebra' is not a folder"),
])
def test_bad_input_is_one_line_and_exit_2(ws, args, message):
    classes(ws, "cat")
    proc = run_cli("-C", str(ws), "scrape", *args)
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_kill_9_and_ctrl_c_leave_no_partial_file_and_a_consistent_catalog(ws):
    classes(ws, "cat")
    with FakeEngine({"cat": [make_image(i, size=(200, 150)) for i in range(80)]}, latency=0.1) as fe:
        cmd = [sys.executable, "-m", "datacurate", "-C", str(ws), "-q", "scrape", *FAST, "--per-host", "4",
               "--base-url", f"bing={fe.base_url}"]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        for sig in (signal.SIGKILL, signal.SIGINT):
            before = len(saved_files(ws, "cat"))
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    preexec_fn=ctrl_c_as_in_a_terminal)
            deadline = time.monotonic() + 30
            while len(saved_files(ws, "cat")) < before + 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == (-9 if sig == signal.SIGKILL else 130), err
            if sig == signal.SIGINT:
                assert ("interrupted" in err or "aborted" in err) and "Traceback" not in err
                assert not [p for p in saved_files(ws, "cat") if p.name.startswith(".")]
            for p in saved_files(ws, "cat"):  # nothing partial in the class folder, even after kill -9
                assert inspect_file(p).ok, p
            with db(ws) as con:
                assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                for row in con.execute("SELECT path FROM files WHERE source='scraped'"):
                    assert (ws / row["path"]).is_file()
        want = len(saved_files(ws, "cat")) + 3
        done = scrape(ws, fe, "-n", str(want))
    assert done.returncode == 0, done.stderr
    files = saved_files(ws, "cat")
    assert len(files) == want and not [p for p in files if p.name.startswith(".")]
    assert not list((ws / ".datacurate" / "scrape-tmp").iterdir())
    with db(ws) as con:
        assert con.execute("SELECT count(*) FROM files WHERE source='scraped'").fetchone()[0] == want
