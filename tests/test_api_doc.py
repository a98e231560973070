"""docs/api.md runs: its python blocks in order, in a fresh interpreter and folder, as a notebook would (issue 15 point 7).

A fresh process, not this one: the walkthrough's loopback engine leaves threads behind, and with other
threads alive imageio cannot capture libtiff's damage warnings (later tests in this process rely on them).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from asuser import cli
from conftest import ROOT

DOC = ROOT / "docs" / "api.md"
# Run after the page's blocks, in the same interpreter: what the walkthrough left behind.
CHECKS = """
import json
ws = root.resolve()
frame = guesses.to_frame()
print("CHECKS " + json.dumps({
    "runs": sorted(p.parent.name for p in (ws / "runs").glob("*/best.pt")),
    "epochs": len(run.to_frame()),
    "predicted": len(frame), "all_predicted": bool(frame["result"].notna().all()),
    "test_images": len([p for p in (ws / "data" / "test").rglob("*") if p.is_file()]),
    "classes": sorted(scores.to_frame()["class"]), "demo_classes": sorted(CLASSES),
    "images": scores.images, "summary": scores.summary().splitlines()[0],
}, ensure_ascii=False))
"""


def blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.S | re.M)


@pytest.mark.slow
def test_the_api_walkthrough_runs(tmp_path: Path):
    code = blocks()
    assert len(code) >= 5
    script = tmp_path / "walkthrough.py"
    script.write_text("\n\n".join(code) + CHECKS, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8", DATACURATE_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "unknown option clean.threshhold (did you mean threshold?)" in out
    assert "split: valid must be a fraction in [0, 1), got 1.5" in out
    got = json.loads(out.split("CHECKS ", 1)[1])
    assert got["runs"] == ["first", "trusted"] and got["epochs"] == 1
    assert got["predicted"] == got["test_images"] > 0 and got["all_predicted"]
    assert got["classes"] == got["demo_classes"]
    # the summary is the command's own text, and --json parses
    ws = tmp_path / "shop"
    code_, stdout, _ = cli("-C", str(ws), "-q", "evaluate", "first")
    assert code_ == 0 and stdout.splitlines()[0].split(" on ")[0] == got["summary"].split(" on ")[0]
    code_, stdout, _ = cli("-C", str(ws), "-q", "evaluate", "first", "--json")
    assert code_ == 0 and json.loads(stdout)["images"] == got["images"]
    code_, stdout, _ = cli("-C", str(ws), "-q", "train", "--plan", "--json")
    assert code_ == 0 and json.loads(stdout)["plan"]
