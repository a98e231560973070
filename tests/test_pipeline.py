"""`datacurate run` and `datacurate demo`: stages in order, resume, --from/--to, failures, recipes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_cli
from datacurate.pipeline.runner import State, fingerprint, load_pipeline
from datacurate.core.workspace import Workspace

FAST_TRAIN = {"arch": "resnet18", "weights": "none", "freeze_until": "none", "img_size": 32, "head_epochs": 0,
              "epochs": 1, "milestones": [], "gamma": [], "batch_size": 16, "workers": 0, "name": "demo"}


def _pipeline(tmp: Path, base_url: str, **sections) -> Path:
    config = yaml.safe_load((ROOT / "pipelines" / "demo.yaml").read_text(encoding="utf-8"))
    config["scrape"].update(base_url=[f"bing={base_url}"], max_per_class=4)
    config["train"].update(FAST_TRAIN)
    config["train"].pop("groups", None)
    for key, value in sections.items():
        config[key] = value
    path = tmp / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def demo_ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    run_cli("demo-data", str(ws), "--per-class", "8", check=True)
    return ws


def _stages(stdout: str) -> list[str]:
    return [line[3:].split(":")[0].split(" ")[0] for line in stdout.splitlines()
            if line.startswith("== ") and "skipped" not in line]


def test_run_end_to_end_with_from_to_and_resume(demo_ws: Path, tmp_path: Path):
    from datacurate.demo.run import search_results
    from datacurate.demo.engine import FakeEngine
    from datacurate.scrape.queries import plan_queries
    from datacurate.demo.data import CLASSES

    queries = plan_queries(list(CLASSES), "{class} {suffix}", "picture", {})
    with FakeEngine(search_results(demo_ws, queries)) as engine:
        pipe = _pipeline(tmp_path, engine.base_url)
        first = run_cli("-C", str(demo_ws), "-q", "run", str(pipe), "--to", "split", check=True)
        assert _stages(first.stdout) == ["scrape", "clean", "vet", "split"]
        assert (demo_ws / "runs" / "trusted" / "best.pt").exists()  # vet trained its model on the originals
        assert any((demo_ws / "data" / "scraped").rglob("*.*")) and (demo_ws / "data" / "split" / "train").is_dir()
        second = run_cli("-C", str(demo_ws), "-q", "run", str(pipe), check=True)
        assert _stages(second.stdout) == ["train", "evaluate"]
        assert "scrape: up to date, skipped" in second.stdout
        assert (demo_ws / "runs" / "demo" / "best.pt").exists()
        assert (demo_ws / "runs" / "demo" / "eval").is_dir()
        third = run_cli("-C", str(demo_ws), "-q", "run", str(pipe), check=True)
        assert _stages(third.stdout) == []
        forced = run_cli("-C", str(demo_ws), "-q", "run", str(pipe), "--from", "evaluate", "--force", check=True)
        assert _stages(forced.stdout) == ["evaluate"]
        # a new original image changes what clean, vet and split read: they run again, scrape does not
        src = next((demo_ws / "data" / "original" / "circle").glob("circle_00*.jpg"))
        (src.parent / "extra.png").write_bytes(_png())
        again = run_cli("-C", str(demo_ws), "-q", "run", str(pipe), "--to", "split", check=True)
        assert _stages(again.stdout) == ["clean", "vet", "split"]


def _png() -> bytes:
    from conftest import encode, photo

    return encode(photo(80, 60, 99), "PNG")


def test_failing_stage_stops_the_run_with_its_message(demo_ws: Path, tmp_path: Path):
    from datacurate.demo.engine import FakeEngine

    with FakeEngine({}, page_faults={"bing": "empty"}) as engine:
        pipe = _pipeline(tmp_path, engine.base_url)
        proc = run_cli("-C", str(demo_ws), "-q", "run", str(pipe))
    assert proc.returncode != 0
    assert "pipeline stopped: stage scrape failed" in proc.stderr
    assert "== clean" not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_interrupted_stage_is_resumed(demo_ws: Path):
    ws = Workspace.open(demo_ws)
    state = State(ws)
    fp = fingerprint(ws, "train", {"stage": {}, "paths": None})
    state.start("train", fp)
    assert State(ws).interrupted("train", fp)
    State(ws).mark("train", fp)
    assert not State(ws).interrupted("train", fp) and State(ws).done("train", fp)


def test_bad_pipeline_files_are_one_line_errors(tmp_path: Path, demo_ws: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [scrape, cook]\n")
    for args, needle in (([str(tmp_path / "missing.yaml")], "does not exist"), ([str(bad)], "stages must be a list"),
                         ([str(ROOT / "pipelines" / "demo.yaml"), "--from", "train", "--to", "clean"], "comes after")):
        proc = run_cli("-C", str(demo_ws), "run", *args)
        assert proc.returncode == 2 and needle in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


@pytest.mark.parametrize("recipe", ["characters", "garbage", "cub200"])
def test_recipes_parse_and_plan(recipe: str, tmp_path: Path):
    """Each recipe's train options build a real plan on resnext101_32x8d (weights none: no download)."""
    from datacurate.train.run import train

    pipe = load_pipeline(ROOT / "pipelines" / f"{recipe}.yaml")
    ws_dir = tmp_path / "ws"
    for klass in ("a", "b"):
        for split in ("train", "valid"):
            folder = ws_dir / "data" / "split" / split / klass
            folder.mkdir(parents=True)
            from conftest import encode, photo

            (folder / "x.jpg").write_bytes(encode(photo(40, 40, 1), "JPEG"))
    ws = Workspace(ws_dir, {k: v for k, v in pipe.config.items() if k not in ("stages", "description")})
    res = train(ws, {"weights": "none"}, plan_only=True, quiet=True, echo=lambda s: None)
    text = "\n".join(res.plan)
    assert text.startswith("model: resnext101_32x8d") and pipe.config["train"]["stages"][-1]["freeze_until"] in text
    for group in pipe.config["train"]["groups"]:
        assert group["name"] in text
    queries = pipe.config["scrape"].get("queries")
    if queries:
        assert (ROOT / queries).exists()


