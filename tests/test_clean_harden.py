"""clean on the files real users have: bombs, fuzzed TIFFs, bad RLE, GIF trios, odd names, kill -9, a full disk."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from conftest import ROOT, encode, photo, run_cli, write
from datacurate.core.catalog import Catalog
from datacurate.clean.restore import restore
from datacurate.clean.run import clean
from datacurate.core.errors import UserError
from datacurate.core.imageio import inspect_bytes
from datacurate.core.workspace import Workspace


def sharp(w=96, h=72, seed=0) -> Image.Image:
    """A picture with hard edges and texture (real photos are not blurry)."""
    rng = np.random.default_rng(seed)
    im = photo(w, h, seed)
    d = ImageDraw.Draw(im)
    for _ in range(6):
        x, y = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
        d.rectangle((x, y, x + int(rng.integers(5, 30)), y + int(rng.integers(5, 30))),
                    fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return im


def jpg(seed=0, w=96, h=72) -> bytes:
    return encode(sharp(w, h, seed), "JPEG", quality=92)


def bomb_png(w=40000, h=40000) -> bytes:
    """A PNG header claiming w x h pixels with a few bytes of data (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", __import__("zlib").crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", __import__("zlib").compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def fuzzed_fax_tiff() -> bytes:
    """A group-4 TIFF with flipped bytes: libtiff half-decodes it, printing 'Bad code word' warnings."""
    im = photo(400, 300, 0, "L").convert("1")
    data = bytearray(encode(im, "TIFF", compression="group4"))
    r = random.Random(0)
    for _ in range(3):
        data[r.randrange(100, len(data) - 300)] = r.randrange(256)
    return bytes(data)


def bad_rle_bmp() -> bytes:
    """An 8-bit RLE BMP whose runs overflow every row (Pillow clips them silently and loads it)."""
    w, h = 64, 64
    rle = bytes([200, 7, 0, 0]) * h + bytes([0, 1])  # 200-pixel runs in 64-pixel rows
    palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
    offset = 14 + 40 + len(palette)
    header = struct.pack("<2sIHHI", b"BM", offset + len(rle), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 8, 1, len(rle), 2835, 2835, 256, 0)
    return header + info + palette + rle


def gif_with_first_frame(first: Image.Image, seed: int) -> bytes:
    other = sharp(64, 64, seed).convert("P")
    return encode(first.convert("P"), "GIF", save_all=True, append_images=[other], duration=100, loop=0)


def _tree(root: Path) -> dict[str, bytes]:
    return {os.fsdecode(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _catalog_agrees(ws: Path) -> None:
    with Catalog(ws / ".datacurate" / "catalog.sqlite") as cat:
        for row in cat.files():
            assert Workspace.open(ws).abs(row["path"]).exists(), row["path"]


# -- 1. the decompression-bomb crash family ------------------------------------------------------
@pytest.mark.parametrize("order", ["dry-run,clean", "dry-run,dry-run", "clean,restore,clean"])
def test_bomb_in_original_through_every_sequence(ws: Path, order: str):
    cls = ws / "data" / "original" / "a"
    write(cls / "bomb.png", bomb_png())
    write(cls / "ok.jpg", jpg(1))
    for step in order.split(","):
        if step == "restore":
            run_cli("-C", str(ws), "restore", check=True)
            continue
        proc = run_cli("-C", str(ws), "clean", *(["--dry-run"] if step == "dry-run" else []), check=True)
        assert "bomb.png  [too-large]  40000x40000 exceeds" in proc.stdout or step == "clean"
        assert "internal error" not in proc.stderr and proc.stderr.strip() == ""
    final = clean(Workspace.open(ws), dry_run=True)
    if order.endswith("clean"):
        assert final.decisions == [] and (ws / "data" / "quarantine" / "too-large" / "original" / "a" / "bomb.png").exists()
    else:
        assert [(d.path, d.reason) for d in final.decisions] == [("data/original/a/bomb.png", "too-large")]


def test_bomb_in_the_test_folder_and_a_loosened_limit(ws: Path):
    write(ws / "data" / "test" / "t" / "bomb.png", bomb_png())
    write(ws / "data" / "original" / "a" / "ok.jpg", jpg(2))
    for _ in range(2):
        assert run_cli("-C", str(ws), "clean", check=True).returncode == 0
    write(ws / "data" / "original" / "a" / "b2.png", bomb_png(12000, 12000))
    assert clean(Workspace.open(ws), dry_run=True).counts == {"too-large": 1}
    assert clean(Workspace.open(ws), dry_run=True, max_pixels=200_000_000).counts == {"truncated": 1}  # decoded now: no data


# -- 6. library noise ---------------------------------------------------------------------------
def test_fuzzed_tiff_and_bad_rle_bmp_are_corrupt_and_nothing_reaches_stderr(ws: Path):
    cls = ws / "data" / "original" / "a"
    write(cls / "fax.tif", fuzzed_fax_tiff())
    write(cls / "rle.bmp", bad_rle_bmp())
    write(cls / "fine.tif", encode(photo(400, 300, 0, "L").convert("1"), "TIFF", compression="group4"))
    write(cls / "ok.jpg", jpg(3))
    found = inspect_bytes(fuzzed_fax_tiff())
    assert found.reason == "corrupt" and "Bad code word" in found.detail and found.noise
    proc = run_cli("-C", str(ws), "clean", "--workers", "1", "--json")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert json.loads(proc.stdout)["set_aside"] == {"corrupt": 2}
    rows = {r["path"]: r for r in csv.DictReader(open(ws / "reports" / "clean-decisions.csv", encoding="utf-8"))}
    assert "Bad code word" in rows["data/original/a/fax.tif"]["detail"]
    assert "RLE" in rows["data/original/a/rle.bmp"]["detail"]
    assert rows["data/original/a/fine.tif"]["decision"] == "keep"


# -- 2. one copy per class, 4. the keeper rule --------------------------------------------------
def test_copies_inside_one_class_go_even_when_the_keeper_is_in_another(ws: Path):
    orig = ws / "data" / "original"
    pic = sharp(400, 300, 5)
    write(orig / "a" / "pic.png", encode(pic, "PNG"))
    for n in ("1", "2"):
        write(orig / "b" / f"copy{n}.jpg", encode(pic, "JPEG", quality=90))
    for n, size in (("s1", 200), ("s2", 160), ("s3", 120)):
        write(orig / "b" / f"{n}.jpg", encode(pic.resize((size, size * 3 // 4)), "JPEG", quality=85))
    result = clean(Workspace.open(ws))
    assert sorted(p.name for p in (orig / "b").iterdir()) == ["copy1.jpg"]
    assert {Path(d.path).name: d.reason for d in result.decisions} == {
        "copy2.jpg": "duplicate", "s1.jpg": "near-duplicate", "s2.jpg": "near-duplicate", "s3.jpg": "near-duplicate"}
    assert [(p.a, p.b) for p in result.conflicts_reported] == [("data/original/a/pic.png", "data/original/b/copy1.jpg")]
    assert clean(Workspace.open(ws)).decisions == []


def test_colour_copy_kept_over_a_larger_fax_tiff(ws: Path):
    cls = ws / "data" / "original" / "a"
    base = sharp(300, 200, 7)
    d = ImageDraw.Draw(base)
    d.rectangle((20, 20, 140, 180), fill=(20, 20, 160))
    d.ellipse((170, 40, 280, 150), fill=(250, 230, 30))
    write(cls / "fax.tif", encode(base.resize((600, 400)).convert("L").point(lambda v: 255 if v > 110 else 0).convert("1"),
                                  "TIFF", compression="group4"))
    write(cls / "gray.png", encode(base.convert("L"), "PNG"))
    write(cls / "colour.jpg", encode(base, "JPEG", quality=90))
    result = clean(Workspace.open(ws))
    assert sorted(p.name for p in cls.iterdir()) == ["colour.jpg"], result.decisions


# -- 3. GIFs, second runs, partial files ----------------------------------------------------------
def test_gif_trio_becomes_one_png_and_a_second_clean_is_a_no_op(ws: Path):
    cls = ws / "data" / "original" / "a"
    first = sharp(64, 64, 9)
    for i in range(3):
        write(cls / f"g{i}.gif", gif_with_first_frame(first, 20 + i))
    write(cls / "other.jpg", jpg(30))
    stale = write(cls / ".tmp-abc123.part", b"half a png")
    os.utime(stale, (time.time() - 3600,) * 2)
    fresh = write(cls / ".tmp-live.part", b"being written now")
    result = clean(Workspace.open(ws))
    names = sorted(p.name for p in cls.iterdir())
    assert len(names) == 3 and names[0] == ".tmp-live.part" and names[1].endswith(".png") and names[2] == "other.jpg"
    assert not stale.exists() and fresh.exists() and result.swept == ["data/original/a/.tmp-abc123.part"]
    after = _tree(ws / "data")
    second = clean(Workspace.open(ws))
    assert second.decisions == [] and second.fixes == [] and _tree(ws / "data") == after


# -- 5. restore undoes renames and conversions ---------------------------------------------------
def test_restore_gives_back_the_folder_the_user_had(ws: Path):
    cls = ws / "data" / "original" / "a"
    write(cls / "camera.mpo", jpg(40))
    write(cls / "really_png.jpg", encode(sharp(64, 64, 41), "PNG"))
    write(cls / "anim.gif", gif_with_first_frame(sharp(64, 64, 42), 43))
    write(cls / "dup.jpg", jpg(40))
    write(cls / "keep.jpg", jpg(44))
    before = _tree(ws / "data" / "original")
    w = Workspace.open(ws)
    first = clean(w)
    assert {f.action for f in first.fixes} == {"rename", "convert"}
    assert "anim.png" in {p.name for p in cls.iterdir()}
    result = restore(w)
    assert result.removed == ["data/original/a/anim.png"]
    assert _tree(ws / "data" / "original") == before
    assert not any(p.is_file() for p in (ws / "data" / "quarantine").rglob("*"))
    again = clean(w)  # and clean does the same again
    assert len(again.fixes) == len(first.fixes) and again.counts == first.counts
    _catalog_agrees(ws)


def test_restore_keeps_a_changed_derived_png_in_quarantine(ws: Path):
    cls = ws / "data" / "original" / "a"
    write(cls / "anim.gif", gif_with_first_frame(sharp(64, 64, 50), 51))
    w = Workspace.open(ws)
    clean(w)
    write(cls / "anim.png", encode(sharp(64, 64, 52), "PNG"))  # the user edited the PNG clean made
    restore(w)
    assert sorted(p.name for p in cls.iterdir()) == ["anim.gif"]
    assert (ws / "data" / "quarantine" / "derived" / "original" / "a" / "anim.png").exists()


# -- 7. quality flags -----------------------------------------------------------------------------
def test_quality_flags_reported_for_all_set_aside_for_scraped(ws: Path):
    orig, scraped = ws / "data" / "original" / "a", ws / "data" / "scraped" / "a"
    good = sharp(160, 120, 60)
    dark = Image.eval(sharp(160, 120, 61), lambda v: v // 10)
    solid = Image.new("RGB", (160, 120), (90, 120, 200))
    write(orig / "dark.jpg", encode(dark, "JPEG", quality=90))
    write(scraped / "dark.jpg", encode(Image.eval(sharp(160, 120, 64), lambda v: v // 10), "JPEG", quality=90))
    write(orig / "good.jpg", encode(good, "JPEG", quality=90))
    write(orig / "blurry.jpg", encode(sharp(160, 120, 62).filter(ImageFilter.GaussianBlur(6)), "JPEG", quality=90))
    write(orig / "solid.png", encode(solid, "PNG"))
    write(scraped / "gray.jpg", encode(sharp(160, 120, 63).convert("L").convert("RGB"), "JPEG", quality=90))
    write(ws / "data" / "original" / "b" / "solid2.png", encode(Image.new("RGB", (160, 120), (10, 200, 30)), "PNG"))
    w = Workspace.open(ws)
    plan = clean(w, dry_run=True)
    assert {d.path: d.reason for d in plan.decisions} == {"data/scraped/a/dark.jpg": "dark"}
    assert plan.flags["data/original/a/dark.jpg"] == ["low-information", "dark"] or "dark" in plan.flags["data/original/a/dark.jpg"]
    assert plan.flags["data/original/a/blurry.jpg"] == ["blurry"]
    assert plan.flags["data/original/a/solid.png"] == ["low-information"]
    assert plan.flags["data/scraped/a/gray.jpg"] == ["grayscale"] and plan.flags["data/original/a/good.jpg"] == []
    assert plan.conflicts_reported == [], "solid pictures of two classes are not near-duplicates of each other"
    assert clean(w, dry_run=True, keep_flags=True).decisions == []
    dropped = clean(w, dry_run=True, drop="blurry,low-information")
    assert {d.path: d.reason for d in dropped.decisions} == {
        "data/original/a/blurry.jpg": "blurry", "data/original/a/solid.png": "low-information",
        "data/original/b/solid2.png": "low-information", "data/original/a/dark.jpg": "blurry",
        "data/scraped/a/dark.jpg": "blurry"}  # dimmed tenfold, its edges are weak too
    proc = run_cli("-C", str(ws), "clean", "--json", check=True)
    assert json.loads(proc.stdout)["flags"]["grayscale"] == 1
    rows = {r["path"]: r for r in csv.DictReader(open(ws / "reports" / "clean-decisions.csv", encoding="utf-8"))}
    assert rows["data/original/a/blurry.jpg"]["flags"] == "blurry"
    with Catalog(w.catalog_path) as cat:
        assert len(cat.quality()) >= 6
        assert cat.file("data/original/a/blurry.jpg")["flags"] == "blurry"
    assert "quality flags" in (ws / "reports" / "clean.html").read_text(encoding="utf-8")
    bad = run_cli("-C", str(ws), "clean", "--drop", "darkish")
    assert bad.returncode == 2 and "darkish" in bad.stderr


def test_placeholder_by_listed_hash_and_by_recurring_scraped_picture(ws: Path, tmp_path: Path):
    scraped = ws / "data" / "scraped"
    na = Image.new("RGB", (200, 150), (235, 235, 235))
    ImageDraw.Draw(na).text((50, 70), "image not available", fill=(150, 150, 150))
    for seed, c in enumerate(("cat", "dog")):
        write(scraped / c / "na.png", encode(na, "PNG"))
        write(scraped / c / f"{c}.jpg", jpg(200 + seed))
    write(ws / "data" / "original" / "cat" / "mine.jpg", jpg(70))
    plan = clean(Workspace.open(ws), dry_run=True)
    assert {d.path: d.reason for d in plan.decisions} == {"data/scraped/cat/na.png": "placeholder",
                                                          "data/scraped/dog/na.png": "placeholder"}
    listed = tmp_path / "placeholders.txt"
    listed.write_text(f"# our host's placeholder\n{plan_hash(ws, 'data/original/cat/mine.jpg')}\n")
    again = clean(Workspace.open(ws), dry_run=True, placeholder_hashes=str(listed), drop="placeholder")
    assert "data/original/cat/mine.jpg" in {d.path for d in again.decisions if d.reason == "placeholder"}


def plan_hash(ws: Path, rel: str) -> str:
    with Catalog(ws / ".datacurate" / "catalog.sqlite") as cat:
        return cat.hashes("phash")[cat.file(rel)["sha256"]]


# -- 8. --convert-unsupported -------------------------------------------------------------------
def test_convert_unsupported_formats_to_png(ws: Path):
    cls = ws / "data" / "original" / "a"
    write(cls / "icon.ico", encode(sharp(64, 64, 80), "ICO", sizes=[(64, 64)]))
    write(cls / "pic.tga", encode(sharp(64, 64, 81), "TGA"))
    write(cls / "pic.jp2", encode(sharp(64, 64, 82), "JPEG2000"))
    plan = clean(Workspace.open(ws), dry_run=True)
    assert plan.counts == {"unsupported": 3}
    assert all("ImageFolder skips" in d.detail for d in plan.decisions)
    result = clean(Workspace.open(ws), convert_unsupported=True)
    assert sorted(p.name for p in cls.iterdir()) == ["icon.png", "pic-1.png", "pic.png"]
    assert result.decisions == [] and {f.action for f in result.fixes} == {"convert"}
    from torchvision.datasets import ImageFolder

    assert len(ImageFolder(str(ws / "data" / "original"))) == 3
    assert clean(Workspace.open(ws), convert_unsupported=True).fixes == []


# -- 9. names that are not UTF-8, names of 250 bytes ------------------------------------------------
def test_non_utf8_and_250_byte_names_clean_restore_clean(ws: Path):
    orig = os.fsencode(ws / "data" / "original")
    cls = os.path.join(orig, b"cl\xe9s")  # a Latin-1 folder name
    os.makedirs(cls)
    long_name = b"x" * 246 + b".gif"
    files = {b"\xff\xfe.jpg": jpg(90), b"dup\xff.jpg": jpg(90), b"page\xfe.jpg": b"<html></html>",
             long_name: gif_with_first_frame(sharp(64, 64, 91), 92), b"y" * 246 + b".jpg": b""}
    for name, data in files.items():
        with open(os.path.join(cls, name), "wb") as fh:
            fh.write(data)
    before = sorted(os.listdir(cls))
    for args in (["clean", "--dry-run"], ["clean", "--json"], ["clean"], ["restore"], ["clean"], ["clean"]):
        proc = run_cli("-C", str(ws), *args)
        assert proc.returncode == 0 and "internal error" not in proc.stderr, (args, proc.stderr)
        if args == ["restore"]:
            assert sorted(os.listdir(cls)) == before
    left = sorted(os.listdir(cls))
    assert len(left) == 2 and left[0] in (b"\xff\xfe.jpg", b"dup\xff.jpg"), left
    assert left[1].startswith(b"xxx") and left[1].endswith(b".png") and len(left[1]) <= 255
    rows = list(csv.DictReader(open(ws / "reports" / "clean-decisions.csv", encoding="utf-8")))
    assert len(rows) == 2 and all(Workspace.open(ws).abs(r["now_at"]).exists() for r in rows)
    _catalog_agrees(ws)


# -- 10. workers die with their parent ----------------------------------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_clean_takes_its_workers_along(ws: Path):
    cls = ws / "data" / "original" / "a"
    big = encode(sharp(1600, 1200, 1), "PNG", compress_level=0)
    for i in range(300):
        write(cls / f"{i:03d}.png", big)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "datacurate", "-C", str(ws), "clean", "--workers", "2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.time() + 60
    while time.time() < deadline and len(workers) < 2:
        workers = _children(proc.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, "clean never started its workers"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.05)
    assert not any(_alive(p) for p in workers), "a decoding worker outlived clean"


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- 13. a full disk ------------------------------------------------------------------------------
def test_disk_full_during_conversion_is_one_line_and_loses_nothing(ws: Path, monkeypatch):
    import errno

    import datacurate.clean.run as run_mod

    cls = ws / "data" / "original" / "a"
    write(cls / "anim.gif", gif_with_first_frame(sharp(64, 64, 100), 101))
    write(cls / "empty.jpg", b"")
    write(cls / "ok.jpg", jpg(102))
    real = run_mod.Image.Image.save

    def full(self, fp, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(fp))

    monkeypatch.setattr(run_mod.Image.Image, "save", full)
    with pytest.raises(UserError, match="no space left on the file system mounted at"):
        clean(Workspace.open(ws))
    assert sorted(p.name for p in cls.iterdir()) == ["anim.gif", "empty.jpg", "ok.jpg"]
    _catalog_agrees(ws)
    monkeypatch.setattr(run_mod.Image.Image, "save", real)
    assert clean(Workspace.open(ws)).counts == {"empty": 1}
    assert sorted(p.name for p in cls.iterdir()) == ["anim.png", "ok.jpg"]


def test_disk_full_on_a_real_tiny_file_system(tmp_path: Path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root or mount refused)")
    try:
        cls = mnt / "data" / "original" / "a"
        for i in range(6):
            write(cls / f"g{i}.gif", gif_with_first_frame(sharp(200, 200, 110 + i), 120 + i))
        with open(mnt / "filler", "wb") as fh:  # leave too little room for the PNGs
            try:
                fh.write(b"\0" * (4 << 20))
            except OSError:
                pass
        proc = run_cli("-C", str(mnt), "clean", "--workers", "1")
        assert proc.returncode == 2 and "no space left on the file system mounted at" in proc.stderr, proc.stderr
        assert proc.stderr.strip().count("\n") == 0
        names = {p.name for p in (mnt / "data").rglob("*.gif")}
        assert names == {f"g{i}.gif" for i in range(6)}, "every GIF is in its place or in quarantine"
        (mnt / "filler").unlink()
        _catalog_agrees(mnt)
        run_cli("-C", str(mnt), "clean", "--workers", "1", check=True)
        assert len(list(cls.glob("*.png"))) == 6 and not list(cls.glob("*.gif"))
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# -- 14. reports point at files that exist; big files are refused unread --------------------------
def test_decisions_csv_paths_exist_and_max_bytes(ws: Path):
    cls = ws / "data" / "original" / "a"
    write(cls / "anim.gif", gif_with_first_frame(sharp(64, 64, 130), 131))
    write(cls / "anim_copy.gif", gif_with_first_frame(sharp(64, 64, 130), 132))
    write(cls / "named.jpeg.png", jpg(133))
    write(cls / "big.jpg", jpg(134, 800, 600))
    write(ws / "data" / "test" / "a" / "t.jpg", jpg(133))
    result = clean(Workspace.open(ws), max_bytes=20_000)
    assert {Path(d.path).name: d.reason for d in result.decisions} == {
        "big.jpg": "too-large", "named.jpeg.png": "test-leak", "anim_copy.gif": "near-duplicate"}
    assert "not decoded" in next(d.detail for d in result.decisions if d.reason == "too-large")
    w = Workspace.open(ws)
    for row in csv.DictReader(open(ws / "reports" / "clean-decisions.csv", encoding="utf-8")):
        assert w.abs(row["now_at"]).exists(), row
        if row["of"]:
            assert w.abs(row["of"]).exists(), row
    assert clean(Workspace.open(ws)).counts == {}
