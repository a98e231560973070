"""kill -9 of `datacurate run`: the re-run finishes its own run and only that (issue 11, point 12)."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from asuser import demo_workspace
from conftest import ROOT

TINY = {"arch": "resnet18", "weights": "none", "freeze_until": "none", "img_size": 32, "head_epochs": 0, "epochs": 2,
        "milestones": [], "gamma": [], "batch_size": 8, "workers": 0, "device": "cpu", "name": "mine"}


def _start(ws: Path, pipe: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    return subprocess.Popen([sys.executable, "-m", "datacurate", "-q", "-C", str(ws), "run", str(pipe)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_when(proc: subprocess.Popen, ready, deadline: float = 300) -> None:
    end = time.monotonic() + deadline
    while not ready():
        assert proc.poll() is None, f"the run ended before the kill: {proc.communicate()}"
        assert time.monotonic() < end, "the moment to kill never came"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()


def _finish(ws: Path, pipe: Path) -> str:
    proc = _start(ws, pipe)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"re-run failed:\n{out}\n{err}"
    return out


def _epochs(run: Path) -> int:
    try:
        with open(run / "history.csv", encoding="utf-8") as fh:
            return len(list(csv.DictReader(fh)))
    except (FileNotFoundError, csv.Error):
        return 0


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_kill_9_of_run_then_rerun_finishes_its_own_run(tmp_path: Path):
    from datacurate.train.run import train
    from datacurate.core.workspace import Workspace

    ws = demo_workspace(tmp_path / "ws", per_class=6)
    pipe = tmp_path / "pipe.yaml"
    pipe.write_text(yaml.safe_dump({"stages": ["clean", "split", "train", "evaluate"], "split": {"valid": 0.25},
                                    "train": TINY, "evaluate": {}}), encoding="utf-8")
    runs = ws / "runs"
    mine = runs / "mine"

    # another unfinished run in runs/: one epoch checkpointed, then interrupted
    assert subprocess.run([sys.executable, "-m", "datacurate", "-q", "-C", str(ws), "split"], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True).returncode == 0

    def stop(step: int) -> None:
        if (runs / "other" / "last.pt").exists():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(Workspace.open(ws), {**TINY, "name": "other", "batch_size": 4}, quiet=True, on_step=stop)
    other = _snapshot(runs / "other")
    assert "last.pt" in other and "metrics.json" not in other

    # 1. killed at a random moment before the run's first checkpoint (during clean, split or train's start)
    proc = _start(ws, pipe)
    t0 = time.monotonic()
    delay = random.Random(11).uniform(0.5, 4.0)
    _kill_when(proc, lambda: (mine / "config.yaml").exists() or time.monotonic() - t0 > delay)
    assert not (mine / "last.pt").exists()

    # 2. the re-run starts the run afresh (not "no run with a last.pt", not the other run); killed after its final checkpoint
    proc = _start(ws, pipe)
    _kill_when(proc, lambda: _epochs(mine) == 2)
    last = (mine / "last.pt").read_bytes()

    # 3. the re-run completes what is left (outputs, evaluate) without training again
    out = _finish(ws, pipe)
    assert "== train (resuming)" in out and "== evaluate" in out, out
    assert (mine / "last.pt").read_bytes() == last
    assert (mine / "metrics.json").is_file() and (mine / "history.png").is_file() and (mine / "eval" / "valid" / "metrics.json").is_file()
    assert json.loads((mine / "metrics.json").read_text(encoding="utf-8"))["epochs"] == 2
    assert _snapshot(runs / "other") == other
    assert sorted(p.name for p in runs.iterdir()) == ["mine", "other"]

    # 4. killed between the final outputs and the stage's record: the state a kill leaves, made by hand
    state_path = ws / ".datacurate" / "pipeline.json"
    state = json.loads(state_path.read_text(encoding="utf-8"))
    state["train"] = {"started": state["train"]["fingerprint"]}
    del state["evaluate"]
    state_path.write_text(json.dumps(state), encoding="utf-8")
    for name in ("metrics.json", "history.png"):
        (mine / name).unlink()
    shutil.rmtree(mine / "eval")
    out = _finish(ws, pipe)
    assert "== train (resuming)" in out and "== evaluate" in out
    assert (mine / "last.pt").read_bytes() == last and (mine / "metrics.json").is_file() and (mine / "eval").is_dir()
    # 5. and once the outputs are all there, a re-run finds nothing left to do
    state = json.loads(state_path.read_text(encoding="utf-8"))
    state["train"] = {"started": state["train"]["fingerprint"]}
    state_path.write_text(json.dumps(state), encoding="utf-8")
    out = _finish(ws, pipe)
    assert "nothing left to train" in out and (mine / "last.pt").read_bytes() == last
    assert _finish(ws, pipe).count("up to date, skipped") == 4
    assert _snapshot(runs / "other") == other