def test_demo_end_to_end(tmp_path: Path):
    demo = tmp_path / "demo"
    proc = run_cli("-q", "demo", str(demo), "--per-class", "10", timeout=900, check=True)
    out = proc.stdout
    for stage in ("scrape", "clean", "vet", "split", "train", "evaluate", "predict"):
        assert f"== {stage}" in out, stage
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(lines) == 12 and all(set(rec) >= {"path", "result", "top"} for rec in lines)
    assert (demo / "reports" / "clean.html").exists() and (demo / "runs" / "demo" / "best.pt").exists()
    assert any((demo / "data" / "quarantine" / "label-conflict").rglob("*.jpg"))
    # vet sets aside the engine's off-topic pictures (ranks 7-9 of each query: a shapeless background, a size
    # chart, a banner) with a model trained on 10 originals per class; tests/test_vet.py checks precision
    import sqlite3

    db = sqlite3.connect(demo / ".datacurate" / "catalog.sqlite")
    vetted = db.execute("SELECT p.rank FROM events e JOIN provenance p ON p.path = e.src "
                        "WHERE e.action='quarantine' AND e.reason IN ('off-topic','wrong-class')").fetchall()
    db.close()
    assert any(rank in (7, 8, 9) for (rank,) in vetted) and (demo / "reports" / "vet.html").exists()
    assert (demo / "runs" / "trusted" / "best.pt").exists()
    assert not re.search(r"^epoch \d", out + proc.stderr, re.M)  # -q: not even the trusted run's epoch lines (vet --train-first)
    again = run_cli("-q", "demo", str(demo), "--json", timeout=600, check=True)  # resumes: nothing left to do
    for stage in ("scrape", "clean", "vet", "split", "train", "evaluate"):
        assert f"{stage}: up to date, skipped" in again.stderr, again.stderr
    summary = json.loads(again.stdout)  # stdout: the JSON summary alone
    assert summary["ran"] == [] and "vet" in summary["up_to_date"] and summary["run_report"].endswith("report.html")
