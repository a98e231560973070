"""Every command twice in a row, and after its --dry-run: the second run succeeds and changes nothing (issue 11)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from asuser import cli, demo_workspace
from test_train_run import _threads  # noqa: F401 (autouse: one torch thread)

TINY = ["--arch", "resnet18", "--weights", "none", "--freeze-until", "none", "--img-size", "32", "--head-epochs", "0",
        "--epochs", "1", "--batch-size", "8", "--workers", "0", "--device", "cpu"]


def ok(*args: str) -> str:
    code, out, err = cli("-q", *args)
    assert code == 0, (args, out, err)
    assert "internal error" not in err and "Traceback" not in err, (args, err)
    return out


def tree(ws: Path, *parts: str) -> dict[str, int]:
    base = ws.joinpath(*parts)
    return {p.relative_to(ws).as_posix(): p.stat().st_size for p in base.rglob("*") if p.is_file()} if base.exists() else {}


@pytest.mark.slow
def test_every_command_twice_and_after_dry_run(tmp_path: Path):
    ws = demo_workspace(tmp_path / "ws", per_class=6)
    w = ("-C", str(ws))
    assert "already set up" in ok(*w, "init") and "already set up" in ok(*w, "init")

    data = tree(ws, "data")
    out = ok(*w, "clean", "--dry-run")
    assert "dry run: nothing moved" in out and tree(ws, "data") == data
    first = ok(*w, "clean")
    assert "set aside 0" not in first
    after = tree(ws, "data")
    assert "set aside 0" in ok(*w, "clean") and tree(ws, "data") == after
    assert "would set aside 0" in ok(*w, "clean", "--dry-run")

    assert "dry run: nothing written" in ok(*w, "split", "--dry-run") and not (ws / "data" / "split").exists()
    ok(*w, "split")
    placed = tree(ws, "data", "split")
    ok(*w, "split")
    assert tree(ws, "data", "split") == placed

    for _ in range(2):
        assert "over" in ok(*w, "stats")
        assert "report: reports/balance.html" in ok(*w, "report", "balance")

    ok(*w, "train", *TINY, "--name", "t1")
    code, _, err = cli(*w, "train", *TINY, "--name", "t1")  # the name is taken: a clear refusal
    assert code == 2 and "exists" in err
    for _ in range(2):
        assert "accuracy" in ok(*w, "evaluate", "t1")
        lines = [json.loads(x) for x in ok(*w, "predict", "t1", str(ws / "data" / "test")).splitlines()]
        assert lines and all("top" in rec for rec in lines)

    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump({"stages": ["clean", "split", "train", "evaluate"], "evaluate": {},
                                    "train": {"arch": "resnet18", "weights": "none", "freeze_until": "none", "img_size": 32,
                                              "head_epochs": 0, "epochs": 1, "milestones": [], "gamma": [], "batch_size": 8,
                                              "workers": 0, "device": "cpu", "name": "piped"}}), encoding="utf-8")
    assert "ran" in ok(*w, "run", str(pipe))
    assert ok(*w, "run", str(pipe)).count("up to date, skipped") == 4

    quarantined = tree(ws, "data", "quarantine")
    out = ok(*w, "restore", "--dry-run")
    moves = int(re.search(r"would restore (\d+) files", out).group(1))  # quarantined files and undone renames
    assert moves >= len(quarantined) and tree(ws, "data", "quarantine") == quarantined
    assert f"restored {moves} files" in ok(*w, "restore")
    assert "restored 0 files" in ok(*w, "restore")
    assert tree(ws, "data", "quarantine") == {}
    assert "set aside 0" not in ok(*w, "clean")  # after restore, clean sets the same files aside again
    assert set(tree(ws, "data", "quarantine")) == set(quarantined)
