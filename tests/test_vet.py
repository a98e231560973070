"""`datacurate vet`: off-topic and wrong-class flags on generated classes where the answer is known,
the embeddings cache, moves, restore, dry-run, the run-model and weights-file paths, bad input."""

from __future__ import annotations

import csv
import json
import random
import shutil
import sqlite3
from pathlib import Path

import colorsys

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw

from conftest import run_cli
from datacurate.demo.data import jpeg

HUES = {"red": 0.0, "green": 0.33, "blue": 0.66}
CLASSES = tuple(HUES)
# The backbone: resnet18 with seeded random weights (no download). Random convolutions keep colour apart,
# so classes of distinct colour are told apart and a black-on-white chart lies far from all of them.
VET_CONFIG = {"backbone": "resnet18", "weights": "none", "img_size": 64, "workers": 0}
# A tiny run for the run-model path: one epoch of a small CNN on the originals.
RECIPE = {"arch": "resnet18", "weights": "none", "freeze_until": "none", "img_size": 32, "head_epochs": 0, "epochs": 1,
          "milestones": [], "gamma": [], "batch_size": 16, "workers": 0}
VET = ["vet"]
N_ORIGINAL, N_GOOD = 16, 6


def picture(hue: float, rng: random.Random, size=(64, 48)) -> Image.Image:
    """Noise around one saturated colour near `hue`."""
    g = np.random.default_rng(rng.randrange(1 << 30))
    h = (hue + g.uniform(-0.04, 0.04)) % 1
    base = np.array(colorsys.hsv_to_rgb(h, g.uniform(0.7, 1), g.uniform(0.6, 1))) * 255
    return Image.fromarray(np.clip(base + g.normal(0, 25, (size[1], size[0], 3)), 0, 255).astype(np.uint8))


def chart(rng: random.Random, size=(64, 48)) -> Image.Image:
    """Off-topic: black lines on white, like a size chart."""
    im = Image.new("RGB", size, (250, 250, 250))
    d = ImageDraw.Draw(im)
    for y in range(4, size[1], 8):
        d.line((0, y, size[0], y), fill=(0, 0, 0))
    for x in range(4, size[0], rng.randint(10, 20)):
        d.line((x, 0, x, size[1]), fill=(0, 0, 0))
    return im


def _make(root: Path) -> dict[str, set[str]]:
    """16 originals and 6 good scraped pictures per class; a chart and a picture of the next class among the scraped."""
    rng = random.Random(3)
    planted: dict[str, set[str]] = {"off-topic": set(), "wrong-class": set(), "good": set()}
    for i, klass in enumerate(CLASSES):
        for n in range(N_ORIGINAL):
            _put(root / "data" / "original" / klass / f"o{n:02d}.jpg", jpeg(picture(HUES[klass], rng)))
        for n in range(N_GOOD):
            planted["good"].add(_put(root / "data" / "scraped" / klass / f"s{n}.jpg", jpeg(picture(HUES[klass], rng)), root))
        planted["off-topic"].add(_put(root / "data" / "scraped" / klass / "chart.jpg", jpeg(chart(rng)), root))
        other = CLASSES[(i + 1) % len(CLASSES)]
        planted["wrong-class"].add(_put(root / "data" / "scraped" / klass / f"a_{other}.jpg", jpeg(picture(HUES[other], rng)), root))
    (root / "datacurate.yaml").write_text(yaml.safe_dump({"vet": VET_CONFIG, "train": RECIPE}), encoding="utf-8")
    return planted


def _put(path: Path, data: bytes, root: Path | None = None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.relative_to(root).as_posix() if root else ""


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, dict[str, set[str]], dict]:
    """A cleaned workspace whose embeddings are cached (by a dry run), and a local weights file."""
    import torch

    from datacurate.vision.models import create_model

    root = tmp_path_factory.mktemp("vet") / "ws"
    planted = _make(root)
    torch.manual_seed(0)  # the same weights `--weights none --seed 0` makes
    torch.save(create_model("resnet18", 1, "none").state_dict(), root / "resnet18.pt")
    run_cli("-C", str(root), "-q", "clean", "--keep-flags", check=True)  # the picture quality flags are not what is tested
    proc = run_cli("-C", str(root), "-q", *VET, "--dry-run", "--json", check=True)
    return root, planted, json.loads(proc.stdout)


