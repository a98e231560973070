"""`datacurate review` and `datacurate relabel`: the app over real HTTP on 127.0.0.1 (uvicorn in a thread),
every endpoint, the token, bad requests, a stale page; relabel through the CLI and the API and honoured by
later clean, vet and split runs; and one session in headless Chromium driven by Selenium (keyboard triage,
then the folders and the catalog; the map renders its points). The workspace is test_vet's (three colour
classes, a chart and a picture of the next class among each class's scraped images), cleaned and vetted
once with a random-weights resnet18, copied for each test.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import unquote
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from test_vet import _make

from datacurate import api
from datacurate.core.errors import UserError

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

TOKEN = "t0ken-for-tests"
WRONG = {"red": "data/quarantine/wrong-class/scraped/red/a_green.jpg",
         "green": "data/quarantine/wrong-class/scraped/green/a_blue.jpg",
         "blue": "data/quarantine/wrong-class/scraped/blue/a_red.jpg"}
NEAR = "data/quarantine/near-duplicate/scraped/red/s0_small.jpg"


@pytest.fixture(scope="module")
def vetted(tmp_path_factory) -> Path:
    from PIL import Image

    root = tmp_path_factory.mktemp("review") / "ws"
    _make(root)
    with Image.open(root / "data/scraped/red/s0.jpg") as im:  # a near-duplicate for "not duplicates"
        im.resize((48, 36)).save(root / "data/scraped/red/s0_small.jpg", quality=90)
    api.clean(root, keep_flags=True)
    assert (root / NEAR).is_file()
    api.vet(root)
    assert all((root / p).is_file() for p in WRONG.values())
    return root


@pytest.fixture
def ws(vetted: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(vetted, root)
    return root


class Served:
    """The app for a workspace, served by uvicorn on 127.0.0.1 in a thread."""

    def __init__(self, root: Path):
        import uvicorn

        from datacurate.review.app import create_app
        from datacurate.review.serve import bind
        from datacurate.core.workspace import Workspace

        sock = bind("127.0.0.1", 0)
        self.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(Workspace(root), TOKEN), log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started and time.time() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def get(self, path: str, *, token: str | None = TOKEN, headers: dict | None = None) -> tuple[int, bytes, dict]:
        url = self.base + path + (("&" if "?" in path else "?") + f"token={token}" if token else "")
        return _open(urllib.request.Request(url, headers=headers or {}))

    def json(self, path: str) -> dict:
        status, body, _ = self.get(path)
        assert status == 200, body
        return json.loads(body)

    def post(self, path: str, body, *, token: str | None = TOKEN, kind: str = "application/json") -> tuple[int, dict]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": kind} | ({"X-Datacurate-Token": token} if token else {})
        status, raw, _ = _open(urllib.request.Request(self.base + path, data=data, headers=headers))
        return status, json.loads(raw)

    def act(self, action: str, *cards: dict, **extra) -> tuple[int, dict]:
        return self.post("/api/act", {"action": action, "cards": [{"id": c["id"], "path": c["path"]} for c in cards],
                                      **extra})


def _open(request) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


@pytest.fixture
def served(ws: Path):
    app = Served(ws)
    yield app
    app.stop()


def db(root: Path) -> sqlite3.Connection:
    con = sqlite3.connect(root / ".datacurate" / "catalog.sqlite")
    con.row_factory = sqlite3.Row
    return con


def token_of(url: str) -> str:
    return url.split("token=")[1]


def card_of(cards: list[dict], path: str) -> dict:
    return next(c for c in cards if c["path"] == path)


# -- relabel: the CLI, the API, and later runs ----------------------------------------------------
def test_relabel_cli_restore_and_later_runs_keep_the_persons_label(ws: Path):
    w = ["-C", str(ws), "-q"]
    bad = run_cli(*w, "relabel", WRONG["blue"], "purple")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "class 'purple' does not exist" in bad.stderr
    assert "--new-class" in bad.stderr and (ws / WRONG["blue"]).is_file()
    out = json.loads(run_cli(*w, "relabel", WRONG["blue"], "red", "--json", check=True).stdout)
    assert out["relabelled"] == [{"from": WRONG["blue"], "to": "data/scraped/red/a_red.jpg", "was": "blue"}]
    assert (ws / "data/scraped/red/a_red.jpg").is_file() and not (ws / WRONG["blue"]).exists()
    with db(ws) as con:
        row = con.execute("SELECT class, status, reason FROM files WHERE path='data/scraped/red/a_red.jpg'").fetchone()
        assert tuple(row) == ("red", "ok", None)
        assert con.execute("SELECT action, src, reason FROM events ORDER BY id DESC").fetchone()[:] == (
            "relabel", WRONG["blue"], "blue")
        assert con.execute("SELECT reason FROM overrides WHERE kind='label'").fetchone()[0] == "red"

    # restore puts it back in quarantine, where it came from; the label is forgotten
    text = run_cli(*w, "restore", "data/scraped/red/a_red.jpg", check=True).stdout
    assert "[relabel]" in text and (ws / WRONG["blue"]).is_file() and not (ws / "data/scraped/red/a_red.jpg").exists()
    with db(ws) as con:
        assert tuple(con.execute("SELECT class, status, reason FROM files WHERE path=?", (WRONG["blue"],)).fetchone()) == (
            "blue", "quarantined", "wrong-class")
        assert con.execute("SELECT COUNT(*) FROM overrides WHERE kind='label'").fetchone()[0] == 0

    # the API: a class of its own (Chinese name) for an original that stays in place
    with pytest.raises(UserError, match="does not exist"):
        api.relabel(ws, ["data/original/red/o00.jpg"], "紅色")
    done = api.relabel(ws, ["data/original/red/o00.jpg"], "紅色", new_class=True)
    assert done.new_class and (ws / "data/original/紅色/o00.jpg").is_file()
    with pytest.raises(UserError, match="already in class"):
        api.relabel(ws, ["data/original/紅色/o00.jpg"], "紅色")

    # a person's label wins over later runs: relabel a chart into green, vet and clean again, split
    api.relabel(ws, ["data/quarantine/off-topic/scraped/red/chart.jpg"], "green")
    api.relabel(ws, [WRONG["green"]], "blue")
    api.clean(ws, keep_flags=True)
    vetted = api.vet(ws)
    assert "data/scraped/green/chart.jpg" in vetted.raw.kept_by_user
    assert (ws / "data/scraped/green/chart.jpg").is_file() and (ws / "data/scraped/blue/a_blue.jpg").is_file()
    api.split(ws, seed=0)
    with db(ws) as con:
        split = dict(con.execute("SELECT path, class FROM files WHERE split IS NOT NULL").fetchall())
    assert split.get("data/scraped/blue/a_blue.jpg") == "blue" and split.get("data/original/紅色/o00.jpg") == "紅色"
    placed = [p.relative_to(ws / "data/split").as_posix() for p in (ws / "data/split").rglob("a_blue.jpg")]
    assert placed and all(p.split("/")[1] == "blue" for p in placed)


# -- the app over HTTP ----------------------------------------------------------------------------
def test_queue_after_clean_sets_identical_originals_aside_and_relabel_respects_leaks(tmp_path: Path):
    """Issues 20-22 together: identical originals under two classes (both set aside as label-conflict) are one
    card, not offered as 'not duplicates'; test leaks and same-class identical copies, which no override brings
    back, are no cards; relabel refuses a test leak, and clean's pairs follow a relabelled file."""
    from conftest import encode, photo, write
    from datacurate.core.catalog import open_catalog
    from datacurate.clean.keep import reason
    from datacurate.review.actions import Target, act
    from datacurate.review.queue import items
    from datacurate.core.workspace import Workspace

    root = tmp_path / "w"
    orig = root / "data" / "original"
    same = encode(photo(120, 90, seed=41), "JPEG", quality=92)
    write(orig / "cat" / "x.jpg", same)
    write(orig / "dog" / "x-misfiled.jpg", same)
    write(orig / "cat" / "y.jpg", encode(photo(120, 90, seed=42), "JPEG", quality=92))
    write(orig / "cat" / "y-copy.jpg", (orig / "cat" / "y.jpg").read_bytes())      # same class: duplicate
    write(root / "data" / "test" / "dog" / "t.png", encode(photo(120, 90, seed=43), "PNG"))
    write(orig / "dog" / "leak.png", encode(photo(120, 90, seed=43), "PNG"))      # test leak
    for i in range(2):
        write(orig / "dog" / f"d{i}.jpg", encode(photo(120, 90, seed=50 + i), "JPEG", quality=92))
    reasons = {Path(d.path).name: d.reason for d in api.clean(root).decisions}
    copy = next(n for n in ("y.jpg", "y-copy.jpg") if n in reasons)  # the keeper rule picks which copy stays
    assert reasons == {"x.jpg": "label-conflict", "x-misfiled.jpg": "label-conflict", copy: "duplicate",
                       "leak.png": "test-leak"}, reasons
    w = Workspace.open(root)
    with open_catalog(w) as cat:
        queue = [i for i in items(w, cat) if i.reason != "quality"]  # photo()'s flags kept by clean aside
    assert {(Path(i.path).name, i.reason) for i in queue} in (
        {("x.jpg", "label-conflict")}, {("x-misfiled.jpg", "label-conflict")})  # one card per content and reason
    card = queue[0]
    assert not card.pairable and card.compared and card.compared[0]["sha256"] == card.sha256
    # a person relabels the card's file into the class it belongs in; reason on its twin names where it is now
    done = act(w, "relabel", [Target(card.sha256, card.reason, card.path)], klass="cat")
    assert done[0]["path"] == "data/original/cat/" + Path(card.path).name and (root / done[0]["path"]).is_file()
    twin = next(p for p in ("data/quarantine/label-conflict/original/cat/x.jpg",
                            "data/quarantine/label-conflict/original/dog/x-misfiled.jpg") if (root / p).is_file())
    assert done[0]["path"] in [c["path"] for c in reason(w, root / twin).compared_with]
    with open_catalog(w) as cat:
        assert [i for i in items(w, cat) if i.reason != "quality"] == []
    with pytest.raises(UserError, match="test leak"):
        api.relabel(root, [root / "data/quarantine/test-leak/original/dog/leak.png"], "cat")
    assert (root / "data/quarantine/test-leak/original/dog/leak.png").is_file()


