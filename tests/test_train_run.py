"""datacurate train end to end on tiny data (resnet18 at 32 px), exact resume after a kill, evaluate, predict."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datacurate.vision import checkpoint
from datacurate.vision.models import create_model
from datacurate.train.run import train
from datacurate.core.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]

CLASSES = ("cat", "dog", "可回收物_易拉罐")
TINY = {"arch": "resnet18", "weights": "none", "img_size": 32, "batch_size": 4, "workers": 0, "device": "cpu",
        "freeze_until": "layer4.1", "head_epochs": 1, "epochs": 2}


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def make_split(root: Path, n_train: int = 4, n_valid: int = 2) -> Path:
    """Colour-coded classes with noise, as real JPEG files in the ImageFolder layout."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("valid", n_valid)):
        for ci, c in enumerate(CLASSES):
            d = root / "data" / "split" / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = rng.integers(0, 90, (40, 48, 3), dtype=np.uint8)
                a[..., ci] += 150
                Image.fromarray(a).save(d / f"{i}.jpg", quality=90)
    return root


def cli(args, capsys, monkeypatch) -> tuple[int, str, str]:
    """The real console entry point, in-process: (exit code, stdout, stderr)."""
    from datacurate.cli.main import run

    monkeypatch.setattr(sys, "argv", ["datacurate", *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as ex:
        run()
    out = capsys.readouterr()
    return ex.value.code, out.out, out.err


def history(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", encoding="utf-8") as fh:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished run through the CLI, shared by the evaluate/predict tests."""
    root = make_split(tmp_path_factory.mktemp("ws"))
    (root / "datacurate.yaml").write_text(textwrap.dedent("""\
        train:
          groups:
            - {name: body, modules: ["*"], optimizer: adam, lr: 0.001}
            - {name: head, modules: [head], optimizer: adam, lr: 0.01}
        """), encoding="utf-8")
    res = train(Workspace.open(root), {**TINY, "name": "tiny"}, quiet=True)
    return root, res


def test_train_cli_end_to_end(tmp_path, capsys, monkeypatch):
    make_split(tmp_path)
    (tmp_path / "data" / "split" / "stats.json").write_text(json.dumps({"mean": [0.3, 0.3, 0.3], "std": [0.25, 0.25, 0.25], "count": 12}))
    args = ["-C", str(tmp_path), "train", "--arch", "resnet18", "--weights", "none", "--img-size", "32", "--batch-size", "4",
            "--workers", "0", "--device", "cpu", "--freeze-until", "layer4.1", "--head-epochs", "1", "--epochs", "1", "--name", "r1"]
    code, out, err = cli(args, capsys, monkeypatch)
    assert code == 0, err
    assert out.startswith("run r1: 2 epochs on cpu; best epoch ") and "wrote runs/r1/" in out
    assert "epoch 1 head 1: train loss" in err and "epoch 2 finetune 1:" in err
    # 12 images at batch 4: 3 steps an epoch, 6 in all, said at the start with a warning naming what to change
    assert "12 train / 6 valid images, 3 classes, 2 epochs, 6 optimizer steps on cpu" in err
    assert "warning: 6 optimizer steps in all, fewer than 100: the model will likely underfit" in err and "fit-head" in err
    run = tmp_path / "runs" / "r1"
    for f in ("best.pt", "last.pt", "history.csv", "history.png", "metrics.json", "config.yaml", "plan.txt"):
        assert (run / f).is_file(), f
    assert (run / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = history(run)
    assert [(r["epoch"], r["stage"], r["stage_epoch"]) for r in rows] == [("1", "head", "1"), ("2", "finetune", "1")]
    assert {"train_loss", "train_acc", "valid_loss", "valid_acc", "lr_body", "lr_head"} <= set(rows[0])
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["classes"] == sorted(CLASSES) and metrics["epochs"] == 2 and metrics["best_epoch"] >= 1
    ck = checkpoint.load(run / "last.pt")
    assert ck["done"] and ck["classes"] == sorted(CLASSES) and ck["preprocess"]["mean"] == [0.3, 0.3, 0.3]
    assert ck["preprocess"]["resize"] == 36 and ck["preprocess"]["crop"] == 32 and ck["config"]["arch"] == "resnet18"
    assert set(ck["optimizers"]) == {"adam"} and ck["state"]["stage"] == 2 and "rng" in ck
    # the frozen part never moved (weights nor BatchNorm statistics); layer4 and the head did
    torch.manual_seed(0)
    init = create_model("resnet18", 3, "none").state_dict()
    final = ck["model"]
    assert torch.equal(final["layer1.0.conv1.weight"], init["layer1.0.conv1.weight"])
    assert torch.equal(final["layer3.1.bn2.running_mean"], init["layer3.1.bn2.running_mean"])
    assert torch.equal(final["layer4.0.conv2.weight"], init["layer4.0.conv2.weight"])
    assert not torch.equal(final["layer4.1.conv2.weight"], init["layer4.1.conv2.weight"])
    assert not torch.equal(final["fc.weight"], init["fc.weight"])
    # the name is taken now: a second run with it is refused, --resume of a finished run too
    code, _, err = cli(args, capsys, monkeypatch)
    assert code == 2 and "exists; continue it with --resume" in err
    code, _, err = cli(["-C", str(tmp_path), "train", "--resume", "--name", "r1"], capsys, monkeypatch)
    assert code == 2 and "already finished" in err


def test_plan_states_optimizer_steps_per_stage_and_warns_when_few(tmp_path, capsys, monkeypatch):
    make_split(tmp_path, n_train=10)  # 30 train images
    base = ["-C", str(tmp_path), "train", "--plan", "--arch", "resnet18", "--weights", "none", "--freeze-until", "layer4"]
    code, out, err = cli(base + ["--batch-size", "32", "--head-epochs", "2", "--epochs", "10"], capsys, monkeypatch)
    assert code == 0, err
    assert "optimizer steps: 1 per epoch (30 train images / batch 32); stage 1 head 2, stage 2 finetune 10; 12 in all" in out
    warning = next(line for line in out.splitlines() if line.startswith("warning: "))
    assert "12 optimizer steps in all, fewer than 100" in warning and "--batch-size (8 gives 4 steps per epoch)" in warning
    assert "more epochs" in warning and "fit-head" in warning
    code, out, err = cli(base + ["--batch-size", "2", "--head-epochs", "0", "--epochs", "7"], capsys, monkeypatch)
    assert code == 0 and "15 per epoch" in out and "105 in all" in out and "warning:" not in out


KILLED = """
import json, os, signal, sys, torch
torch.set_num_threads(1)
from datacurate.train.run import train
from datacurate.core.workspace import Workspace
def kill(step):
    if step == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)
train(Workspace.open(sys.argv[1]), json.loads(sys.argv[2]), quiet=True, on_step=kill)
"""


def train_killed(root: Path, flags: dict, step: int) -> subprocess.CompletedProcess:
    """Run train() in a subprocess that SIGKILLs itself at training step `step`."""
    return subprocess.run([sys.executable, "-c", KILLED, str(root), json.dumps(flags), str(step)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_resume_after_kill_matches_uninterrupted(tmp_path, capsys, monkeypatch):
    make_split(tmp_path)
    ws = Workspace.open(tmp_path)
    full = train(ws, {**TINY, "name": "full"}, quiet=True)
    # the same run, SIGKILLed in the middle of its second epoch (3 steps per epoch)
    r = train_killed(tmp_path, {**TINY, "name": "killed"}, 5)
    assert r.returncode == -signal.SIGKILL, r.stderr
    killed = tmp_path / "runs" / "killed"
    assert checkpoint.load(killed / "last.pt")["state"]["epoch"] == 1 and len(history(killed)) == 1
    code, out, err = cli(["-C", str(tmp_path), "train", "--resume", "--name", "killed", "--epochs", "5", "--batch-size", "8"],
                         capsys, monkeypatch)  # a changed recipe cannot be honoured mid-run: refused, nothing touched
    assert code == 2 and err.count("\n") == 1 and "--epochs 5 differs from its 2" in err and "--device" in err
    assert checkpoint.load(killed / "last.pt")["state"]["epoch"] == 1
    code, out, err = cli(["-C", str(tmp_path), "train", "--resume", "--name", "killed", "--workers", "0"], capsys, monkeypatch)
    assert code == 0, err
    assert "resuming killed at epoch 2 (stage finetune)" in err
    a, b = checkpoint.load(full.run_dir / "last.pt"), checkpoint.load(killed / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    sa, sb = a["optimizers"]["adam"]["state"], b["optimizers"]["adam"]["state"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    assert history(full.run_dir) == history(killed)
    ma = json.loads((full.run_dir / "metrics.json").read_text())
    mb = json.loads((killed / "metrics.json").read_text())
    assert ma["best"]["valid_loss"] == mb["best"]["valid_loss"] and ma["last"]["train_loss"] == mb["last"]["train_loss"]


def test_bad_file_skipped_workers_and_schedules(tmp_path):
    make_split(tmp_path)
    bad = tmp_path / "data" / "split" / "train" / "cat" / "broken.jpg"
    bad.write_bytes((tmp_path / "data" / "split" / "train" / "cat" / "0.jpg").read_bytes()[:300])
    (tmp_path / "datacurate.yaml").write_text(textwrap.dedent("""\
        train:
          label_smoothing: 0.1
          stages:
            - {name: warm, epochs: 2, freeze_until: head, schedule: {kind: cosine, warmup_epochs: 0.5}}
        """), encoding="utf-8")
    ws = Workspace.open(tmp_path)
    flags = {k: v for k, v in TINY.items() if k not in ("head_epochs", "epochs", "freeze_until")}
    said: list[str] = []
    res0 = train(ws, {**flags, "name": "w0"}, quiet=True, echo=said.append)
    res2 = train(ws, {**flags, "name": "w2", "workers": 2}, quiet=True)
    assert res0.skipped == [str(bad)] == res2.skipped
    assert any("skipped" in s and "broken.jpg" in s for s in said)
    rows0, rows2 = history(res0.run_dir), history(res2.run_dir)
    assert rows0 == rows2  # augmentation and order do not depend on the number of workers
    assert rows0[0]["skipped"] == "1" and float(rows0[1]["lr_head"]) < float(rows0[0]["lr_head"])
    metrics = json.loads((res0.run_dir / "metrics.json").read_text())
    assert metrics["skipped_files"] == [str(bad)]


def test_early_stopping(tmp_path):
    make_split(tmp_path)
    (tmp_path / "datacurate.yaml").write_text(textwrap.dedent("""\
        train:
          groups: [{name: all, modules: ["*"], optimizer: sgd, lr: 0.0}]
          stages:
            - {name: one, epochs: 5, freeze_until: head}
            - {name: two, epochs: 5, freeze_until: head}
        """), encoding="utf-8")
    flags = {k: v for k, v in TINY.items() if k not in ("head_epochs", "epochs", "freeze_until")}
    res = train(Workspace.open(tmp_path), {**flags, "name": "es", "patience": 1, "early_stop": "valid_loss"}, quiet=True)
    rows = history(res.run_dir)
    # lr 0: nothing improves after epoch 1; each stage stops after an epoch without improvement
    assert [(r["stage"], r["stage_epoch"]) for r in rows] == [("one", "1"), ("one", "2"), ("two", "1")]
    assert res.stopped_early and res.best_epoch == 1
    assert checkpoint.load(res.run_dir / "best.pt")["state"]["best_epoch"] == 1


def test_evaluate_cli(trained, capsys, monkeypatch):
    root, res = trained
    code, out, err = cli(["-C", str(root), "evaluate", "tiny"], capsys, monkeypatch)
    assert code == 0, err
    assert out.startswith("tiny on ") and "6 images, accuracy" in out
    assert "可回收物_易拉罐" in out and "precision" in out
    ev = root / "runs" / "tiny" / "eval" / "valid"
    rows = list(csv.reader(open(ev / "confusion.csv", encoding="utf-8")))
    assert rows[0] == ["true \\ predicted", *sorted(CLASSES)] and sum(int(x) for r in rows[1:] for x in r[1:]) == 6
    assert (ev / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    m = json.loads((ev / "metrics.json").read_text(encoding="utf-8"))
    diag = sum(int(rows[i + 1][i + 1]) for i in range(3))
    assert m["accuracy"] == diag / 6 and len(m["per_class"]) == 3
    assert all(c["count"] == int(rows[1 + sorted(CLASSES).index(c["true"])][1 + sorted(CLASSES).index(c["predicted"])]) for c in m["most_confused"])
    code, _, err = cli(["-C", str(root), "evaluate", "nope"], capsys, monkeypatch)
    assert code == 2 and "no run 'nope'" in err and "tiny" in err


def test_predict_cli(trained, capsys, monkeypatch):
    root, res = trained
    label_map = root / "labels.json"
    label_map.write_text(json.dumps({"可回收物_易拉罐": "可回收物/易拉罐"}, ensure_ascii=False), encoding="utf-8")
    folder = root / "data" / "split" / "valid" / "可回收物_易拉罐"
    one = root / "data" / "split" / "valid" / "cat" / "0.jpg"
    code, out, err = cli(["-C", str(root), "predict", "tiny", str(folder), str(one), "--top", "2", "--label-map", str(label_map)],
                         capsys, monkeypatch)
    assert code == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    assert [Path(r["path"]).name for r in recs] == ["0.jpg", "1.jpg", "0.jpg"]
    names = {"cat", "dog", "可回收物/易拉罐"}
    for r in recs:
        assert set(r) == {"path", "result", "top"} and len(r["top"]) == 2 and r["result"] == r["top"][0][0]
        assert r["result"] in names and r["top"][0][1] >= r["top"][1][1] and 0 <= r["top"][1][1] <= 1
    assert "可回收物/易拉罐" in out  # not escaped
    # the probabilities are the model's: reload best.pt and compare for one image
    from datacurate.train.predict import predict

    full = list(predict(Workspace.open(root), "tiny", [str(one)], top=3, device="cpu"))[0]
    assert abs(sum(p for _, p in full["top"]) - 1) < 1e-4
    bad = root / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    code, out, err = cli(["-C", str(root), "predict", "tiny", str(bad), str(one)], capsys, monkeypatch)
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 2 and lines[0]["path"] == str(bad) and lines[0]["error"].startswith("could not decode the image (") and "result" in lines[1]
    assert "1 images could not be decoded" in err
    code, _, err = cli(["-C", str(root), "predict", "tiny", str(one), "--label-map", str(root / "missing.json")], capsys, monkeypatch)
    assert code == 2 and "missing.json: no such file" in err


@pytest.mark.parametrize("args, needle", [
    (["train", "--arch", "vit_b_16", "--weights", "none", "--img-size", "64"], "vit_b_16 takes images of exactly 224 pixels"),
    (["train", "--arch", "inception_v3", "--weights", "none", "--img-size", "64"], "inception_v3 needs images of at least 75"),
    (["vet", "--backbone", "maxvit_t", "--weights", "none", "--img-size", "64"], "maxvit_t takes images of exactly 224"),
])
def test_an_input_size_the_architecture_cannot_take_is_named_before_anything_is_written(tmp_path, capsys, monkeypatch,
                                                                                       args, needle):
    """Issue 21 item 7: one line, exit 2, no run folder holding only config.yaml and plan.txt."""
    root = make_split(tmp_path)
    code, _, err = cli(["-C", str(root), *args], capsys, monkeypatch)
    assert code == 2 and needle in err and err.count("\n") == 1, err
    assert not (root / "runs").exists()


def test_gpus_0_and_a_torchscript_weights_file_are_named_as_such(tmp_path, capsys, monkeypatch, recwarn):
    """Issue 21 item 13: --gpus 0 names --gpus; a TorchScript file as --weights is one line, no torch warning."""
    from datacurate.core.errors import UserError
    from datacurate.vision.models import read_weights_file

    root = make_split(tmp_path)
    code, _, err = cli(["-C", str(root), "train", "--gpus", "0", "--plan"], capsys, monkeypatch)
    assert code == 2 and "--gpus must be at least 1, got 0" in err, err
    ts = tmp_path / "ts.pt"
    torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2)).save(str(ts))
    recwarn.clear()
    with pytest.raises(UserError, match=r"is not a loadable PyTorch weights file: it is a TorchScript program") as exc:
        read_weights_file(ts)
    assert not [w for w in recwarn.list if "torch" in str(w.filename)] and "\n" not in str(exc.value)
