"""`paths:` entries that point outside the workspace (absolute) or through a symbolic link: every
command works, and quarantine moves stay on the source folder's file system."""

from __future__ import annotations

import os
import random
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from conftest import encode, photo, run_cli
from datacurate.demo.data import CLASSES, draw, jpeg
from datacurate.core.errors import UserError
from datacurate.core.workspace import Workspace
from datacurate.demo.run import size_chart

VET = {"backbone": "resnet18", "weights": "none", "img_size": 64, "workers": 0}


@pytest.fixture
def other_device(tmp_path: Path):
    """A folder on another file system than tmp_path when the machine has one (/dev/shm), else in tmp_path."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and os.stat(shm).st_dev != os.stat(tmp_path).st_dev:
        folder = Path(os.path.realpath(shm)) / f"datacurate-test-{os.getpid()}-{tmp_path.name}"
        folder.mkdir()
        yield folder
        shutil.rmtree(folder, ignore_errors=True)
    else:
        yield tmp_path / "other"


def _workspace(tmp_path: Path, how: str, other: Path) -> tuple[Path, Path]:
    """A demo workspace whose original and scraped folders live elsewhere; (workspace, elsewhere)."""
    ws = tmp_path / "ws"
    run_cli("demo-data", str(ws), "--per-class", "8", check=True)
    rng = random.Random(5)
    scraped = ws / "data" / "scraped"
    for klass in CLASSES:
        (scraped / klass).mkdir(parents=True, exist_ok=True)
        for n in range(4):
            (scraped / klass / f"s{n}.jpg").write_bytes(jpeg(draw(klass, rng)))
        (scraped / klass / "chart.jpg").write_bytes(jpeg(size_chart(rng)))
        first = sorted((ws / "data" / "original" / klass).glob("*_000.jpg"))[0]
        shutil.copyfile(first, scraped / klass / "copy.jpg")  # clean sets this exact copy aside
    elsewhere = other if how == "symlink" else tmp_path / "elsewhere"
    elsewhere.mkdir(parents=True, exist_ok=True)
    config: dict = {"vet": VET}
    for name in ("original", "scraped"):
        shutil.move(str(ws / "data" / name), str(elsewhere / name))
        if how == "symlink":
            (ws / "data" / name).symlink_to(elsewhere / name, target_is_directory=True)
    if how == "absolute":
        config["paths"] = {name: str(elsewhere / name) for name in ("original", "scraped")}
    (ws / "datacurate.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return ws, elsewhere


def _catalog(ws: Path) -> sqlite3.Connection:
    con = sqlite3.connect(ws / ".datacurate" / "catalog.sqlite")
    con.row_factory = sqlite3.Row
    return con


def _quarantined(ws: Path) -> list[Path]:
    with _catalog(ws) as con:
        rows = con.execute("SELECT path FROM files WHERE status='quarantined'").fetchall()
    return [ws / r["path"] for r in rows]  # an absolute key stays absolute


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else set()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["absolute", "symlink"])
def test_clean_restore_vet_split_with_folders_elsewhere(tmp_path: Path, how: str, other_device: Path):
    ws, elsewhere = _workspace(tmp_path, how, other_device)
    same_device = os.stat(elsewhere).st_dev == os.stat(ws).st_dev
    quarantine = ws / "data" / "quarantine" if same_device else elsewhere / ".datacurate-quarantine"
    before = {name: _files(elsewhere / name) for name in ("original", "scraped")}

    dry = run_cli("-C", str(ws), "clean", "--dry-run", check=True)
    assert "would set aside  " in dry.stdout and "dry run: nothing moved" in dry.stdout
    assert {name: _files(elsewhere / name) for name in before} == before

    first = run_cli("-C", str(ws), "clean", check=True)
    moved = _quarantined(ws)
    assert len(moved) >= 8 and all(p.is_file() for p in moved)
    for p in moved:  # set aside on the source's own file system, in the quarantine chosen for it
        assert os.stat(p).st_dev == os.stat(elsewhere).st_dev
        assert str(p).startswith(str(quarantine) + os.sep), p
    assert any("/duplicate/scraped/" in p.as_posix() for p in moved)
    if not same_device:
        assert f"quarantine: {quarantine}" in first.stdout
        with _catalog(ws) as con:
            assert [r[0] for r in con.execute("SELECT root FROM quarantines")] == [str(quarantine)]
    if how == "symlink":  # names under the link are the workspace's own
        with _catalog(ws) as con:
            assert con.execute("SELECT count(*) FROM files WHERE path LIKE 'data/original/%'").fetchone()[0] > 20

    restored = run_cli("-C", str(ws), "restore", check=True)
    assert f"restored {len(moved) + 2} files" in restored.stdout  # and 2 renames undone
    assert {name: _files(elsewhere / name) for name in before} == before
    assert not _files(quarantine)

    again = run_cli("-C", str(ws), "clean", check=True)
    assert len(_quarantined(ws)) == len(moved)
    timeless = lambda out: re.sub(r" in [0-9.]+s;", ";", out)  # noqa: E731
    assert timeless(again.stdout) == timeless(first.stdout)

    vetted = run_cli("-C", str(ws), "vet", check=True)
    assert "set aside" in vetted.stdout
    for p in _quarantined(ws):
        assert os.stat(p).st_dev == os.stat(elsewhere).st_dev

    split = run_cli("-C", str(ws), "split", "--valid", "0.25", check=True)
    assert "placed" in split.stdout
    train = ws / "data" / "split" / "train"
    assert sorted(p.name for p in train.iterdir()) == sorted(CLASSES)
    assert any(p.name.startswith("s") for p in (train / "circle").iterdir())  # scraped images train
    stats = run_cli("-C", str(ws), "stats", check=True)
    assert "over" in stats.stdout

    # the Python functions, on the same workspace
    from datacurate.clean.run import clean
    from datacurate.clean.restore import restore
    from datacurate.split import SplitOptions, split_dataset
    from datacurate.core.workspace import Workspace

    w = Workspace.open(ws)
    plan = clean(w, dry_run=True)
    assert plan.scanned > 30 and not plan.decisions  # everything bad is already set aside
    undo = restore(w, dry_run=True)
    assert len(undo.moves) >= len(moved) and all(Path(w.abs(src)).exists() for src, _, _ in undo.moves)
    res = split_dataset(w, SplitOptions(valid=0.25), dry_run=True)
    assert res.counts["train"] > 0 and res.counts["valid"] > 0


def test_quarantine_on_another_device_sits_beside_the_source(tmp_path: Path, monkeypatch):
    """Whatever disks the machine has: a source on another device gets .datacurate-quarantine beside it."""
    from datacurate.core import workspace as wsmod
    from datacurate.core.index import quarantine_path

    big = tmp_path / "big" / "scraped"
    (big / "cat").mkdir(parents=True)
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "datacurate.yaml").write_text(f"paths:\n  scraped: {big}\n", encoding="utf-8")
    real = wsmod.device
    monkeypatch.setattr(wsmod, "device", lambda p: 99 if str(p).startswith(str(tmp_path / "big")) else real(p))
    w = wsmod.Workspace.open(tmp_path / "ws")
    assert w.quarantine_for("scraped") == tmp_path / "big" / ".datacurate-quarantine"
    assert w.quarantine_for("original") == w.quarantine
    assert quarantine_path(w, w.rel(big / "cat" / "a.jpg"), "duplicate") == (
        tmp_path / "big" / ".datacurate-quarantine" / "duplicate" / "scraped" / "cat" / "a.jpg")
    assert w.rel(big / "cat" / "a.jpg") == (big / "cat" / "a.jpg").as_posix()


def _each_is_one_line(ws: Path, commands, message: str) -> None:
    """Each command in the workspace exits 2 with one stderr line holding `message` (no internal error)."""
    for args in commands:
        proc = run_cli("-C", str(ws), *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr
        assert "internal error" not in proc.stderr


@pytest.mark.parametrize("entry, message", [
    ("original: {tmp}/nowhere/original", "paths.original {tmp}/nowhere/original: no such folder"),
    ("scraped: {tmp}/unmounted/disk/scraped", "(is the disk mounted?)"),
    ("runs: {tmp}/a-file", "is a file, not a folder"),
    ("test: {tmp}/dangling", "is a symbolic link to"),
])
def test_a_paths_entry_that_does_not_exist_is_one_line(tmp_path: Path, entry: str, message: str):
    ws = tmp_path / "ws"
    (ws / "data" / "original" / "cat").mkdir(parents=True)
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    (ws / "datacurate.yaml").write_text("paths:\n  " + entry.format(tmp=tmp_path) + "\n", encoding="utf-8")
    _each_is_one_line(ws, (["clean"], ["split"], ["scrape", "--dry-run"]), message.format(tmp=tmp_path))


@pytest.mark.parametrize("entry, message", [
    ("test: data/original", "paths.original (data/original) and paths.test (data/original) are the same folder"),
    ("split: data/original", "paths.original (data/original) and paths.split (data/original) are the same folder"),
    ("quarantine: data/original", "paths.original (data/original) and paths.quarantine (data/original) are the same"),
    ("split: data/original/split", "paths.split (data/original/split) lies inside paths.original (data/original)"),
    ("original: data", "lies inside paths.original (data)"),
    ("reports: .", "lies inside paths.reports (.)"),
    ("runs: linked", "paths.split (data/split) and paths.runs (linked) are the same folder"),
])
def test_overlapping_paths_are_one_line(tmp_path: Path, entry: str, message: str):
    """Issue 21 item 4: two layout folders that are one, or nest (links followed), are refused before anything runs."""
    ws = tmp_path / "ws"
    (ws / "data" / "original" / "cat").mkdir(parents=True)
    (ws / "data" / "split").mkdir()
    (ws / "linked").symlink_to(ws / "data" / "split")
    (ws / "datacurate.yaml").write_text("paths:\n  " + entry + "\n", encoding="utf-8")
    before = sorted(p.relative_to(ws) for p in ws.rglob("*"))
    _each_is_one_line(ws, (["clean"], ["split"]), message)
    assert sorted(p.relative_to(ws) for p in ws.rglob("*")) == before
    with pytest.raises(UserError, match="paths"):
        Workspace.open(ws)


@pytest.mark.parametrize("name, make", [
    ("reports", "file"), ("data/split", "file"), ("data/quarantine", "dangling"), ("runs", "dangling"),
    (".datacurate", "file"), ("data/test", "dangling"),
])
def test_a_default_folder_that_is_a_file_or_a_dangling_link_is_one_line(tmp_path: Path, name: str, make: str):
    """Issue 21 item 8: the default layout gets the checks a `paths:` entry gets."""
    ws = tmp_path / "ws"
    (ws / "data" / "original" / "cat").mkdir(parents=True)
    (ws / "data" / "original" / "cat" / "a.png").write_bytes(encode(photo(seed=1), "PNG"))
    target = ws / name
    if make == "file":
        target.write_text("x")
    else:
        target.symlink_to(tmp_path / "gone")
    _each_is_one_line(ws, (["clean"], ["report"]), "is a file, not a folder" if make == "file" else "is a symbolic link to")


def test_a_nul_byte_in_paths_is_one_line(tmp_path: Path):
    """Issue 21 item 9."""
    ws = tmp_path / "ws"
    (ws / "data" / "original").mkdir(parents=True)
    (ws / "datacurate.yaml").write_text('paths:\n  runs: "ru\\0ns"\n', encoding="utf-8")
    proc = run_cli("-C", str(ws), "clean")
    assert proc.returncode == 2 and "paths.runs must be a folder name (it holds a NUL byte)" in proc.stderr, proc.stderr
    assert "embedded null byte" not in proc.stderr