def test_every_endpoint_needs_the_token_and_a_local_host(served: Served):
    for path in ("/", "/map", "/api/cards", "/api/map", "/api/classes", "/thumb/" + "0" * 64, "/image/" + "0" * 64):
        for token in (None, "wrong"):
            status, body, _ = served.get(path, token=token)
            assert status == 403 and b"token" in body, path
    status, body, _ = served.get("/api/cards", headers={"Host": "evil.example:80"})
    assert status == 403 and b"host" in body
    status, body = served.post("/api/undo", {}, token=None)
    assert status == 403
    # a POST must carry the token in its header, not the URL (a form elsewhere cannot forge that)
    req = urllib.request.Request(served.base + f"/api/undo?token={TOKEN}", data=b"{}",
                                 headers={"Content-Type": "application/json"})
    assert _open(req)[0] == 403
    assert served.post("/api/undo", b"action=keep", kind="application/x-www-form-urlencoded")[0] == 415
    assert served.get("/nope")[0] == 404 and served.get("/data/")[0] == 404


def test_pages_cards_pictures_and_map(served: Served, ws: Path):
    status, page, headers = served.get("/")
    assert status == 200 and TOKEN.encode() in page and b"keep" in page and headers["cache-control"] == "no-store"
    everything = served.json("/api/cards?limit=1000")
    assert {"vet", "clean"} <= set(everything["stages"]) and {"off-topic", "wrong-class"} <= set(everything["reasons"])
    vet = served.json("/api/cards?stage=vet")
    assert vet["total"] == 6 and {c["path"] for c in vet["cards"] if c["reason"] == "wrong-class"} == set(WRONG.values())
    assert [c["need"] for c in vet["cards"]] == sorted(c["need"] for c in vet["cards"])  # closest call first
    first = vet["cards"][0]
    assert first["compared"] and first["lines"] and first["status"] == "quarantined"
    red = served.json("/api/cards?stage=vet&class=red&reason=off-topic")
    assert [c["path"] for c in red["cards"]] == ["data/quarantine/off-topic/scraped/red/chart.jpg"]
    paged = served.json("/api/cards?offset=2&limit=2")
    assert [c["id"] for c in paged["cards"]] == [c["id"] for c in everything["cards"][2:4]]
    for bad in ("offset=-1", "limit=0", "limit=x", "limit=5000"):
        status, body, _ = served.get(f"/api/cards?{bad}")
        assert status == 400 and b"error" in body, bad

    status, jpeg, headers = served.get(f"/thumb/{first['sha256']}")
    assert status == 200 and jpeg[:3] == b"\xff\xd8\xff" and headers["content-type"] == "image/jpeg"
    status, full, _ = served.get(f"/image/{first['sha256']}")
    assert status == 200 and full == (ws / first["path"]).read_bytes()
    for bad in ("0" * 64, "../../etc/passwd", "x"):
        assert served.get(f"/image/{bad}")[0] == 404 and served.get(f"/thumb/{bad}")[0] == 404
    assert served.json("/api/classes")["classes"] == ["blue", "green", "red"]

    points = served.json("/api/map")
    assert points["method"] in ("pca", "umap")
    with db(ws) as con:
        embedded = con.execute("SELECT COUNT(DISTINCT sha256) FROM embeddings").fetchone()[0]
    layout = points["layouts"][""]
    assert len(layout) == embedded == 72 and {p["kind"] for p in layout} == {"original", "scraped", "flagged"}
    assert all(0 <= p["x"] <= 1 and 0 <= p["y"] <= 1 for p in layout)
    assert {k for k in points["layouts"] if k} == {"blue", "green", "red"}
    status, page, _ = served.get("/map")
    assert status == 200 and b'id="plot"' in page


