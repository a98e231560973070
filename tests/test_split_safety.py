"""split never loses a class unseen, survives odd names, and stops cleanly on a full disk (issue 11)."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from asuser import cli, cli_as_nobody, demo_workspace, give_to_nobody, shared_dir
from conftest import encode, photo


def _tree(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def _splits(ws: Path) -> dict[str, str]:
    db = sqlite3.connect(ws / ".datacurate" / "catalog.sqlite")
    try:
        return dict(db.execute("SELECT path, split FROM files WHERE split IS NOT NULL"))
    finally:
        db.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_unreadable_class_folder_is_an_error_not_a_missing_class():
    root = shared_dir("dc-unreadable-class-")
    try:
        ws = demo_workspace(root / "ws")
        dog = ws / "data" / "original" / "square"
        give_to_nobody(root)
        dog.chmod(0)
        code, out, err = cli_as_nobody("-C", str(ws), "split", warm=(("split",),))
        assert code == 2 and "data/original/square cannot be listed (permission denied)" in err, err
        assert err.strip().count("\n") == 0 and not (ws / "data" / "split").exists()
    finally:
        dog.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)


def test_names_that_are_not_utf8(tmp_path: Path):
    ws = demo_workspace(tmp_path / "ws")
    cls = os.fsencode(ws / "data" / "original" / "circle")
    with open(cls + b"/caf\xe9.jpg", "wb") as fh:
        fh.write(encode(photo(90, 70, 3), "JPEG"))
    code, out, err = cli("-q", "-C", str(ws), "split")
    assert code == 0, err
    assert "caf\\xe9.jpg,,,,,,has a name that is not UTF-8" in (ws / "data" / "split" / "split.csv").read_text(encoding="utf-8")
    os.mkdir(os.fsencode(ws / "data" / "original") + b"/\xff\xfe")
    with open(os.fsencode(ws / "data" / "original") + b"/\xff\xfe/x.jpg", "wb") as fh:
        fh.write(encode(photo(90, 70, 4), "JPEG"))
    code, out, err = cli("-q", "-C", str(ws), "split")
    assert code == 2 and "class folder \\xff\\xfe has a name that is not UTF-8" in err and "internal error" not in err, err


@pytest.mark.parametrize("where", ["link", "record"])
def test_disk_full_during_split_leaves_folders_and_catalog_as_they_were(tmp_path: Path, monkeypatch, where: str):
    from datacurate.split import splitter, tree

    ws = demo_workspace(tmp_path / "ws", per_class=6)
    assert cli("-q", "-C", str(ws), "split", "--valid", "0.25")[0] == 0
    split_dir = ws / "data" / "split"
    before, splits, csv = _tree(split_dir), _splits(ws), (split_dir / "split.csv").read_bytes()

    def full(*args, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(split_dir / "train" / "x.jpg"))

    if where == "link":  # the third file cannot be written
        calls = []
        real = tree.link_or_copy

        def link(src, dst):
            calls.append(dst)
            return full() if len(calls) == 3 else real(src, dst)

        monkeypatch.setattr(tree, "link_or_copy", link)
    else:  # the folders are swapped in, then the catalog cannot be written
        monkeypatch.setattr(splitter, "save", full)
    code, out, err = cli("-C", str(ws), "split", "--valid", "0.5", "--fresh")
    assert code == 2 and err.startswith("datacurate: error: disk full: no space left on the file system mounted at /"), err
    assert err.strip().count("\n") == 0
    assert _tree(split_dir) == before and _splits(ws) == splits and (split_dir / "split.csv").read_bytes() == csv
    assert not [p for p in split_dir.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_disk_full_on_a_real_small_file_system(tmp_path: Path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        ws = demo_workspace(tmp_path / "ws", per_class=12)
        (ws / "datacurate.yaml").write_text(f"paths:\n  split: {mnt / 'split'}\nsplit:\n  link: copy\n", encoding="utf-8")
        code, out, err = cli("-C", str(ws), "split")
        assert code == 2 and f"disk full: no space left on the file system mounted at {mnt}" in err, err
        assert not (mnt / "split" / "train").exists() and not _splits(ws)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
