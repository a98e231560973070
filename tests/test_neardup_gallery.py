"""The duplicates gallery and the pairs CSV, from real files (some already quarantined)."""

from __future__ import annotations

import csv
import re
import shutil
from urllib.parse import unquote
from pathlib import Path

from conftest import encode, photo, write

from datacurate.clean.gallery import write_duplicates_report, write_pairs_csv
from datacurate.clean.model import Item, Pair
from datacurate.core.workspace import Workspace


def test_gallery_and_csv(ws: Path) -> None:
    im, other = photo(200, 150, seed=1), photo(200, 150, seed=2)
    write(ws / "data/original/猫/a.png", encode(im, "PNG"))
    write(ws / "data/original/狗/b.jpg", encode(im, "JPEG"))
    write(ws / "data/test/t.png", encode(other, "PNG"))
    # the scraped copy has already moved to quarantine; the catalog knows it by its new path
    moved = write(ws / "data/quarantine/label-conflict/scraped/可回收物_易拉罐/c.jpg", encode(im, "JPEG", quality=60))
    write(ws / "data/quarantine/test-leak/original/猫/d.jpg", encode(other, "JPEG"))
    w = Workspace.open(ws)
    items = {
        "data/original/猫/a.png": Item("data/original/猫/a.png", "猫", "original", 200, 150, 10, "s1", "0"),
        "data/original/狗/b.jpg": Item("data/original/狗/b.jpg", "狗", "original", 200, 150, 9, "s2", "0"),
        w.rel(moved): Item(w.rel(moved), "可回收物_易拉罐", "scraped", 200, 150, 8, "s3", "0"),
        "data/test/t.png": Item("data/test/t.png", "", "test", 200, 150, 7, "s4", "0"),
    }  # d.jpg is deliberately missing from the items: the card still shows, found through its home
    pairs = [
        Pair("data/original/猫/a.png", "data/scraped/可回收物_易拉罐/c.jpg", "label-conflict", 4, "phash"),
        Pair("data/original/猫/a.png", "data/original/狗/b.jpg", "conflict-reported", 2, "phash"),
        Pair("data/test/t.png", "data/original/猫/d.jpg", "test-leak", 3, "phash"),
        Pair("data/test/t.png", "data/scraped/gone/e.jpg", "test-leak", 5, "phash"),  # a file no longer anywhere
    ]
    out = write_duplicates_report(w, pairs, items, ws / "reports" / "clean-duplicates.html")
    text = out.read_text("utf-8")
    shown = re.findall(r'<img loading="lazy" src="([^"]+)"', text)  # 200x150 pictures: shown as they are
    assert len(shown) == 5 and all(s.startswith("../data/") for s in shown), "a picture for each file that exists"
    assert all((ws / "reports" / unquote(s)).is_file() for s in shown)
    links = re.findall(r'<a href="([^"]+)">', text)
    assert len(links) == 5 and all((ws / "reports" / unquote(h)).is_file() for h in links), "each links to its file"
    assert "no preview" in text
    assert "可回收物_易拉罐" in text and "now at data/quarantine/label-conflict/scraped/可回收物_易拉罐/c.jpg" in text
    assert "Label conflicts (1)" in text and "Test-set leaks (1)" in text
    assert "distance 4 (phash)" in text and "stays: conflict for a person to decide" in text
    assert 'class="card kept"' in text
    assert not list((ws / "reports").glob(".tmp-*")), "written atomically"

    csv_path = write_pairs_csv(pairs, ws / "reports" / "clean-pairs.csv")
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    assert [(r["a"], r["b"], r["kind"], r["distance"]) for r in rows] == [(p.a, p.b, p.kind, str(p.distance)) for p in pairs]
    shutil.rmtree(ws / "data" / "test")
    empty = write_duplicates_report(w, [], {}, ws / "reports" / "empty.html").read_text("utf-8")
    assert "No duplicates" in empty