def test_actions_are_stored_at_once_seen_by_another_tab_and_undone(served: Served, ws: Path):
    cards = served.json("/api/cards?limit=1000")["cards"]
    blue, green, red = (card_of(cards, WRONG[k]) for k in ("blue", "green", "red"))
    status, out = served.act("relabel", blue, **{"class": "red"})
    assert status == 200 and out["done"][0]["path"] == "data/scraped/red/a_red.jpg"
    status, out = served.act("keep", green)
    assert status == 200 and (ws / "data/scraped/green/a_blue.jpg").is_file()
    status, out = served.act("aside", red)
    assert status == 200 and (ws / WRONG["red"]).is_file()
    originals = [c for c in cards if c["reason"] == "quality" and c["source"] == "original"][:2]
    status, out = served.act("aside", *originals)  # a bulk selection: files in place go to quarantine
    assert status == 200 and all(d["path"].startswith("data/quarantine/") for d in out["done"])
    # a second tab (a fresh request) no longer lists what was decided
    left = {c["id"] for c in served.json("/api/cards?limit=1000")["cards"]}
    assert not left & {blue["id"], green["id"], red["id"], *(c["id"] for c in originals)}
    with db(ws) as con:
        assert [r[0] for r in con.execute("SELECT action FROM reviews ORDER BY id")] == [
            "relabel", "keep", "aside", "aside", "aside"]
        assert con.execute("SELECT COUNT(*) FROM overrides WHERE kind='keep'").fetchone()[0] == 1
        assert con.execute("SELECT action FROM events WHERE src=? ORDER BY id DESC", (WRONG["green"],)).fetchone()[0] == "restore"

    # undo takes the last batch (both originals) back, then the set-aside, the keep, the relabel
    status, out = served.post("/api/undo", {})
    assert status == 200 and sorted(d["path"] for d in out["done"]) == sorted(c["path"] for c in originals)
    assert all((ws / c["path"]).is_file() for c in originals)
    assert served.post("/api/undo", {})[0] == 200
    status, out = served.post("/api/undo", {})
    assert out["done"][0]["path"] == WRONG["green"] and (ws / WRONG["green"]).is_file()
    status, out = served.post("/api/undo", {})
    assert out["done"][0]["path"] == WRONG["blue"] and not (ws / "data/scraped/red/a_red.jpg").exists()
    with db(ws) as con:
        assert con.execute("SELECT COUNT(*) FROM overrides").fetchone()[0] == 0
        assert tuple(con.execute("SELECT class, status FROM files WHERE path=?", (WRONG["blue"],)).fetchone()) == (
            "blue", "quarantined")
    status, out = served.post("/api/undo", {})
    assert status == 409 and "nothing to undo" in out["error"]
    assert {c["id"] for c in served.json("/api/cards?limit=1000")["cards"]} == {c["id"] for c in cards}


