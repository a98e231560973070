"""clean's verdicts on real files: settled in one run, the same whatever the workers and threads (issue 20)."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from conftest import ROOT, encode, photo, run_cli, write
from datacurate.core.catalog import Catalog
from datacurate.clean.keep import keep
from datacurate.clean.restore import restore
from datacurate.clean.run import clean
from datacurate.core.workspace import Workspace


def sharp(w: int = 96, h: int = 72, seed: int = 0) -> Image.Image:
    im = photo(w, h, seed)
    d = ImageDraw.Draw(im)
    for i in range(5):
        d.rectangle((5 + i * 15, 8 + i * 9, 18 + i * 15, 22 + i * 9), fill=((seed * 40 + i * 50) % 256, 30 * i, 200 - 30 * i))
    return im


# -- 1. one picture under two labels ------------------------------------------------------------
def test_identical_originals_under_two_classes_are_both_set_aside(ws: Path):
    orig = ws / "data" / "original"
    data = encode(sharp(96, 72, 1), "JPEG", quality=90)
    write(orig / "cat" / "x.jpg", data)
    write(orig / "dog" / "x-again.jpg", data)
    write(orig / "dog" / "x-copy.jpg", data)     # a second copy in one of the classes
    write(orig / "cat" / "other.jpg", encode(sharp(96, 72, 2), "JPEG", quality=90))
    write(orig / "dog" / "other.jpg", encode(sharp(96, 72, 3), "JPEG", quality=90))
    w = Workspace.open(ws)
    result = clean(w)
    reasons = {d.path: d.reason for d in result.decisions}
    assert reasons == {"data/original/cat/x.jpg": "label-conflict", "data/original/dog/x-again.jpg": "label-conflict",
                       "data/original/dog/x-copy.jpg": "duplicate"}
    assert "filed under cat and dog" in next(d.detail for d in result.decisions if d.path.endswith("cat/x.jpg"))
    assert sorted(p.name for p in (orig / "cat").iterdir()) == ["other.jpg"]
    assert sorted(p.name for p in (orig / "dog").iterdir()) == ["other.jpg"]
    assert not result.conflicts_reported
    # a person brings back the right one; it stays from then on
    keep(w, [ws / "data" / "quarantine" / "label-conflict" / "original" / "cat" / "x.jpg"])
    assert (orig / "cat" / "x.jpg").exists()
    again = clean(w)
    assert again.decisions == [] and (orig / "cat" / "x.jpg").exists() and not (orig / "dog" / "x-again.jpg").exists()


# -- 3 and 6. damaged TIFFs: the same verdict whatever the workers and threads, nothing on the terminal --
def fax_tiff(seed: int = 0) -> bytes:
    return encode(photo(400, 300, seed, "L").convert("1"), "TIFF", compression="group4", dpi=(200, 200))


def odd_files() -> dict[str, bytes]:
    """Damaged TIFFs (fuzzed fax data, fuzzed directory entries, cut short) and a few good files, made
    deterministically: libtiff prints 'Fax4Decode: Bad code word' and 'TIFFFetchNormalTag' lines for them."""
    base = fax_tiff()
    ifd = struct.unpack("<I", base[4:8])[0] + 2
    files = {"good.tif": fax_tiff(1), "good.jpg": encode(sharp(96, 72, 4), "JPEG", quality=90),
             "cut.tif": base[: len(base) * 2 // 3]}
    for seed in range(8):
        data, r = bytearray(base), random.Random(seed)
        for _ in range(3):
            data[r.randrange(100, len(data) - 300)] = r.randrange(256)
        files[f"crash-{seed}.tif"] = bytes(data)
    for entry, byte, value in ((0, 4, 7), (0, 8, 7), (0, 9, 64), (1, 8, 64)):
        data = bytearray(base)
        data[ifd + 12 * entry + byte] = value
        files[f"tag-{entry}-{byte}-{value}.tif"] = bytes(data)
    return files


def _odd_workspace(root: Path) -> Path:
    for name, data in odd_files().items():
        write(root / "data" / "original" / "a" / name, data)
    return root


def _decisions(ws: Path) -> dict[str, tuple[str, str]]:
    with open(ws / "reports" / "clean-decisions.csv", encoding="utf-8") as fh:
        return {r["path"]: (r["decision"], r["reason"]) for r in csv.DictReader(fh)}


def test_damaged_tiffs_same_verdict_with_one_worker_and_the_default(tmp_path: Path):
    one, default = _odd_workspace(tmp_path / "one"), _odd_workspace(tmp_path / "default")
    first = run_cli("-C", str(one), "clean", "--dry-run", "--json", "--workers", "1")
    second = run_cli("-C", str(default), "-q", "clean", "--dry-run", "--json")  # all cores
    assert first.returncode == second.returncode == 0, (first.stderr, second.stderr)
    assert first.stderr == "" and second.stderr == "", second.stderr[:2000]
    assert json.loads(first.stdout)["set_aside"] == json.loads(second.stdout)["set_aside"]
    assert _decisions(one) == _decisions(default)
    assert _decisions(one)["data/original/a/crash-0.tif"] == ("set-aside", "corrupt")
    assert _decisions(one)["data/original/a/good.tif"][0] == "keep"
    real = run_cli("-C", str(default), "clean", "--workers", "3")  # a pool even on one core
    again = run_cli("-C", str(default), "report", "clean")
    assert real.returncode == again.returncode == 0 and real.stderr == "" and again.stderr == "", again.stderr[:2000]


def test_a_caller_thread_does_not_change_the_verdict(tmp_path: Path, capfd):
    alone, threaded = _odd_workspace(tmp_path / "alone"), _odd_workspace(tmp_path / "threaded")
    plain = clean(Workspace.open(alone), dry_run=True, workers=1)
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait, name="a notebook's scrape")
    busy.start()
    try:
        with_thread = clean(Workspace.open(threaded), dry_run=True, workers=1)
    finally:
        stop.set()
        busy.join()
    assert {(Path(d.path).name, d.reason) for d in with_thread.decisions} == {(Path(d.path).name, d.reason) for d in plain.decisions}
    assert ("crash-0.tif", "corrupt") in {(Path(d.path).name, d.reason) for d in plain.decisions}
    err = capfd.readouterr().err
    assert "Bad code word" not in err and "TIFF" not in err, err[:2000]


# -- 15. the keeper is never the washed-out copy --------------------------------------------------
def washed_out(im: Image.Image) -> Image.Image:
    """Brightened and flattened: what an over-exposed re-upload looks like."""
    return ImageEnhance.Brightness(ImageEnhance.Contrast(im, ).enhance(0.45)).enhance(1.35)


def test_keeper_is_the_clean_copy_not_its_washed_out_twin(ws: Path):
    cls = ws / "data" / "original" / "a"
    pic = sharp(400, 300, 11)
    write(cls / "photo.jpg", encode(pic, "JPEG", quality=70))
    write(cls / "photo-washed.jpg", encode(washed_out(pic), "JPEG", quality=97))  # more bytes per pixel
    write(cls / "other.jpg", encode(sharp(400, 300, 12), "JPEG", quality=80))
    result = clean(Workspace.open(ws))
    assert [(Path(d.path).name, d.reason, Path(d.of or "").name) for d in result.decisions] == [
        ("photo-washed.jpg", "near-duplicate", "photo.jpg")]
    assert sorted(p.name for p in cls.iterdir()) == ["other.jpg", "photo.jpg"]


def test_keeper_is_never_a_flagged_copy(ws: Path):
    cls = ws / "data" / "original" / "a"
    pic = sharp(400, 300, 13)
    dark = ImageEnhance.Brightness(pic).enhance(0.3)   # under-exposed: the `dark` flag
    write(cls / "photo.jpg", encode(pic, "JPEG", quality=60))
    write(cls / "photo-dark.png", encode(dark, "PNG"))   # lossless: far more bytes per pixel
    result = clean(Workspace.open(ws), dry_run=True)
    assert "dark" in result.flags["data/original/a/photo-dark.png"] and not result.flags["data/original/a/photo.jpg"]
    assert [(Path(d.path).name, Path(d.of or "").name) for d in result.decisions] == [("photo-dark.png", "photo.jpg")]


# -- 2. animated GIFs sharing their first frame -------------------------------------------------
def animation(seed: int) -> bytes:
    """A small animation whose first frame is the same flat picture for every seed (Pillow's dispose_*.gif)."""
    first = Image.new("RGB", (64, 64), (255, 255, 255))
    ImageDraw.Draw(first).rectangle((8, 8, 24, 24), fill=(0, 0, 255))
    later = [sharp(64, 64, seed + n) for n in range(2)]
    return encode(first, "GIF", save_all=True, append_images=later, duration=100, loop=0, disposal=seed % 3)


def test_gifs_with_the_same_first_frame_are_settled_in_one_run(ws: Path):
    cls = ws / "data" / "original" / "a"
    for n, name in enumerate(("dispose_bgnd.gif", "dispose_none.gif", "dispose_prev.gif")):
        write(cls / name, animation(20 + n))
    write(cls / "other.jpg", encode(sharp(96, 72, 5), "JPEG", quality=90))
    w = Workspace.open(ws)
    plan = clean(w, dry_run=True)
    assert [f.path for f in plan.fixes] == ["data/original/a/dispose_bgnd.gif"]
    assert {(Path(d.path).name, d.reason, d.of) for d in plan.decisions} == {
        ("dispose_none.gif", "duplicate", "data/original/a/dispose_bgnd.gif"),
        ("dispose_prev.gif", "duplicate", "data/original/a/dispose_bgnd.gif")}
    result = clean(w)
    assert sorted(p.name for p in cls.iterdir()) == ["dispose_bgnd.png", "other.jpg"]
    assert {d.of for d in result.decisions} == {"data/original/a/dispose_bgnd.png"}
    assert "first frame" in result.decisions[0].detail
    second = clean(w)
    assert second.decisions == [] and second.fixes == [] and second.moved == {}
    # a fourth copy arriving later goes as a duplicate of the PNG already there
    write(cls / "dispose_again.gif", animation(40))
    third = clean(w)
    assert [(Path(d.path).name, d.of) for d in third.decisions] == [("dispose_again.gif", "data/original/a/dispose_bgnd.png")]
    assert third.fixes == [] and sorted(p.name for p in cls.iterdir()) == ["dispose_bgnd.png", "other.jpg"]


# -- 5. restore across disks, class folders that are symbolic links ------------------------------
@pytest.fixture
def other_disk(tmp_path: Path):
    """A folder on another file system than tmp_path (/dev/shm) when the machine has one."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK) and os.stat(shm).st_dev != os.stat(tmp_path).st_dev):
        pytest.skip("no second file system to move a folder to")
    folder = Path(os.path.realpath(shm)) / f"datacurate-test-{os.getpid()}-{tmp_path.name}"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_restore_after_the_source_folder_moved_to_another_disk(ws: Path, other_disk: Path):
    scraped = ws / "data" / "scraped"
    data = encode(sharp(96, 72, 6), "JPEG", quality=90)
    write(ws / "data" / "original" / "cat" / "a.jpg", data)
    write(scraped / "cat" / "copy.jpg", data)
    write(scraped / "cat" / "b.jpg", encode(sharp(96, 72, 7), "JPEG", quality=90))
    w = Workspace.open(ws)
    assert [d.path for d in clean(w).decisions] == ["data/scraped/cat/copy.jpg"]
    shutil.move(str(scraped), str(other_disk / "scraped"))     # the user moves scraped/ to a bigger disk
    scraped.symlink_to(other_disk / "scraped", target_is_directory=True)
    proc = run_cli("-C", str(ws), "restore")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert (other_disk / "scraped" / "cat" / "copy.jpg").read_bytes() == data
    assert not list((ws / "data" / "quarantine").rglob("*.jpg"))
    assert [d.path for d in clean(Workspace.open(ws)).decisions] == ["data/scraped/cat/copy.jpg"]  # and back again
    assert (other_disk / ".datacurate-quarantine" / "duplicate" / "scraped" / "cat" / "copy.jpg").exists()


def test_a_class_folder_that_is_a_symbolic_link_is_walked(ws: Path, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere" / "狗"
    write(elsewhere / "dog1.jpg", encode(sharp(96, 72, 8), "JPEG", quality=90))
    write(elsewhere / "dog1-copy.jpg", encode(sharp(96, 72, 8), "JPEG", quality=90))
    write(ws / "data" / "original" / "cat" / "cat1.jpg", encode(sharp(96, 72, 9), "JPEG", quality=90))
    (ws / "data" / "original" / "狗").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(elsewhere, target_is_directory=True)  # a loop is walked once
    result = clean(Workspace.open(ws))
    assert result.scanned == 3 and [d.path for d in result.decisions] == ["data/original/狗/dog1.jpg"]
    assert sorted(p.name for p in elsewhere.iterdir()) == ["dog1-copy.jpg", "loop"]
    restore(Workspace.open(ws))
    assert (elsewhere / "dog1.jpg").exists()


# -- 4. kill -9 between a write and its catalog row ----------------------------------------------
KILLED_AT = """
import os, signal, sys
sys.path.insert(0, {root!r})
import {module} as target
def killed(*args, **kwargs):
    {before}
    os.kill(os.getpid(), signal.SIGKILL)
target.{name} = killed
from datacurate.cli.main import main
sys.argv = ["datacurate", *{args!r}]
main()
"""


def run_killed_at(module: str, name: str, args: list[str], before: str = "pass") -> subprocess.CompletedProcess:
    """The CLI with `module.name` replaced by a kill -9 of itself (the moment between a write and its catalog row)."""
    code = KILLED_AT.format(root=str(ROOT), module=module, name=name, args=args, before=before)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_kill_9_between_a_converted_png_and_its_catalog_row(ws: Path):
    cls = ws / "data" / "original" / "a"
    write(cls / "anim.gif", encode(sharp(64, 64, 3), "GIF", save_all=True, append_images=[sharp(64, 64, 4)], duration=90))
    write(cls / "other.jpg", encode(sharp(96, 72, 5), "JPEG", quality=90))
    proc = run_killed_at("datacurate.clean.run", "_convert_done", ["-C", str(ws), "clean", "--workers", "1"])
    assert proc.returncode == -9
    assert sorted(p.name for p in cls.iterdir()) == ["anim.gif", "anim.png", "other.jpg"]  # the PNG, uncatalogued
    result = clean(Workspace.open(ws))
    assert result.decisions == [] and [(f.path, f.dst) for f in result.fixes] == [
        ("data/original/a/anim.gif", "data/original/a/anim.png")]
    assert "recognised" in result.fixes[0].detail
    assert sorted(p.name for p in cls.iterdir()) == ["anim.png", "other.jpg"]
    assert (ws / "data" / "quarantine" / "converted" / "original" / "a" / "anim.gif").exists()
    with Catalog(ws / ".datacurate" / "catalog.sqlite") as cat:
        assert cat.file("data/original/a/anim.png")["made_from"] == cat.file(
            "data/quarantine/converted/original/a/anim.gif")["sha256"]
    assert clean(Workspace.open(ws)).decisions == []


KILLED_AT_RECORD = """
import os, signal, sys
sys.path.insert(0, {root!r})
import datacurate.scrape.run as run
original = run.record
def record(cat, entries):
    if any(row is not None for _, row, _ in entries):
        os.kill(os.getpid(), signal.SIGKILL)  # the files are in their class folder, their rows not yet written
    original(cat, entries)
run.record = record
from datacurate.cli.main import main
sys.argv = ["datacurate", *{args!r}]
main()
"""


def test_kill_9_between_a_scraped_file_and_its_catalog_rows(ws: Path):
    from datacurate.demo.engine import FakeEngine, make_image

    (ws / "data" / "original" / "cat").mkdir(parents=True)
    with FakeEngine({"cat": [make_image(i, size=(200, 150)) for i in range(6)]}) as fe:
        args = ["-C", str(ws), "-q", "scrape", "--allow-private", "--delay", "0", "--timeout", "2", "--retries", "1",
                "-n", "3", "--base-url", f"bing={fe.base_url}"]
        proc = subprocess.run([sys.executable, "-c", KILLED_AT_RECORD.format(root=str(ROOT), args=args)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == -9, proc.stderr
        saved = sorted((ws / "data" / "scraped" / "cat").iterdir())
        assert saved
        again = run_cli("-C", str(ws), "-q", "scrape", "--allow-private", "--delay", "0", "-n", str(len(saved)),
                        "--base-url", f"bing={fe.base_url}")
    assert again.returncode == 0, again.stderr
    with Catalog(ws / ".datacurate" / "catalog.sqlite") as cat:
        for path in saved:
            rel = f"data/scraped/cat/{path.name}"
            prov = cat.db.execute("SELECT image_url, engine FROM provenance WHERE path=?", (rel,)).fetchall()
            assert len(prov) == 1 and prov[0]["engine"] == "bing" and prov[0]["image_url"].startswith(fe.base_url), rel
            assert cat.file(rel)["source"] == "scraped"
        assert cat.db.execute("SELECT count(*) FROM events WHERE action='recover'").fetchone()[0] == len(saved)
    assert not list((ws / ".datacurate" / "scrape-journal").iterdir())


# -- fewer originals after a clean can leave a last training batch of one image -------------------
def test_training_on_k_batches_plus_one_image(tmp_path: Path):
    """9 training images at batch 4: the last batch of each epoch holds one image, which batch norm in
    training mode cannot normalise by its own statistics (item 1 left the demo with such a count)."""
    import torch

    from datacurate.train.run import train

    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("valid", 1)):
        for ci, c in enumerate(("cat", "dog", "可回收物_易拉罐")):
            for i in range(n):
                a = rng.integers(0, 90, (40, 48, 3), dtype=np.uint8)
                a[..., ci] += 150
                write(tmp_path / "data" / "split" / split / c / f"{i}.jpg", encode(Image.fromarray(a), "JPEG", quality=90))
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(Workspace.open(tmp_path), {"arch": "resnet18", "weights": "none", "img_size": 32, "batch_size": 4,
                                                  "workers": 0, "device": "cpu", "freeze_until": "none",
                                                  "head_epochs": 0, "epochs": 1, "name": "odd"}, quiet=True)
    finally:
        torch.set_num_threads(old)
    assert (result.run_dir / "best.pt").is_file()