@pytest.fixture
def ws(prepared, tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(prepared[0], root, symlinks=True)
    return root


def _flags(summary: dict, reason: str) -> dict[str, dict]:
    return {f["path"]: f for f in summary["flags"] if f["reason"] == reason and f["source"] == "scraped"}


def _files(ws: Path) -> list[Path]:
    return sorted(p.relative_to(ws) for p in (ws / "data").rglob("*") if p.is_file())


def test_flags_match_the_planted_answer(prepared):
    root, planted, summary = prepared
    assert summary["dry_run"] and summary["embedded"] == 3 * (N_ORIGINAL + N_GOOD + 2) and summary["cached"] == 0
    off, wrong = _flags(summary, "off-topic"), _flags(summary, "wrong-class")
    assert set(off) == planted["off-topic"]
    assert set(wrong) == planted["wrong-class"]
    for path, item in wrong.items():  # a_<class>.jpg looks like that class
        assert item["looks_like"] == path.rsplit("/a_", 1)[1][:-4]
    for item in off.values():
        assert item["score"] > item["threshold"] and not item["moved"]
    assert not (root / "data" / "quarantine" / "off-topic").exists()
    assert set(summary["classes"]) == set(CLASSES) and all(c["threshold"] > 0 for c in summary["classes"].values())


def test_vet_moves_then_a_second_run_changes_nothing_and_restore_is_respected(ws: Path, prepared):
    _, planted, summary = prepared
    first = run_cli("-C", str(ws), "-q", *VET, check=True)
    assert "embedded 0 new images" in first.stdout  # every vector came from the dry run's cache
    quarantine = ws / "data" / "quarantine"
    for reason in ("off-topic", "wrong-class"):
        for path in planted[reason]:
            klass, name = path.split("/")[2:]
            assert (quarantine / reason / "scraped" / klass / name).is_file(), path
            assert not (ws / path).exists()
    db = sqlite3.connect(ws / ".datacurate" / "catalog.sqlite")
    moved = db.execute("SELECT count(*) FROM events WHERE action='quarantine' AND reason IN ('off-topic','wrong-class')").fetchone()[0]
    assert moved == 6
    row = db.execute("SELECT status, reason FROM files WHERE path LIKE 'data/quarantine/off-topic/%'").fetchone()
    assert tuple(row) == ("quarantined", "off-topic")
    db.close()
    assert len(list((ws / "data" / "original").rglob("*.jpg"))) == 3 * N_ORIGINAL  # originals never move by default

    files = _files(ws)
    second = json.loads(run_cli("-C", str(ws), "-q", *VET, "--json", check=True).stdout)
    assert second["embedded"] == 0 and sum(second["set_aside"].values()) == 0 and _files(ws) == files

    back = run_cli("-C", str(ws), "restore", "--reason", "off-topic", check=True)
    assert "restored 3 files" in back.stdout
    assert all((ws / p).is_file() for p in planted["off-topic"])
    third = json.loads(run_cli("-C", str(ws), "-q", *VET, "--json", check=True).stdout)
    assert sum(third["set_aside"].values()) == 0 and set(third["kept_by_user"]) == planted["off-topic"]
    run_cli("-C", str(ws), "restore", "--reason", "wrong-class", check=True)
    assert all((ws / p).is_file() for p in planted["wrong-class"])


def test_dry_run_moves_nothing_and_report_covers_every_image(ws: Path):
    before = _files(ws)
    proc = run_cli("-C", str(ws), "-q", *VET, "--dry-run", check=True)
    assert "would move" in proc.stdout and "dry run: nothing moved" in proc.stdout
    assert _files(ws) == before
    with open(ws / "reports" / "vet.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * (N_ORIGINAL + N_GOOD + 2)
    assert {r["flag"] for r in rows if r["path"].endswith("chart.jpg")} == {"off-topic"}
    page = (ws / "reports" / "vet.html").read_text(encoding="utf-8")
    assert "chart.jpg" in page and 'src="../data/scraped/' in page and "nearest red original" in page
    assert "plan — nothing was moved" in page
    assert not any((ws / "reports" / "thumbs").glob("*.jpg"))  # 64x48 pictures are shown as they are


def test_cache_survives_a_rename_and_embeds_only_new_images(ws: Path):
    src = ws / "data" / "scraped" / "red" / "s0.jpg"
    src.rename(src.with_name("renamed.jpg"))
    _put(ws / "data" / "scraped" / "green" / "new.jpg", jpeg(picture(HUES["green"], random.Random(99))))
    out = json.loads(run_cli("-C", str(ws), "-q", *VET, "--dry-run", "--json", check=True).stdout)
    assert out["embedded"] == 1 and out["cached"] == 3 * (N_ORIGINAL + N_GOOD + 2)


def test_weights_file_gives_the_same_flags_through_the_python_api(ws: Path, prepared):
    from datacurate.vet import VetOptions, vet
    from datacurate.core.workspace import Workspace

    opts = VetOptions(backbone="resnet18", weights="resnet18.pt", img_size=64, workers=0)
    result = vet(Workspace.open(ws), options=opts, dry_run=True)
    assert result.embedded == 3 * (N_ORIGINAL + N_GOOD + 2)  # another model key: embedded anew
    assert {(f.path, f.reason) for f in result.flags} == {(f["path"], f["reason"]) for f in prepared[2]["flags"]}
    assert not (ws / "data" / "quarantine" / "off-topic").exists()


def test_run_model_trained_first_on_the_originals(ws: Path):
    """--run NAME --train-first trains NAME on the originals alone, then embeds with it (features before its head)."""
    loud = run_cli("-C", str(ws), "vet", "--run", "trusted", "--train-first", "--dry-run", check=True)
    # the trusted run's epoch lines are progress: on stderr (-q silences them: test_pipeline's demo), the summary on stdout
    assert "epoch 1 " in loud.stderr and "epoch 1 " not in loud.stdout
    assert f"run trusted (best.pt): embedded {3 * (N_ORIGINAL + N_GOOD + 2)} new images" in loud.stdout
    out = json.loads(run_cli("-C", str(ws), "-q", "vet", "--run", "trusted", "--train-first", "--dry-run", "--json",
                             check=True).stdout)
    assert out["model"] == "run trusted (best.pt)"
    assert (ws / "runs" / "trusted" / "best.pt").is_file()
    split = ws / ".datacurate" / "vet" / "trusted-split"
    assert len(list(split.rglob("*.jpg"))) == 3 * N_ORIGINAL and not any(split.rglob("s*.jpg"))
    assert out["embedded"] == 0  # the run is reused, not trained again
    told = run_cli("-C", str(ws), "vet", "--run", "other", "--train-first", "--dry-run", check=True)
    assert "dry run: run other does not exist, so it is trained on the originals now" in told.stderr  # a notice, as progress


def test_a_judge_no_better_than_chance_moves_nothing(tmp_path: Path):
    """Two classes of the same colour: the classifier cannot tell them apart out of fold, so vet refuses (exit 2)."""
    rng = random.Random(7)
    for klass in ("left", "right"):
        for n in range(12):
            _put(tmp_path / "data" / "original" / klass / f"o{n:02d}.jpg", jpeg(picture(HUES["red"], rng)))
        _put(tmp_path / "data" / "scraped" / klass / "chart.jpg", jpeg(chart(rng)))
    (tmp_path / "datacurate.yaml").write_text(yaml.safe_dump({"vet": VET_CONFIG}), encoding="utf-8")
    before = _files(tmp_path)
    for extra in (["--dry-run"], []):
        proc = run_cli("-C", str(tmp_path), "-q", "vet", *extra)
        assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
        assert "judges no better than chance (out-of-fold accuracy" in proc.stderr and "nothing was set aside" in proc.stderr
    assert _files(tmp_path) == before


def test_class_without_originals_is_named_and_skipped(ws: Path):
    _put(ws / "data" / "scraped" / "黄色" / "h.jpg", jpeg(picture(0.16, random.Random(5))))
    proc = run_cli("-C", str(ws), "-q", *VET, "--dry-run", check=True)
    assert "黄色: no originals: nothing to compare its scraped images with; skipped" in proc.stderr


@pytest.mark.parametrize("args, needle", [
    (["--backbone", "resnet181"], "unknown architecture 'resnet181'"),
    (["--backbone", "mobilenet_v2", "--weights", "resnet18.pt"], "does not fit this architecture"),
    (["--run", "nosuchrun"], "no run 'nosuchrun'"),
    (["--weights", "imagenet"], "DATACURATE_OFFLINE forbids downloading"),
    (["--offtopic-quantile", "2"], "offtopic_quantile must be a number between 0.5 and 1"),
    (["--offtopic-z", "0.1"], "offtopic_z must be a number between 0.5 and 20"),
    (["--offtopic-z", "x"], "--offtopic-z"),
    (["--keep-recognised"], "No such option '--keep-recognised'"),
])
def test_bad_input_is_one_line_and_exit_2(ws: Path, tmp_path: Path, monkeypatch, args, needle):
    monkeypatch.setenv("DATACURATE_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    proc = run_cli("-C", str(ws), "-q", "vet", *args, "--dry-run")
    assert proc.returncode == 2 and needle in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr


def test_no_originals_at_all_is_exit_2(tmp_path: Path):
    _put(tmp_path / "data" / "scraped" / "a" / "x.jpg", jpeg(picture(0.5, random.Random(1))))
    proc = run_cli("-C", str(tmp_path), "vet", "--weights", "none", "--backbone", "resnet18")
    assert proc.returncode == 2 and "no class has two or more usable originals" in proc.stderr


def test_trusted_split_takes_files_of_one_name_in_nested_folders(tmp_path: Path):
    """Issue 21 item 6: circle/a.jpg and circle/sub/a.jpg both reach the trusted split (was FileExistsError)."""
    from datacurate.vet.trust import _trusted_split
    from datacurate.core.workspace import Workspace

    rows = []
    for n, rel in enumerate(["circle/a.jpg", "circle/sub/a.jpg", "circle/sub/deeper/a.jpg", "circle/b.jpg"]):
        _put(tmp_path / "data" / "original" / rel, jpeg(picture(0.5, random.Random(n))))
        rows.append({"path": f"data/original/{rel}", "class": "circle", "sha256": f"{n:064x}"})
    folder = _trusted_split(Workspace.open(tmp_path), 0, rows)
    got = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))
    assert len(got) == 4 and len(set(got)) == 4 and sum("/circle/a" in p for p in got) == 3


def test_reason_and_the_csv_say_how_each_verdict_was_reached(ws: Path):
    """Score, threshold, where the threshold came from (here: too few scraped images, so the originals) and the rule."""
    out = json.loads(run_cli("-C", str(ws), "-q", *VET, "--json", check=True).stdout)
    assert out["judge"]["trusted"] and out["judge"]["accuracy"] > 0.9
    assert all(c["calibration"].startswith("originals: quantile 0.98") for c in out["classes"].values())
    moved = run_cli("-C", str(ws), "reason", "data/quarantine/off-topic/scraped/red/chart.jpg", check=True).stdout
    assert "set aside by vet as off-topic" in moved and "threshold from the originals: quantile 0.98" in moved
    assert "rule: distance to its class's originals over the threshold" in moved
    kept = run_cli("-C", str(ws), "reason", "data/scraped/red/s0.jpg", check=True).stdout
    assert "in place" in kept and "vet kept: cosine distance" in kept and "originals: quantile 0.98" in kept
    with open(ws / "reports" / "vet.csv", encoding="utf-8") as fh:
        details = {r["path"]: r["detail"] for r in csv.DictReader(fh)}
    assert details["data/scraped/red/s0.jpg"].startswith("kept: cosine distance")
    page = (ws / "reports" / "vet.html").read_text(encoding="utf-8")
    assert "The judge: out-of-fold accuracy" in page and "threshold set from" in page