def test_not_duplicates_and_its_undo(served: Served, ws: Path):
    near = card_of(served.json("/api/cards?reason=near-duplicate")["cards"], NEAR)
    assert near["pairable"] and near["compared"][0]["path"] == "data/scraped/red/s0.jpg"
    status, out = served.post("/api/act", {"action": "apart", "cards": [
        {"id": near["id"], "path": near["path"], "other": near["compared"][0]["path"]}]})
    assert status == 200 and out["done"][0]["path"] == "data/scraped/red/s0_small.jpg"
    assert (ws / "data/scraped/red/s0_small.jpg").is_file() and not (ws / NEAR).exists()
    with db(ws) as con:
        assert con.execute("SELECT COUNT(*) FROM overrides WHERE kind='apart'").fetchone()[0] == 1
    status, out = served.post("/api/undo", {})
    assert status == 200 and out["done"][0]["path"] == NEAR and (ws / NEAR).is_file()
    with db(ws) as con:
        assert con.execute("SELECT COUNT(*) FROM overrides").fetchone()[0] == 0
        assert tuple(con.execute("SELECT status, reason FROM files WHERE path=?", (NEAR,)).fetchone()) == (
            "quarantined", "near-duplicate")
    status, out = served.act("apart", card_of(served.json("/api/cards?stage=vet")["cards"], WRONG["red"]))
    assert status == 409 and "needs a pair" in out["error"]


