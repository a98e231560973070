"""docs/api.md runs: its python blocks in order, in a fresh folder, as a notebook would (issue 15 point 7)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from asuser import cli
from test_train_run import _threads  # noqa: F401 (autouse: one torch thread)

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.S | re.M)


@pytest.mark.slow
def test_the_api_walkthrough_runs(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATACURATE_OFFLINE", "1")
    code = blocks()
    assert len(code) >= 5
    scope: dict = {}
    for n, block in enumerate(code):
        exec(compile(block, f"{DOC.name} block {n + 1}", "exec"), scope)  # noqa: S102 - the page is ours
    out = capsys.readouterr().out
    assert "unknown option clean.threshhold (did you mean threshold?)" in out
    assert "split: valid must be a fraction in [0, 1), got 1.5" in out
    ws = tmp_path / "shop"
    assert (ws / "runs" / "first" / "best.pt").is_file() and (ws / "runs" / "trusted" / "best.pt").is_file()
    assert len(scope["run"].to_frame()) == 1  # one epoch
    frame = scope["guesses"].to_frame()
    assert len(frame) == len(list((ws / "data" / "test").rglob("*.*"))) and frame["result"].notna().all()
    assert set(scope["scores"].to_frame()["class"]) == set(scope["CLASSES"])
    # the summaries are the commands' own text, and --json parses
    code_, stdout, _ = cli("-C", str(ws), "-q", "evaluate", "first")
    assert code_ == 0 and stdout.strip().splitlines()[0].split(":")[0] == scope["scores"].summary().splitlines()[0].split(":")[0]
    code_, stdout, _ = cli("-C", str(ws), "-q", "evaluate", "first", "--json")
    assert code_ == 0 and json.loads(stdout)["images"] == scope["scores"].images
    code_, stdout, _ = cli("-C", str(ws), "-q", "train", "--plan", "--json")
    assert code_ == 0 and json.loads(stdout)["plan"]
