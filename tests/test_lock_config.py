"""The workspace lock; bad datacurate.yaml and pipeline files; read-only and unreadable workspaces (issue 11)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from asuser import cli, cli_as_nobody, demo_workspace, give_to_nobody, shared_dir
from conftest import ROOT, encode, photo, run_process as run_cli, write
from datacurate.core.errors import UserError
from datacurate.core.lock import WorkspaceBusy, holder, workspace_lock
from datacurate.core.workspace import Workspace


demo = demo_workspace


def one_line(err: str) -> bool:
    return err.strip().count("\n") == 0 and "Traceback" not in err and "internal error" not in err


# -- the lock -------------------------------------------------------------------------------------
def test_second_writer_is_refused_naming_the_holder(tmp_path: Path):
    ws = demo(tmp_path / "ws")
    with workspace_lock(Workspace.open(ws), "clean"):
        assert holder(ws)["pid"] == os.getpid() and holder(ws)["command"] == "clean"
        t0 = time.monotonic()
        proc = run_cli("-C", str(ws), "--wait", "0.5", "split")
        assert proc.returncode == 2 and one_line(proc.stderr), proc.stderr
        assert f"pid {os.getpid()}" in proc.stderr and "`datacurate clean`" in proc.stderr and "--wait" in proc.stderr
        assert time.monotonic() - t0 >= 0.5
        assert not (ws / "data" / "split").exists()
        for args in (["report", "balance"], ["augment-preview"]):  # they rewrite reports/: they wait for the lock too
            proc = run_cli("-C", str(ws), "--wait", "0", *args)
            assert proc.returncode == 2 and "`datacurate clean`" in proc.stderr and one_line(proc.stderr), (args, proc.stderr)
        # evaluate writes only inside its run's folder, atomically: it does not need the lock
        code, out, err = cli("-C", str(ws), "evaluate", "nope")
        assert code == 2 and "no run 'nope'" in err
    assert holder(ws) is None
    run_cli("-C", str(ws), "-q", "split", check=True)


def test_lock_is_reentrant_and_waits(tmp_path: Path):
    """`run` holds the lock while its stages take it again; a second process waits for the first."""
    from datacurate.split.options import SplitOptions
    from datacurate.split.splitter import split_dataset

    ws = Workspace.open(demo(tmp_path / "ws"))
    with workspace_lock(ws, "run"), workspace_lock(ws, "split"):
        split_dataset(ws, SplitOptions())  # takes it a third time
    script = f"import time; from datacurate.core.lock import workspace_lock\nwith workspace_lock({str(ws.root)!r}, 'clean'): time.sleep(1.5)"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    holder_proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 30
        while not holder(ws) and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(WorkspaceBusy, match="busy"):
            with workspace_lock(ws, "split", wait=0):
                pass
        t0 = time.monotonic()
        with workspace_lock(ws, "split", wait=30):  # waits for the holder to let go
            assert holder(ws)["pid"] == os.getpid() and holder(ws)["command"] == "split"
        assert time.monotonic() - t0 > 0.2
    finally:
        assert holder_proc.wait(timeout=60) == 0


def test_clean_and_split_racing_never_train_on_broken_files(tmp_path: Path):
    ws = demo(tmp_path / "ws", per_class=6)
    broken = {"empty.jpg", "error_page.jpg", "broken_truncated.jpg", "leaked_test_image.jpg"}
    assert all(any(ws.rglob(name)) for name in broken)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = [sys.executable, "-m", "datacurate", "-q", "--wait", "120", "-C", str(ws)]
    procs = [subprocess.Popen(args + ["clean"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
             subprocess.Popen(args + ["split"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    train = {p.name for p in (ws / "data" / "split" / "train").rglob("*") if p.is_file()}
    assert train and not (train & (broken - {"leaked_test_image.jpg"}))
    # files added after clean: split decodes them itself, says so, and leaves the broken ones out
    cls = ws / "data" / "original" / "circle"
    write(cls / "late_empty.jpg", b"")
    write(cls / "late_page.jpg", b"<!doctype html><html><body>not found</body></html>")
    write(cls / "late_cut.jpg", encode(photo(200, 150, 5), "JPEG")[:900])
    write(cls / "late_good.jpg", encode(photo(120, 90, 6), "JPEG"))
    proc = run_cli("-C", str(ws), "-q", "split", check=True)
    assert "never checked by `datacurate clean`" in proc.stderr and "left out 3 that cannot be loaded" in proc.stderr
    placed = {p.name for p in (ws / "data" / "split").rglob("late_*")}
    assert placed == {"late_good.jpg"}


# -- datacurate.yaml and pipeline files -----------------------------------------------------------
BAD_CONFIGS = [
    ({"split": {"valid": "abc"}}, "split: valid must be a fraction"),
    ({"clena": {"threshold": 3}}, "unknown section 'clena'"),
    ({"paths": {"orignal": "x"}}, "unknown path paths.orignal"),
    ({"paths": {"original": 3}}, "paths.original must be a folder"),
    ({"clean": {"min_size": -1}}, "clean: min_size must be a whole number of at least 1, got -1"),
    ({"clean": {"thresold": 4}}, "unknown option clean.thresold"),
    ({"scrape": {"max_per_class": "lots"}}, "scrape: max_per_class must be a whole number from 0 to 1000000, got 'lots'"),
    ({"scrape": {"engine": "google"}}, "engine google: Google image search needs JavaScript"),
    ({"train": {"epochs": "many"}}, "train: epochs must be a whole number"),
    ({"train": {"groups": [{"modules": ["x"], "optimizer": "rmsprop"}]}}, "rmsprop"),
    ({"train": {"name": "../x"}}, "plain folder name"),
    ({"train": {"augment": {"preset": "garbage", "vflip": 2}}}, "train.augment.vflip must be between 0 and 1"),
    ({"train": {"augment": "sharp"}}, "train.augment: unknown preset 'sharp'"),
    ({"evaluate": {"batch_size": 0}}, "evaluate: batch_size must be a whole number of at least 1"),
    ({"stats": {"size": 3}}, "unknown option stats.size"),
    ({"split": ["valid"]}, "`split:` must be a mapping"),
]


@pytest.mark.parametrize("config,needle", BAD_CONFIGS, ids=[next(iter(c)) + "-" + n.split()[0] for c, n in BAD_CONFIGS])
def test_every_section_is_checked_whatever_the_command(tmp_path: Path, config: dict, needle: str):
    ws = demo(tmp_path / "ws")
    (ws / "datacurate.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    # a flag that overrides the bad value, or a command of another stage, does not hide it
    for args in (["split", "--valid", "0.3"], ["clean", "--dry-run"], ["report", "balance"]):
        code, _, err = cli("-C", str(ws), *args)
        assert code == 2 and needle in err and one_line(err), (args, err)
    with pytest.raises(UserError, match="datacurate.yaml"):
        Workspace.open(ws)


def test_train_augment_is_checked_without_torch(tmp_path: Path):
    """A bad train.augment fails at Workspace.open, in a process that never imports torch."""
    (tmp_path / "datacurate.yaml").write_text("train:\n  augment: {preset: none, hue: 0.9}\n", encoding="utf-8")
    code = ("import sys\nfrom datacurate.core.errors import UserError\nfrom datacurate.core.workspace import Workspace\n"
            "try:\n    Workspace.open(sys.argv[1])\nexcept UserError as exc:\n    print(exc)\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.splitlines() == [f"{tmp_path / 'datacurate.yaml'}: train.augment.hue must be between 0 and 0.5, got 0.9",
                                       "False"], out.stdout + out.stderr


def test_unusual_config_files_are_one_line_errors(tmp_path: Path):
    ws = demo(tmp_path / "ws")
    cfg = ws / "datacurate.yaml"
    cfg.write_bytes("split:\n  valid: 0.3  # caf\xe9\n".encode("latin-1"))
    code, _, err = cli("-C", str(ws), "clean")
    assert code == 2 and "not UTF-8" in err and "line 2" in err and one_line(err)
    cfg.unlink()
    cfg.mkdir()
    code, _, err = cli("-C", str(ws), "split")
    assert code == 2 and "is a folder" in err
    cfg.rmdir()
    for args, needle in ((["demo", "/etc/passwd"], "is a file"), (["-C", "/etc/passwd", "clean"], "is a file, not a folder")):
        code, _, err = cli(*args)
        assert code == 2 and needle in err and one_line(err), err


def test_pipeline_checks_every_section_before_the_first_stage(tmp_path: Path):
    ws = demo(tmp_path / "ws")
    base = {"stages": ["scrape", "clean", "split"], "scrape": {"engine": "bing", "base_url": {"bing": "http://127.0.0.1:9"},
                                                               "allow_private": True, "max_per_class": 2}}
    for extra, needle in (({"clean": {"treshold": 3}}, "unknown option clean.treshold"),
                          ({"clena": {}}, "unknown section 'clena'"),
                          ({"paths": {"splits": "x"}}, "unknown path paths.splits"),
                          ({"split": {"valid": 0.7, "test": 0.4}}, "must stay below 1"),
                          ({"stages": ["clean", "clean"]}, "twice")):
        pipe = tmp_path / "p.yaml"
        pipe.write_text(yaml.safe_dump({**base, **extra}), encoding="utf-8")
        code, out, err = cli("-C", str(ws), "run", str(pipe))
        assert code == 2 and needle in err and "== scrape" not in out and one_line(err), (extra, out, err)
    # the pipeline's sections laid over datacurate.yaml are checked together
    (ws / "datacurate.yaml").write_text("split:\n  test: 0.5\n", encoding="utf-8")
    pipe.write_text(yaml.safe_dump({**base, "split": {"valid": 0.6}}), encoding="utf-8")
    code, out, err = cli("-C", str(ws), "run", str(pipe))
    assert code == 2 and "must stay below 1" in err and "laid over datacurate.yaml" in err and "== scrape" not in out


# -- read-only and unreadable ---------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_read_only_workspace_and_unreadable_files_are_one_line_errors():
    root = shared_dir("dc-ro-")
    try:
        ws = demo(root / "ws")
        give_to_nobody(root)
        assert cli_as_nobody("-C", str(ws), "-q", "clean", warm=(("clean",),))[0] == 0
        # the workspace becomes read-only: writers say what they cannot write
        os.chown(ws, 0, 0)
        os.chown(ws / ".datacurate", 0, 0)
        (ws / ".datacurate" / "lock").unlink()
        code, _, err = cli_as_nobody("-C", str(ws), "split", warm=(("split",),))
        assert code == 2 and "cannot write in the workspace" in err and ".datacurate" in err and one_line(err), err
        os.chown(ws / ".datacurate", 65534, 65534)
        os.chown(ws / ".datacurate" / "catalog.sqlite", 0, 0)
        code, _, err = cli_as_nobody("-C", str(ws), "clean", warm=(("clean",),))
        assert code == 2 and "cannot write the catalog" in err and one_line(err), err
        os.chmod(ws / ".datacurate" / "catalog.sqlite", 0o600)
        code, _, err = cli_as_nobody("-C", str(ws), "report", "balance", warm=(("split",), ("report", "balance")))
        assert code == 2 and "cannot read the catalog" in err and one_line(err), err
        os.chown(ws / ".datacurate" / "catalog.sqlite", 65534, 65534)
        cfg = ws / "datacurate.yaml"
        os.chmod(cfg, 0o600)
        os.chown(cfg, 0, 0)
        code, _, err = cli_as_nobody("-C", str(ws), "clean", warm=(("clean",),))
        assert code == 2 and f"cannot read {cfg}" in err and "permission denied" in err and one_line(err), err
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_huge_config_is_refused_and_a_huge_bad_value_is_cut(tmp_path: Path, monkeypatch):
    """Issue 21 item 11: libyaml's loader where PyYAML has it, a size limit, errors cut to one short line."""
    from datacurate.core import workspace as wsmod

    assert wsmod.SAFE_LOADER is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    (tmp_path / "data" / "original").mkdir(parents=True)
    config = tmp_path / "datacurate.yaml"
    config.write_text("clean:\n  threshold: '" + "x" * (2 << 20) + "'\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"is 2\.0 MB; a datacurate.yaml over 1 MB is refused"):
        Workspace.open(tmp_path)
    config.write_text("clean:\n  threshold: '" + "x" * 900_000 + "'\n", encoding="utf-8")
    with pytest.raises(UserError) as err:
        Workspace.open(tmp_path)
    assert "clean: threshold must be" in str(err.value)
    proc = run_cli("-C", str(tmp_path), "split", "--dry-run")
    assert proc.returncode == 2 and len(proc.stderr) < 400 and proc.stderr.count("\n") == 1, proc.stderr[:500]
    assert "(900002 characters)" in proc.stderr