def test_bad_requests_and_a_stale_page_get_a_clear_message(served: Served, ws: Path):
    cards = served.json("/api/cards?limit=1000")["cards"]
    blue = card_of(cards, WRONG["blue"])
    for body in ({}, {"action": "keep"}, {"action": "keep", "cards": []}, {"action": "keep", "cards": [{"id": "x"}]},
                 {"action": "keep", "cards": "all"}, [1, 2]):
        status, out = served.post("/api/act", body)
        assert status == 400 and out["error"], body
    assert served.post("/api/act", b"{not json")[0] == 400
    status, out = served.act("launch", blue)
    assert status == 400 and "unknown action" in out["error"]
    status, out = served.act("relabel", blue, **{"class": "purple"})
    assert status == 400 and "does not exist" in out["error"] and (ws / WRONG["blue"]).is_file()
    status, out = served.act("relabel", blue)
    assert status == 400 and "needs a class" in out["error"]

    # someone else restores the file meanwhile: the page is stale
    run_cli("-C", str(ws), "-q", "restore", WRONG["blue"], check=True)
    status, out = served.act("keep", blue)
    assert status == 409 and "has moved since this page was loaded" in out["error"]
    assert "data/scraped/blue/a_red.jpg" in out["error"]
    blue_gone = dict(blue, path="data/scraped/blue/nowhere.jpg")
    status, out = served.act("aside", blue_gone)
    assert status == 409 and "reload the page" in out["error"]
    for outside in ("../outside.jpg", "/etc/hostname"):  # paths outside the workspace's folders: refused
        status, out = served.act("keep", dict(blue, path=outside))
        assert status == 409 and "reload the page" in out["error"]
    # undo of a decision whose file moved meanwhile
    green = card_of(cards, WRONG["green"])
    assert served.act("keep", green)[0] == 200
    (ws / "data/scraped/green/a_blue.jpg").rename(ws / "data/scraped/green/moved.jpg")
    status, out = served.post("/api/undo", {})
    assert status == 409 and "has moved since" in out["error"]


