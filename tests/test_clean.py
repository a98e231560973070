"""`datacurate clean` on real files: every reason, every unusual valid format, moves and restores."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import sqlite3
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import encode, photo, run_cli, write
from datacurate.core.catalog import SCHEMA_VERSION, Catalog
from datacurate.clean.run import clean
from datacurate.clean.restore import restore
from datacurate.core.errors import UserError
from datacurate.core.workspace import Workspace

CLS = "可回收物_易拉罐"


def jpg(seed=0, w=96, h=72, **kw) -> bytes:
    return encode(photo(w, h, seed), "JPEG", quality=90, **kw)


def bad_crc_png() -> bytes:
    data = bytearray(encode(photo(64, 64, 3), "PNG"))
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4: idat])[0]
    data[idat + 4 + length] ^= 0xFF  # flip a byte of the IDAT chunk's CRC
    return bytes(data)


def undecodable_png() -> bytes:
    """A PNG whose IDAT data is not zlib data but whose CRCs are right."""
    data = encode(photo(64, 64, 4), "PNG")
    start = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[start: start + 4])[0]
    junk = bytes(range(256)) * (length // 256 + 1)
    junk = junk[:length]
    chunk = struct.pack(">I", length) + b"IDAT" + junk + struct.pack(">I", zlib.crc32(b"IDAT" + junk))
    return data[:start] + chunk + data[start + 12 + length:]


def exif_rotated_jpeg() -> bytes:
    im = photo(120, 60, 5)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 on display
    return encode(im, "JPEG", exif=exif)


def sixteen_bit_png(seed=6) -> bytes:
    arr = (np.random.default_rng(seed).random((8, 8)) * 65535).astype(np.uint16)
    im = Image.fromarray(arr).resize((64, 64), Image.BILINEAR)
    return encode(im, "PNG")


def palette_transparent_png() -> bytes:
    im = photo(64, 64, 7).convert("P", palette=Image.ADAPTIVE, colors=16)
    return encode(im, "PNG", transparency=0)


def animated_gif() -> bytes:
    frames = [photo(64, 64, s).convert("P") for s in (8, 9)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


BAD = {
    "empty": b"",
    "not-an-image": b"<!doctype html><html><body>404</body></html>",
    "truncated": None,  # filled in below (half a JPEG)
    "corrupt": None,
    "too-small": None,
    "odd-aspect": None,
    "unsupported": None,
}


def bad_files() -> dict[str, list[tuple[str, bytes]]]:
    full = jpg(1, 400, 300)
    return {
        "empty": [("empty.jpg", b"")],
        "not-an-image": [("page.jpg", b"<!doctype html><html><body>404</body></html>"),
                         ("vector.jpg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'),
                         ("doc.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"),
                         ("notes.jpg", b"just some text\n")],
        "truncated": [("half.jpg", full[: len(full) // 2])],
        "corrupt": [("crc.png", bad_crc_png()), ("zlib.png", undecodable_png())],
        "too-small": [("tiny.jpg", jpg(2, 20, 40))],
        "odd-aspect": [("banner.jpg", jpg(3, 440, 40))],
        "unsupported": [("icon.ico", encode(photo(64, 64, 10), "ICO"))],
    }


GOOD = {
    "cmyk.jpg": lambda: encode(photo(80, 60, 11).convert("CMYK"), "JPEG"),
    "progressive.jpg": lambda: encode(photo(80, 60, 12), "JPEG", progressive=True),
    "rotated.jpg": exif_rotated_jpeg,
    "deep.png": sixteen_bit_png,
    "alpha.png": lambda: encode(photo(64, 64, 13).convert("RGBA"), "PNG"),
    "palette.png": palette_transparent_png,
    "gray.jpg": lambda: encode(photo(64, 64, 14, "L"), "JPEG"),
    "web.webp": lambda: encode(photo(64, 64, 15), "WEBP"),
    "bitmap.bmp": lambda: encode(photo(64, 64, 16), "BMP"),
    "scan.tiff": lambda: encode(photo(64, 64, 17), "TIFF"),
}


def test_every_reason_is_set_aside_and_valid_files_are_kept(ws: Path):
    cls = ws / "data" / "original" / CLS
    for reason, files in bad_files().items():
        for name, data in files:
            write(cls / name, data)
    for name, make in GOOD.items():
        write(cls / name, make())
    result = clean(Workspace.open(ws), workers=2)
    got = {Path(d.path).name: d.reason for d in result.decisions}
    want = {name: reason for reason, files in bad_files().items() for name, _ in files}
    assert got == want
    for reason, files in bad_files().items():
        for name, _ in files:
            assert (ws / "data" / "quarantine" / reason / "original" / CLS / name).exists()
    for name in GOOD:
        assert (cls / name).exists(), name
    assert result.fixes == []


def test_too_large_by_limit_and_by_decompression_bomb(ws: Path):
    cls = ws / "data" / "original" / "a"
    write(cls / "ok.jpg", jpg(1, 200, 150))
    write(cls / "bomb.png", encode(Image.new("1", (12000, 12000)), "PNG"))
    result = clean(Workspace.open(ws), max_pixels=100 * 100)
    assert {Path(d.path).name: d.reason for d in result.decisions} == {"ok.jpg": "too-large", "bomb.png": "too-large"}
    write(cls / "ok2.jpg", jpg(1, 60, 60))
    result = clean(Workspace.open(ws))
    assert result.decisions == []  # 60x60 is fine with Pillow's default limit


def test_wrong_extensions_are_fixed_and_gif_is_converted(ws: Path):
    cls = ws / "data" / "original" / "cats"
    write(cls / "really_webp.jpg", encode(photo(64, 64, 20), "WEBP"))
    write(cls / "really_png.jpg", encode(photo(64, 64, 21), "PNG"))
    write(cls / "no_extension", jpg(22))
    write(cls / "anim.gif", animated_gif())
    result = clean(Workspace.open(ws))
    assert result.decisions == []
    names = sorted(p.name for p in cls.iterdir())
    assert names == ["anim.png", "no_extension.jpg", "really_png.png", "really_webp.webp"]
    assert Image.open(cls / "anim.png").format == "PNG"
    assert (ws / "data" / "quarantine" / "converted" / "original" / "cats" / "anim.gif").exists()
    with Catalog(ws / ".datacurate" / "catalog.sqlite") as cat:
        actions = sorted(e["action"] for e in cat.events())
    assert actions == ["convert", "rename", "rename", "rename"]
    from torchvision.datasets import ImageFolder

    assert len(ImageFolder(str(ws / "data" / "original"))) == 4


def test_exact_duplicates_and_label_conflicts(ws: Path):
    orig, scraped = ws / "data" / "original", ws / "data" / "scraped"
    a = jpg(30)
    write(orig / "cat" / "a.jpg", a)
    write(orig / "cat" / "a_copy.jpg", a)  # same class: duplicate, path order keeps a.jpg
    write(scraped / "cat" / "s.jpg", a)  # scraped copy of an original: duplicate
    write(scraped / "dog" / "s2.jpg", a)  # scraped copy under another class: label-conflict
    b = jpg(31)
    write(orig / "cat" / "b.jpg", b)
    write(orig / "dog" / "b.jpg", b)  # both originals: both set aside as label-conflict (issue 20)
    result = clean(Workspace.open(ws))
    got = {d.path: (d.reason, d.of) for d in result.decisions}
    assert got == {
        "data/original/cat/a_copy.jpg": ("duplicate", "data/original/cat/a.jpg"),
        "data/scraped/cat/s.jpg": ("duplicate", "data/original/cat/a.jpg"),
        "data/scraped/dog/s2.jpg": ("label-conflict", "data/original/cat/a.jpg"),
        "data/original/cat/b.jpg": ("label-conflict", "data/quarantine/label-conflict/original/dog/b.jpg"),
        "data/original/dog/b.jpg": ("label-conflict", "data/quarantine/label-conflict/original/cat/b.jpg"),
    }
    assert result.conflicts_reported == []
    assert not (orig / "dog" / "b.jpg").exists() and not (orig / "cat" / "b.jpg").exists()
    assert (ws / "data" / "quarantine" / "label-conflict" / "scraped" / "dog" / "s2.jpg").exists()


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_dry_run_moves_nothing_and_prints_the_plan(ws: Path):
    cls = ws / "data" / "original" / CLS
    write(cls / "good.jpg", jpg(40))
    write(cls / "dup.jpg", jpg(40))
    write(cls / "page.jpg", b"<html></html>")
    write(cls / "png.jpg", encode(photo(64, 64, 41), "PNG"))
    before = _tree(ws / "data")
    proc = run_cli("-C", str(ws), "clean", "--dry-run", check=True)
    assert _tree(ws / "data") == before
    assert "would set aside  data/original/可回收物_易拉罐/page.jpg  [not-an-image]" in proc.stdout
    assert "would set aside  data/original/可回收物_易拉罐/good.jpg  [duplicate]" in proc.stdout  # path order: dup.jpg first
    assert "would rename  data/original/可回收物_易拉罐/png.jpg -> data/original/可回收物_易拉罐/png.png" in proc.stdout
    real = run_cli("-C", str(ws), "clean", "--json", check=True)
    summary = json.loads(real.stdout)
    assert summary["set_aside"] == {"duplicate": 1, "not-an-image": 1} and summary["fixed"] == 1


def test_restore_round_trip_and_second_run_changes_nothing(ws: Path):
    cls = ws / "data" / "original" / "x"
    write(cls / "a.jpg", jpg(50))
    write(cls / "b.jpg", jpg(50))
    write(cls / "c.jpg", b"")
    write(cls / "d.jpg", jpg(51))
    before = _tree(ws / "data" / "original")
    w = Workspace.open(ws)
    first = clean(w)
    assert first.counts == {"duplicate": 1, "empty": 1}
    after_first = _tree(ws / "data")
    second = clean(w)
    assert second.decisions == [] and second.fixes == []
    assert _tree(ws / "data") == after_first
    only_empty = restore(w, ("empty",))
    assert [m[2] for m in only_empty.moves] == ["empty"]
    restore(w)
    assert _tree(ws / "data" / "original") == before
    assert not any(p.is_file() for p in (ws / "data" / "quarantine").rglob("*"))
    with Catalog(w.catalog_path) as cat:
        rows = cat.files("status='ok'")
        assert sorted(r["path"] for r in rows) == sorted(f"data/original/x/{n}.jpg" for n in "abcd")
        assert [e["action"] for e in cat.events()].count("restore") == 2


def test_unchanged_files_are_not_decoded_again(ws: Path):
    cls = ws / "data" / "original" / "x"
    for i in range(6):
        write(cls / f"{i}.jpg", jpg(60 + i))
    w = Workspace.open(ws)
    clean(w)
    with Catalog(w.catalog_path) as cat:
        checked = {r["path"]: r["checked"] for r in cat.files()}
    write(cls / "new.jpg", jpg(70))
    os.utime(cls / "0.jpg", ns=(1, 1))  # touched: decoded again
    clean(w)
    with Catalog(w.catalog_path) as cat:
        again = {r["path"]: r["checked"] for r in cat.files()}
    changed = sorted(p for p in again if again[p] != checked.get(p))
    assert changed == ["data/original/x/0.jpg", "data/original/x/new.jpg"]


def test_newer_catalog_is_refused(ws: Path):
    cat_path = ws / ".datacurate" / "catalog.sqlite"
    Catalog(cat_path).close()
    db = sqlite3.connect(cat_path)
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(UserError, match="newer datacurate"):
        Catalog(cat_path)
    proc = run_cli("-C", str(ws), "clean")
    assert proc.returncode == 2 and "newer datacurate" in proc.stderr and "Traceback" not in proc.stderr


def _clean_counts(ws: Path) -> dict:
    return clean(Workspace.open(ws), workers=1).counts


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_unreadable_file_is_a_reason_not_a_crash(ws: Path):
    if os.geteuid() == 0:  # pytest's tmp folders are private to root: use one nobody can reach
        ws = Path(tempfile.mkdtemp(prefix="dc-unreadable-"))
        os.chmod(ws, 0o755)
    cls = ws / "data" / "original" / "x"
    write(cls / "ok.jpg", jpg(80))
    write(cls / "secret.jpg", jpg(81)).chmod(0)
    if os.geteuid() != 0:
        assert _clean_counts(ws) == {"unreadable": 1}
        return
    # root reads anything: clean in a forked child that has dropped to nobody, over a tree nobody owns.
    # Warm every import first: nobody cannot read this Python's library folder.
    warm = ws / "warm"
    write(warm / "data" / "original" / "x" / "a.jpg", jpg(82))
    _clean_counts(warm)
    shutil.rmtree(warm)
    for p in [ws, *ws.rglob("*")]:
        os.chown(p, 65534, 65534)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.setgid(65534)
            os.setuid(65534)
            os.write(write_end, json.dumps(_clean_counts(ws)).encode())
        except BaseException as exc:
            os.write(write_end, json.dumps(repr(exc)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    got = json.loads(os.read(read_end, 65536) or b"null")
    shutil.rmtree(ws, ignore_errors=True)
    assert got == {"unreadable": 1}


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path):
    missing = tmp_path / "nope"
    proc = run_cli("-C", str(missing), "clean")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and " init`" in proc.stderr and str(missing) in proc.stderr
    (tmp_path / "data" / "original").mkdir(parents=True)
    for args, needle in ((["clean", "--min-size", "-3"], "min_size must be a whole number of at least 1, got -3"),
                         (["clean", "--threshold", "99"], "threshold must be a whole number from 0 to 32, got 99"),
                         (["clean", "--workers", "x"], "'x' is not a valid integer"),
                         (["clean", "data/test"], "no such file"),
                         (["restore", "--reason", "bogus"], "bogus")):
        proc = run_cli("-C", str(tmp_path), *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert needle in proc.stderr and proc.stderr.strip().count("\n") == 0, (args, proc.stderr)
    (tmp_path / "datacurate.yaml").write_text("clean:\n  min_size: [1\n")
    proc = run_cli("-C", str(tmp_path), "clean")
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr


def test_config_precedence_flag_over_yaml_over_default(ws: Path):
    cls = ws / "data" / "original" / "x"
    write(cls / "small.jpg", jpg(90, 50, 50))
    (ws / "datacurate.yaml").write_text("clean:\n  min_size: 60\n")
    assert clean(Workspace.open(ws), dry_run=True).counts == {"too-small": 1}
    assert clean(Workspace.open(ws), dry_run=True, min_size=40).counts == {}
    (ws / "datacurate.yaml").write_text("clean:\n  min_sise: 60\n")
    with pytest.raises(UserError, match="unknown option clean.min_sise"):
        clean(Workspace.open(ws), dry_run=True)


def test_demo_data_then_clean_shows_its_work(tmp_path: Path):
    demo = tmp_path / "demo"
    run_cli("demo-data", str(demo), "--per-class", "6", check=True)
    proc = run_cli("-C", str(demo), "clean", "--json", check=True)
    summary = json.loads(proc.stdout)
    for reason in ("truncated", "not-an-image", "empty", "too-small", "odd-aspect", "duplicate"):
        assert summary["set_aside"].get(reason), (reason, summary)
    assert summary["fixed"] >= 3 and summary["set_aside"]["label-conflict"] == 2  # circle_filed_as_triangle and its twin
    assert (demo / "reports" / "clean.html").exists()
    html = (demo / "reports" / "clean.html").read_text(encoding="utf-8")
    assert 'src="../data/' in html and "truncated" in html  # demo pictures are small: shown as they are


def test_init_makes_layout_and_commented_config(tmp_path: Path):
    proc = run_cli("-C", str(tmp_path / "w"), "init", check=True)
    assert (tmp_path / "w" / "datacurate.yaml").read_text().startswith("# datacurate workspace configuration")
    assert (tmp_path / "w" / "data" / "original").is_dir()
    assert run_cli("--version", check=True).stdout.startswith("datacurate, version")
    for cmd in ("clean", "restore", "init", "demo-data"):
        assert run_cli(cmd, "--help", check=True).stdout.startswith("Usage:")


def test_ctrl_c_loses_nothing_and_catalog_matches_disk(ws: Path):
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT, ctrl_c_as_in_a_terminal

    cls = ws / "data" / "original" / "x"
    names = set()
    for i in range(600):
        write(cls / f"e{i:04d}.jpg", b"")  # empty files: decode is instant, so most time goes to moves
        names.add(f"e{i:04d}.jpg")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "datacurate", "-C", str(ws), "clean", "--workers", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=ctrl_c_as_in_a_terminal)
    catalog = ws / ".datacurate" / "catalog.sqlite"
    deadline = time.time() + 60
    while time.time() < deadline and not any((ws / "data" / "quarantine").rglob("*.jpg")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    on_disk = {p.name: p for p in (ws / "data").rglob("*.jpg")}
    assert set(on_disk) == names  # every file is in its place or in quarantine
    with Catalog(catalog) as cat:
        for row in cat.files():
            assert (ws / row["path"]).exists(), row["path"]
            in_quarantine = row["path"].startswith("data/quarantine/")
            assert (row["status"] == "quarantined") == in_quarantine
    result = clean(Workspace.open(ws), workers=1)  # finishing the job later works
    assert not any(cls.iterdir()) and len(list((ws / "data" / "quarantine" / "empty").rglob("*.jpg"))) == 600
    assert result.counts == {"empty": result.scanned}
