"""A person in the loop: keep, not-duplicates, restore PATH, reason; dry-run reports; `datacurate report`;
review pages that reach every card (checked without a browser by tests/htmlcheck.py)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import encode, photo, run_cli, write
from htmlcheck import crawl
from test_vet import VET_CONFIG, _make

from datacurate.clean.keep import keep, reason
from datacurate.clean.report import KEPT_FLAGGED
from datacurate.clean.restore import restore
from datacurate.clean.run import clean
from datacurate.core.errors import UserError
from datacurate.regenerate import report
from datacurate.core.workspace import Workspace

NEAR = "data/scraped/red/s0_small.jpg"
NEAR_Q = "data/quarantine/near-duplicate/scraped/red/s0_small.jpg"


def ok(*args: str) -> str:
    return run_cli(*args, check=True).stdout


def one_line_exit_2(*args: str) -> str:
    proc = run_cli(*args)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stdout, proc.stderr)
    return proc.stderr


def test_keep_a_near_duplicate_and_an_off_topic_image_for_good(tmp_path: Path):
    ws = tmp_path / "ws"
    _make(ws)
    (ws / "datacurate.yaml").write_text(yaml.safe_dump({"vet": VET_CONFIG, "clean": {"keep_flags": True}}), "utf-8")
    with Image.open(ws / "data/scraped/red/s0.jpg") as im:
        write(ws / NEAR, encode(im.resize((48, 36)), "JPEG", quality=90))
    w = ["-C", str(ws), "-q"]
    assert json.loads(ok(*w, "clean", "--json"))["set_aside"] == {"near-duplicate": 1}
    assert (ws / NEAR_Q).is_file() and not (ws / NEAR).exists()

    why = json.loads(ok(*w, "reason", NEAR, "--json"))  # asked by the path it had
    assert why["stage"] == "clean" and why["reason"] == "near-duplicate" and why["path"] == NEAR_Q
    assert why["distance"] is not None and why["when"]
    assert any(c["path"] == "data/scraped/red/s0.jpg" and "kept" in c["kind"] for c in why["compared_with"])
    text = ok(*w, "reason", str(ws / NEAR_Q))
    assert "set aside by clean as near-duplicate" in text and "compared with: data/scraped/red/s0.jpg" in text

    out = ok(*w, "keep", "--dry-run", str(ws / NEAR_Q))
    assert "would restore" in out and "dry run" in out and (ws / NEAR_Q).is_file()
    assert json.loads(ok(*w, "reason", NEAR, "--json"))["kept_by_you"] == []
    out = ok(*w, "keep", str(ws / NEAR_Q))
    assert f"restored  {NEAR_Q} -> {NEAR}" in out and (ws / NEAR).is_file() and not (ws / NEAR_Q).exists()
    for _ in range(2):  # clean twice: it stays
        summary = json.loads(ok(*w, "clean", "--json"))
        assert summary["set_aside"] == {} and summary["kept_by_you"] == 1 and (ws / NEAR).is_file()

    first = json.loads(ok(*w, "vet", "--json"))
    assert (ws / NEAR).is_file() and NEAR not in {f["path"] for f in first["flags"]}
    chart = "data/scraped/green/chart.jpg"
    why = json.loads(ok(*w, "reason", chart, "--json"))
    assert why["stage"] == "vet" and why["reason"] == "off-topic" and why["distance"] > why["threshold"]
    assert sum("nearest green originals" in c["kind"] for c in why["compared_with"]) == 5
    ok(*w, "keep", chart)
    again = json.loads(ok(*w, "vet", "--json"))
    assert (ws / chart).is_file() and chart in again["kept_by_user"] and sum(again["set_aside"].values()) == 0

    # by content: renamed, the near-duplicate is still kept
    (ws / NEAR).rename(ws / "data/scraped/red/renamed.jpg")
    assert json.loads(ok(*w, "clean", "--json"))["set_aside"] == {}
    assert (ws / "data/scraped/red/renamed.jpg").is_file()

    # the reports, again from the catalog alone
    shutil.rmtree(ws / "reports")
    out = ok(*w, "report")
    assert "report: reports/clean.html" in out and "report: reports/vet.html" in out
    pages = crawl(ws / "reports" / "clean.html")
    kept_cards = [c for p in pages.values() for c in p.cards if c["reason"] == "kept, with quality flags"]
    assert not [c for p in pages.values() for c in p.cards if c["reason"] == "near-duplicate"]
    assert kept_cards == [] or all(c["file"] for c in kept_cards)
    vet_pages = crawl(ws / "reports" / "vet.html")
    vet_cards = {c["file"] for c in vet_pages[(ws / "reports/vet.html").resolve()].cards}
    assert not any("chart" in f and "green" in f for f in vet_cards), "kept: no longer set aside"
    assert sum(1 for f in vet_cards if "quarantine/off-topic" in f) == 2  # red and blue charts


def test_bad_paths_are_one_line_and_exit_2(tmp_path: Path):
    ws = tmp_path / "ws"
    write(ws / "data/original/a/x.jpg", encode(photo(seed=1), "JPEG"))
    outside = write(tmp_path / "elsewhere.jpg", encode(photo(seed=2), "JPEG"))
    w = ["-C", str(ws)]
    for cmd in (["keep"], ["restore"], ["reason"]):
        assert "no such file" in one_line_exit_2(*w, *cmd, str(ws / "data/original/a/nope.jpg"))
        assert "not a file in the workspace's data folders" in one_line_exit_2(*w, *cmd, str(outside))
    assert "not in quarantine" in one_line_exit_2(*w, "restore", str(ws / "data/original/a/x.jpg"))
    assert "two or more" in one_line_exit_2(*w, "keep", "--not-duplicates", str(ws / "data/original/a/x.jpg"))
    # keep on a file in place only records the override
    assert "kept  data/original/a/x.jpg" in ok(*w, "keep", str(ws / "data/original/a/x.jpg"))
    assert json.loads(ok(*w, "reason", str(ws / "data/original/a/x.jpg"), "--json"))["kept_by_you"] == ["*"]
    write(ws / "data/original/a/broken.jpg", encode(photo(seed=3), "JPEG")[:300])
    ok(*w, "clean")
    (broken,) = (ws / "data/quarantine").rglob("broken.jpg")
    err = one_line_exit_2(*w, "keep", str(broken))
    assert "cannot be kept" in err and broken.parts[-4] in err  # its reason: truncated or corrupt


def test_not_duplicates_through_the_api(ws: Path):
    """Two near-identical originals and a test image: the person says they differ; clean never pairs them again."""
    im = photo(200, 150, seed=5)
    write(ws / "data/original/cat/a.png", encode(im, "PNG"))
    write(ws / "data/original/cat/b.jpg", encode(im.resize((150, 112)), "JPEG", quality=80))
    write(ws / "data/original/cat/c.png", encode(photo(200, 150, seed=6), "PNG"))
    write(ws / "data/test/cat/t.png", encode(photo(200, 150, seed=6), "PNG"))
    w = Workspace.open(ws)
    first = clean(w)
    assert {(Path(d.path).name, d.reason) for d in first.decisions} == {("b.jpg", "near-duplicate"), ("c.png", "test-leak")}
    plan = keep(w, ["data/quarantine/near-duplicate/original/cat/b.jpg", "data/original/cat/a.png"],
                not_duplicates=True, dry_run=True)
    assert plan.restored.moves and (ws / "data/quarantine/near-duplicate/original/cat/b.jpg").is_file()
    done = keep(w, [str(ws / "data/quarantine/near-duplicate/original/cat/b.jpg"), str(ws / "data/original/cat/a.png")],
                not_duplicates=True)
    assert [m[1] for m in done.restored.moves] == ["data/original/cat/b.jpg"]
    for leak in (["data/quarantine/test-leak/original/cat/c.png", "data/test/cat/t.png"],
                 ["data/quarantine/test-leak/original/cat/c.png"]):  # no override exempts a test leak
        with pytest.raises(UserError, match="no override exempts a test leak"):
            keep(w, leak, not_duplicates=len(leak) > 1)
    assert (ws / "data/quarantine/test-leak/original/cat/c.png").is_file()
    for _ in range(2):
        again = clean(w)
        assert again.decisions == [] and again.pairs == []
    (ws / "data/original/cat/b.jpg").rename(ws / "data/original/cat/b2.jpg")
    assert clean(w).decisions == []
    db = sqlite3.connect(ws / ".datacurate/catalog.sqlite")
    assert db.execute("SELECT COUNT(*) FROM overrides WHERE kind='apart'").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM pairs WHERE kind != 'test-leak'").fetchone()[0] == 0
    db.close()
    why = reason(w, "data/original/cat/b2.jpg")
    assert why.status == "ok" and why.not_duplicates_of == ["data/original/cat/a.png"]


def test_restore_single_files_and_reason_still_works(ws: Path):
    im = photo(seed=7)
    for name in ("k.png", "d1.png", "d2.png"):
        write(ws / "data/original/x" / name, encode(im, "PNG"))
    w = Workspace.open(ws)
    clean(w)
    quarantined = sorted(p.name for p in (ws / "data/quarantine/duplicate").rglob("*.png"))
    assert len(quarantined) == 2
    plan = restore(w, paths=[f"data/original/x/{quarantined[0]}"], dry_run=True)  # by the path it had
    assert len(plan.moves) == 1 and not (ws / "data/original/x" / quarantined[0]).exists()
    restore(w, paths=[f"data/original/x/{quarantined[0]}"])
    assert (ws / "data/original/x" / quarantined[0]).exists()
    assert len(list((ws / "data/quarantine/duplicate").rglob("*.png"))) == 1
    with pytest.raises(UserError, match="not in quarantine"):
        restore(w, paths=[f"data/original/x/{quarantined[0]}"])
    assert len(restore(w, ("duplicate",)).moves) == 1  # --reason as before


def _planted(ws: Path, n: int) -> None:
    """n near-duplicate pairs over three classes (one Chinese), a leak, and broken files."""
    classes = ["cat", "dog", "猫"]
    for i in range(n):
        im = photo(80, 60, seed=100 + i)
        c = classes[i % 3]
        write(ws / f"data/original/{c}/p{i:03d}.png", encode(im, "PNG"))
        write(ws / f"data/scraped/{c}/p{i:03d}-copy.jpg", encode(im.resize((64, 48)), "JPEG", quality=70))
    write(ws / "data/original/cat/empty.jpg", b"")
    write(ws / "data/original/dog/page.jpg", b"<html>not found</html>")


def _cards(pages) -> list[dict]:
    return [c for p in pages.values() for c in p.cards]


def test_dry_run_reports_a_plan_then_the_real_run_replaces_it_and_pages_reach_every_card(ws: Path):
    _planted(ws, 13)
    w = Workspace.open(ws)
    plan = clean(w, dry_run=True)
    index = ws / "reports/clean.html"
    pages = crawl(index)
    assert all("[plan]" in p.title for p in pages.values()) and "plan — nothing was moved" in pages[index.resolve()].text
    flagged = sum(1 for p, f in plan.flags.items() if f and p not in {d.path for d in plan.decisions})
    cards = pages[index.resolve()].cards  # one page: fewer than 200
    assert len([c for c in cards if c["reason"] != KEPT_FLAGGED]) == len(plan.decisions) == 15
    assert len(cards) == 15 + flagged and all(c["file"].startswith("../data/") for c in cards)
    assert not (ws / "data/quarantine").exists()
    assert "plan — nothing was moved" in (ws / "reports/clean-duplicates.html").read_text("utf-8")

    done = clean(w)
    pages = crawl(index)
    assert not any("[plan]" in p.title or "nothing was moved" in p.text for p in pages.values())
    # the catalog's counts, card for card, in every view; pages of 4 reach every file exactly once
    report(w, ["clean"], page_size=4)
    pages = crawl(index)
    db = sqlite3.connect(ws / ".datacurate/catalog.sqlite")
    catalog = dict(db.execute("SELECT reason, COUNT(*) FROM files WHERE status='quarantined' GROUP BY reason"))
    db.close()
    assert catalog == done.counts == {"near-duplicate": 13, "empty": 1, "not-an-image": 1}
    first = pages[index.resolve()]
    everything = [c for p in pages.values() if p.path.name.startswith("0-0-") or p.path == index.resolve() for c in p.cards]
    assert len(everything) == 15 + flagged
    assert Counter(c["reason"] for c in everything if c["reason"] != KEPT_FLAGGED) == Counter(catalog)
    assert len({c["file"] for c in everything if c["file"]}) == 15 + flagged, "each file once, linked to it"
    assert sum(1 for p in pages.values() if p.path.name.startswith("0-0-")) == -(-(15 + flagged) // 4) - 1
    assert all((ws / "reports" / url).resolve() in pages for url in first.views.values()), "every filter view was reached"
    by_class = [p for p in pages.values() if p.path.name.startswith("0-3-")]  # 猫: 4 near-duplicates, flagged ones
    assert {c["class"] for p in by_class for c in p.cards} == {"猫"}
    assert sum(c["reason"] == "near-duplicate" for p in by_class for c in p.cards) == 4
    near = [c for c in everything if c["reason"] == "near-duplicate"]
    assert all("quarantine/near-duplicate" in c["file"] for c in near)
    in_order = first.cards + [c for n in range(2, 9) if (ws / f"reports/clean-pages/0-0-{n}.html").resolve() in pages
                              for c in pages[(ws / f"reports/clean-pages/0-0-{n}.html").resolve()].cards]
    reasons = [c["reason"] for c in in_order]
    assert reasons.index("not-an-image") > max(i for i, r in enumerate(reasons) if r == "near-duplicate"), "closest calls first"


def test_no_override_opens_the_test_set_or_readmits_identical_bytes(ws: Path):
    """Issue 21 items 2 and 3: keep refuses test images and test leaks; identical bytes stay one picture a class."""
    pic = encode(photo(seed=11), "PNG")
    write(ws / "data/test/cat/t.png", pic)
    write(ws / "data/original/cat/leak.png", pic)
    twin = encode(photo(seed=12), "PNG")
    write(ws / "data/original/cat/a.png", twin)
    write(ws / "data/original/cat/b.png", twin)
    w = Workspace.open(ws)
    first = clean(w)
    assert sorted((Path(d.path).name, d.reason) for d in first.decisions) == [("b.png", "duplicate"), ("leak.png", "test-leak")]
    with pytest.raises(UserError, match="test image: test images are never set aside"):
        keep(w, ["data/test/cat/t.png"])
    with pytest.raises(UserError, match="no override exempts a test leak"):
        keep(w, ["data/quarantine/test-leak/original/cat/leak.png"])
    with pytest.raises(UserError, match="same bytes"):
        keep(w, ["data/quarantine/duplicate/original/cat/b.png"])
    assert "identical bytes" in one_line_exit_2("-C", str(ws), "keep", "--not-duplicates", "data/original/cat/a.png",
                                               str(ws / "data/quarantine/duplicate/original/cat/b.png"))
    assert "two or more different files" in one_line_exit_2("-C", str(ws), "keep", "--not-duplicates",
                                                            str(ws / "data/original/cat/a.png"), str(ws / "data/original/cat/a.png"))
    # overrides recorded by an older datacurate (or the copy clean kept, kept by hand) change nothing
    import time as _time

    db = sqlite3.connect(ws / ".datacurate/catalog.sqlite")
    sha_t = db.execute("SELECT sha256 FROM files WHERE path='data/test/cat/t.png'").fetchone()[0]
    sha_a = db.execute("SELECT sha256 FROM files WHERE path='data/original/cat/a.png'").fetchone()[0]
    db.executemany("INSERT INTO overrides (kind, a, b, reason, time, path) VALUES (?,?,?,?,?,?)",
                   [("keep", sha_t, "", "*", _time.time(), "x"), ("apart", sha_a, sha_a, "*", _time.time(), "y")])
    db.commit()
    db.close()
    keep(w, ["data/original/cat/a.png"])
    restore(w)
    again = clean(w)
    assert sorted((Path(d.path).name, d.reason) for d in again.decisions) == [("b.png", "duplicate"), ("leak.png", "test-leak")]
    assert not again.overridden


def test_a_quarantined_file_deleted_by_hand(ws: Path):
    """Issue 21 item 5: restore and keep name it (one line, exit 2) and record nothing; reason says it is gone."""
    write(ws / "data/original/x/a.png", encode(photo(seed=7), "PNG"))
    write(ws / "data/original/x/b.png", encode(photo(seed=7).resize((60, 45)), "PNG"))
    w = Workspace.open(ws)
    (moved,) = [d for d in clean(w).decisions]
    (q,) = list((ws / "data/quarantine").rglob("*.png"))
    q.unlink()
    for cmd in (["restore"], ["keep"]):
        err = one_line_exit_2("-C", str(ws), *cmd, str(q))
        assert "no longer there" in err and "internal error" not in err
    with pytest.raises(UserError, match="no longer there"):
        keep(w, [f"data/original/x/{Path(moved.path).name}"])  # by the path it had
    db = sqlite3.connect(ws / ".datacurate/catalog.sqlite")
    assert db.execute("SELECT COUNT(*) FROM overrides").fetchone()[0] == 0
    db.close()
    why = reason(w, f"data/original/x/{Path(moved.path).name}")
    assert why.status == "missing" and "no longer there" in why.lines()[0]


def test_reason_after_keep_json_names_and_a_busy_catalog(ws: Path):
    """Issue 21 item 13: reason follows a restored twin, shows undecodable names as \\xNN, writes nothing and
    does not wait on a writer; clean sweeps partial reports a kill -9 left."""
    import os
    import time as _time

    im = photo(200, 150, seed=5)
    write(ws / "data/original/cat/a.png", encode(im, "PNG"))
    write(ws / "data/original/cat/b.jpg", encode(im.resize((150, 112)), "JPEG", quality=80))
    odd = os.fsdecode(os.fsencode(str(ws / "data/original/cat")) + b"/\xff.png")
    write(Path(odd), encode(photo(seed=9), "PNG"))
    stale = write(ws / "reports" / ".tmp-abc.part", b"half a report")
    os.utime(stale, (_time.time() - 3600, _time.time() - 3600))
    w = Workspace.open(ws)
    clean(w)
    assert not stale.exists()
    keep(w, ["data/quarantine/near-duplicate/original/cat/b.jpg"])
    twin = reason(w, "data/original/cat/a.png")
    assert [c["path"] for c in twin.compared_with] == ["data/original/cat/b.jpg"]
    assert reason(w, odd).to_dict()["path"] == "data/original/cat/\\xff.png"
    new = write(ws / "data/original/cat/new.png", encode(photo(seed=10), "PNG"))
    writer = sqlite3.connect(ws / ".datacurate/catalog.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT OR REPLACE INTO meta VALUES ('busy', '1')")
    start = _time.monotonic()
    try:
        why = reason(w, str(new))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert _time.monotonic() - start < 3 and why.status == "ok" and why.path == "data/original/cat/new.png"
    db = sqlite3.connect(ws / ".datacurate/catalog.sqlite")
    assert db.execute("SELECT COUNT(*) FROM files WHERE path='data/original/cat/new.png'").fetchone()[0] == 0
    db.close()


def test_a_small_picture_is_shown_as_it_is(ws: Path):
    """No second decode and no thumbnail file for a picture of at most 256 px; a larger one gets its thumbnail."""
    big, small = photo(400, 300, seed=7), photo(256, 192, seed=8)
    write(ws / "data/original/a/big.jpg", encode(big, "JPEG", quality=90))
    write(ws / "data/original/a/big-copy.jpg", encode(big, "JPEG", quality=90))
    write(ws / "data/original/b/small.png", encode(small, "PNG"))
    write(ws / "data/original/b/small-copy.png", encode(small, "PNG"))
    clean(Workspace.open(ws), dry_run=True)
    pages = crawl(ws / "reports" / "clean.html")  # every <img src> exists
    srcs = {s for p in pages.values() for s in p.imgs}
    assert "../data/original/b/small.png" in srcs or "../data/original/b/small-copy.png" in srcs, srcs
    made = list((ws / "reports" / "thumbs").glob("*.jpg"))
    assert len(made) == 1 and f"thumbs/{made[0].name}" in srcs
    with Image.open(made[0]) as im:
        assert max(im.size) == 128


def test_unchanged_pages_are_not_made_again(ws: Path):
    """A clean that changes nothing leaves the review pages as they were; a change or a lost page remakes them."""
    for i in range(3):
        write(ws / f"data/original/a/{i}.jpg", encode(photo(96, 72, seed=i), "JPEG"))
    write(ws / "data/original/a/copy.jpg", encode(photo(96, 72, seed=0), "JPEG"))
    w = Workspace.open(ws)
    clean(w, dry_run=True)
    page, gallery = ws / "reports" / "clean.html", ws / "reports" / "clean-duplicates.html"
    before = (page.stat().st_ino, gallery.stat().st_ino)
    again = clean(w, dry_run=True)
    assert (page.stat().st_ino, gallery.stat().st_ino) == before
    assert again.reports["html"] == "reports/clean.html"
    gallery.unlink()
    clean(w, dry_run=True)
    assert gallery.is_file() and page.stat().st_ino != before[0]
    made = page.stat().st_ino
    write(ws / "data/original/a/copy-of-1.jpg", encode(photo(96, 72, seed=1), "JPEG"))  # one more to set aside
    clean(w, dry_run=True)
    assert page.stat().st_ino != made and "copy-of-1.jpg" in page.read_text("utf-8")
    clean(w)  # the real run reports from the catalog: other pages than the plan's
    assert "plan — nothing was moved" not in page.read_text("utf-8")