def test_review_command_serves_and_a_killed_server_loses_nothing(ws: Path):
    import signal
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "datacurate", "-C", str(ws), "review", "vet", "--no-browser", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = json.loads(proc.stdout.readline())["url"]
        assert url.startswith("http://127.0.0.1:") and "/?token=" in url
        status, page, _ = _open(urllib.request.Request(url))
        assert status == 200 and b'"vet"' in page  # the stage named on the command line is preselected
        assert _open(urllib.request.Request(url.split("?")[0]))[0] == 403
        base = url.split("/?")[0]
        cards = json.loads(_open(urllib.request.Request(base + "/api/cards?stage=vet&token=" + token_of(url)))[1])
        blue = card_of(cards["cards"], WRONG["blue"])
        body = json.dumps({"action": "keep", "cards": [{"id": blue["id"], "path": blue["path"]}]}).encode()
        req = urllib.request.Request(base + "/api/act", data=body, headers={
            "Content-Type": "application/json", "X-Datacurate-Token": token_of(url)})
        assert _open(req)[0] == 200
    finally:
        proc.kill()  # kill -9 right after the answer: the decision is already stored
        proc.wait(30)
    assert (ws / "data/scraped/blue/a_red.jpg").is_file() and not (ws / WRONG["blue"]).exists()
    with db(ws) as con:
        assert con.execute("SELECT action FROM reviews").fetchall()[0][0] == "keep"
        assert con.execute("SELECT status FROM files WHERE path='data/scraped/blue/a_red.jpg'").fetchone()[0] == "ok"

    # another address only when asked, with a warning; the token still guards it; Ctrl-C stops it (exit 0)
    proc = subprocess.Popen([sys.executable, "-m", "datacurate", "-C", str(ws), "review", "--no-browser", "--json",
                             "--host", "127.0.0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert "warning: serving on 127.0.0.2" in proc.stderr.readline()
        url = json.loads(proc.stdout.readline())["url"]
        assert url.startswith("http://127.0.0.2:") and _open(urllib.request.Request(url))[0] == 200
        assert _open(urllib.request.Request(url.split("?")[0]))[0] == 403
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0


def test_review_command_refuses_what_it_cannot_serve(tmp_path: Path, ws: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("-C", str(empty), "review", "--no-browser")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no catalog" in proc.stderr
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        proc = run_cli("-C", str(ws), "review", "--no-browser", "--port", str(taken.getsockname()[1]))
    assert proc.returncode == 2 and "cannot serve on 127.0.0.1" in proc.stderr


def test_report_vet_writes_the_map_page(ws: Path):
    out = json.loads(run_cli("-C", str(ws), "-q", "report", "vet", "--json", check=True).stdout)
    assert out["vet"]["map"] == "reports/vet-map.html"
    text = (ws / "reports/vet-map.html").read_text("utf-8")
    data = json.loads(text.split('<script id="data" type="application/json">')[1].split("</script>")[0])
    # every point has its picture: a thumbnail file, or (issue 20) a picture of at most 256 px shown as it is
    assert len(data["layouts"][""]) == 72 and all(data["thumbs"][p["sha256"]].startswith(("thumbs/", "../data/"))
                                                  for p in data["layouts"][""])
    assert all((ws / "reports" / unquote(t)).is_file() for t in data["thumbs"].values())


# -- one session in a real browser ----------------------------------------------------------------
def _browser(tmp_path: Path):
    """Headless Chromium through Selenium, or a skip naming what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("no Chromium and chromedriver on PATH: .ci/run installs them (apt-get install chromium "
                    "chromium-driver); this machine could not")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,860"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=opts)


def test_keyboard_triage_in_a_real_browser_then_the_map(served: Served, ws: Path, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = _browser(tmp_path)
    try:
        wait = WebDriverWait(driver, 30, poll_frequency=0.05)
        driver.get(f"{served.base}/?token={TOKEN}")
        total = served.json("/api/cards?limit=1000")["total"]
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".item")) == total)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#classes button")) == 3)
        Select(driver.find_element(By.ID, "f-stage")).select_by_value("vet")  # the filter: vet's cards only
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".item")) == 6)
        body = driver.find_element(By.TAG_NAME, "body")

        def current() -> str:
            return driver.find_element(By.CSS_SELECTOR, ".item.current").get_attribute("data-id")

        def press(key: str, *, done: bool = True) -> float:
            card = current()
            start = time.perf_counter()
            body.send_keys(key)
            item = f'.item[data-id="{card}"]'
            wait.until(lambda d: ("done" in d.find_element(By.CSS_SELECTOR, item).get_attribute("class")) == done)
            return time.perf_counter() - start

        cards = {c["path"]: c["id"] for c in served.json("/api/cards?stage=vet")["cards"]}
        order = [e.get_attribute("data-id") for e in driver.find_elements(By.CSS_SELECTOR, ".item")]
        assert order[:3] == [cards[WRONG[k]] for k in ("blue", "green", "red")]  # closest calls first
        assert current() == cards[WRONG["blue"]]
        seconds = [press("3")]          # relabel a_red.jpg to class 3, red
        assert current() == cards[WRONG["green"]]
        seconds.append(press("k"))      # keep a_blue.jpg where it was scraped (green)
        seconds.append(press("x"))      # set a_green.jpg aside (it stays in quarantine)
        body.send_keys("b")             # back to it
        wait.until(lambda d: current() == cards[WRONG["red"]])
        undo_at = time.perf_counter()
        body.send_keys("u")             # undo the set-aside
        item = f'.item[data-id="{cards[WRONG["red"]]}"]'
        wait.until(lambda d: "done" not in d.find_element(By.CSS_SELECTOR, item).get_attribute("class"))
        seconds.append(time.perf_counter() - undo_at)
        assert "undone" in driver.find_element(By.ID, "msg").text
        print(f"\nkeyboard triage: {len(seconds)} decisions, {sum(seconds) / len(seconds) * 1000:.0f} ms per key on average")
        if os.environ.get("DATACURATE_SCREENSHOT"):
            time.sleep(0.5)  # the undone wrong-class card, beside the nearest originals of both classes
            driver.save_screenshot(str(ROOT / "docs" / "review.png"))

        # the folders and the catalog
        assert (ws / "data/scraped/red/a_red.jpg").is_file() and not (ws / WRONG["blue"]).exists()
        assert (ws / "data/scraped/green/a_blue.jpg").is_file() and not (ws / WRONG["green"]).exists()
        assert (ws / WRONG["red"]).is_file()
        with db(ws) as con:
            assert tuple(con.execute("SELECT class, status FROM files WHERE path='data/scraped/red/a_red.jpg'").fetchone()) == (
                "red", "ok")
            assert tuple(con.execute("SELECT status FROM files WHERE path='data/scraped/green/a_blue.jpg'").fetchone()) == ("ok",)
            rows = [tuple(r) for r in con.execute("SELECT action, undone IS NOT NULL FROM reviews ORDER BY id")]
            assert rows == [("relabel", 0), ("keep", 0), ("aside", 1)]
            kinds = {r[0] for r in con.execute("SELECT kind FROM overrides")}
            assert kinds == {"label", "keep"}

        # the map: every embedded picture is a point; the relabelled one is marked as such
        driver.find_element(By.ID, "maplink").click()
        wait.until(lambda d: d.find_element(By.ID, "plot").get_attribute("data-points") not in (None, "", "0"))
        marks = driver.find_elements(By.CSS_SELECTOR, "#plot .pt")
        assert len(marks) == 72 == int(driver.find_element(By.ID, "plot").get_attribute("data-points"))
        assert {m.get_attribute("data-kind") for m in marks} >= {"original", "scraped", "flagged", "relabelled"}
        ActionChains(driver).move_to_element(marks[0]).perform()
        wait.until(lambda d: d.find_element(By.ID, "tip").is_displayed())
        assert driver.find_element(By.CSS_SELECTOR, "#tip img").get_attribute("src").startswith(served.base + "/thumb/")
        chart = cards["data/quarantine/off-topic/scraped/red/chart.jpg"].split(":")[0]
        driver.find_element(By.CSS_SELECTOR, f'#plot .pt[data-sha="{chart}"]').click()  # opens its card
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".item.current"))
        wait.until(lambda d: current().startswith(chart))
    finally:
        driver.quit()
