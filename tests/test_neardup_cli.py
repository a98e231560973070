"""`datacurate clean --threshold K --against DIR` end to end, in a subprocess, on real files."""

from __future__ import annotations

import csv
from pathlib import Path

import imagehash
from conftest import encode, photo, run_cli, write
from PIL import ImageEnhance

from datacurate.core.imageio import inspect_file


def phash_distance(a: Path, b: Path) -> int:
    ha, hb = (imagehash.hex_to_hash(inspect_file(p).hashes["phash"]) for p in (a, b))
    return int(ha - hb)


def test_threshold_and_against(ws: Path, tmp_path: Path) -> None:
    cat, held = photo(240, 180, seed=21), photo(240, 180, seed=22)
    keeper = write(ws / "data/original/猫/cat.png", encode(cat, "PNG"))
    brighter = write(ws / "data/scraped/猫/cat-bright.jpg", encode(ImageEnhance.Brightness(cat).enhance(1.2), "JPEG", quality=90))
    write(ws / "data/scraped/可回收物_易拉罐/cat-copy.jpg", encode(cat.resize((120, 90)), "JPEG", quality=80))
    write(ws / "data/original/狗/cat-misfiled.png", encode(cat, "PNG", compress_level=1))
    leak = write(ws / "data/scraped/狗/held-copy.jpg", encode(held.resize((200, 150)), "JPEG", quality=85))
    outside = write(tmp_path / "elsewhere" / "held" / "held.png", encode(held, "PNG"))
    d = phash_distance(keeper, brighter)
    assert 1 <= d <= 10, f"the brightened copy should be a few bits away, got {d}"

    below = run_cli("clean", "--dry-run", "--threshold", str(d - 1), cwd=ws, check=True).stdout
    assert "cat-bright.jpg" not in below, f"distance {d} is past --threshold {d - 1}"
    assert "held-copy.jpg" not in below, "no data/test and no --against: no leak check"
    at = run_cli("clean", "--dry-run", "--threshold", str(d), "--against", str(outside.parent), cwd=ws, check=True).stdout
    assert f"data/scraped/猫/cat-bright.jpg  [near-duplicate]  within {d} bits of data/original/猫/cat.png" in at
    assert "data/scraped/狗/held-copy.jpg  [test-leak]" in at
    assert "[label-conflict]" in at and "cat-copy.jpg" in at
    assert "set aside  data/original" not in at, "an original under another class is only reported"

    run_cli("clean", "--threshold", str(d), "--against", str(outside.parent), cwd=ws, check=True)
    q = ws / "data/quarantine"
    assert (q / "near-duplicate/scraped/猫/cat-bright.jpg").is_file()
    assert (q / "label-conflict/scraped/可回收物_易拉罐/cat-copy.jpg").is_file()
    assert (q / "test-leak/scraped/狗/held-copy.jpg").is_file() and not leak.exists()
    assert (ws / "data/original/狗/cat-misfiled.png").is_file() and keeper.is_file()
    assert outside.is_file() and len(list(outside.parent.iterdir())) == 1, "the test folder is never modified"
    rows = list(csv.DictReader((ws / "reports/clean-pairs.csv").open(encoding="utf-8")))
    kinds = {(r["b"].split("/")[-1], r["kind"]) for r in rows}
    assert {("cat-bright.jpg", "near-duplicate"), ("cat-copy.jpg", "label-conflict"), ("held-copy.jpg", "test-leak")} <= kinds
    reported = [{r["a"], r["b"]} for r in rows if r["kind"] == "conflict-reported"]
    assert reported == [{"data/original/猫/cat.png", "data/original/狗/cat-misfiled.png"}]
    gallery = (ws / "reports/clean-duplicates.html").read_text("utf-8")
    assert "Label conflicts" in gallery and "Test-set leaks" in gallery and 'src="../data/' in gallery


def test_bad_threshold_is_one_line(ws: Path) -> None:
    write(ws / "data/original/a/x.png", encode(photo(seed=1), "PNG"))
    proc = run_cli("clean", "--threshold", "99", cwd=ws)
    assert proc.returncode == 2 and "threshold" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
