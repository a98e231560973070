"""Files are created with the user's umask: a whole pipeline (scrape, clean, vet, split, stats, train,
evaluate), with its scraped images and runs outside the workspace, leaves no file of mode 0600."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_process as run_cli

FAST_TRAIN = {"arch": "resnet18", "weights": "none", "freeze_until": "none", "img_size": 32, "head_epochs": 0,
              "epochs": 1, "milestones": [], "gamma": [], "batch_size": 16, "workers": 0, "name": "demo"}


@pytest.mark.slow
def test_pipeline_elsewhere_writes_every_file_with_the_umask(tmp_path: Path):
    from datacurate.demo.data import CLASSES
    from datacurate.demo.run import search_results
    from datacurate.demo.engine import FakeEngine
    from datacurate.scrape.queries import plan_queries

    old = os.umask(0o022)
    try:
        ws, elsewhere = tmp_path / "ws", tmp_path / "big-disk"
        run_cli("demo-data", str(ws), "--per-class", "8", check=True)
        elsewhere.mkdir()
        paths = {"scraped": str(elsewhere / "scraped"), "runs": str(elsewhere / "runs")}
        (ws / "datacurate.yaml").write_text(yaml.safe_dump({"paths": paths}), encoding="utf-8")
        config = yaml.safe_load((ROOT / "pipelines" / "demo.yaml").read_text(encoding="utf-8"))
        config["stages"] = ["scrape", "clean", "vet", "split", "stats", "train", "evaluate"]
        config["vet"] = {"backbone": "resnet18", "weights": "none", "img_size": 64, "workers": 0}
        config["train"] = FAST_TRAIN
        queries = plan_queries(list(CLASSES), "{class} {suffix}", "picture", {})
        with FakeEngine(search_results(ws, queries)) as engine:
            config["scrape"].update(base_url=[f"bing={engine.base_url}"], max_per_class=4)
            pipe = tmp_path / "pipeline.yaml"
            pipe.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
            done = run_cli("-C", str(ws), "-q", "run", str(pipe), check=True)
        split = run_cli("-C", str(ws), "split", "--link", "copy", check=True)  # copies are new files too
    finally:
        os.umask(old)
    assert "ran scrape, clean, vet, split, stats, train, evaluate" in done.stdout
    with sqlite3.connect(ws / ".datacurate" / "catalog.sqlite") as con:  # scrape saved 4 a class into the folder elsewhere
        homes = [r[0] for r in con.execute("SELECT home FROM files WHERE source='scraped'")]
    assert len(homes) >= 12 and all(h.startswith(f"{elsewhere}/scraped/") for h in homes)
    assert (elsewhere / "runs" / "demo" / "best.pt").is_file() and (elsewhere / "runs" / "demo" / "eval").is_dir()
    assert "copy" in split.stdout
    files = [p for root in (ws, elsewhere) for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    kinds = {p.suffix for p in files}
    assert {".pt", ".csv", ".html", ".png", ".sqlite", ".json", ".jpg"} <= kinds, kinds
    private = [(str(p), oct(stat.S_IMODE(p.stat().st_mode))) for p in files if stat.S_IMODE(p.stat().st_mode) != 0o644]
    assert not private, private[:10]


def test_copies_and_the_catalog_follow_a_group_writable_umask(tmp_path: Path):
    from datacurate.core.catalog import Catalog
    from datacurate.core.fsutil import copy_file

    src = tmp_path / "a.jpg"
    src.write_bytes(b"x")
    src.chmod(0o600)
    old = os.umask(0o002)
    try:
        copy_file(src, tmp_path / "b.jpg")
        Catalog(tmp_path / ".datacurate" / "catalog.sqlite").close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "b.jpg").stat().st_mode) == 0o664
    assert stat.S_IMODE((tmp_path / ".datacurate" / "catalog.sqlite").stat().st_mode) == 0o664
