"""Heads, GroupNorm, zero-gamma, mixup/cutmix + EMA with exact resume, distillation, TTA, fit-head, export,
and the train items of issue 11 (loader workers die with the trainer, stale checkpoint partials swept)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from datacurate.vision import checkpoint
from datacurate.vision.freeze import apply_trainable
from datacurate.vision.heads import Head, head_name
from datacurate.vision.models import create_model
from datacurate.train.options import DEFAULTS
from datacurate.train.plan import build_plan
from datacurate.train.run import train
from datacurate.core.workspace import Workspace
from test_train_run import CLASSES, ROOT, TINY, _threads, cli, history, make_split, train_killed  # noqa: F401 (_threads: autouse)

GROUPS = textwrap.dedent("""\
    train:
      groups:
        - {name: body, modules: ["*"], optimizer: adam, lr: 0.001}
        - {name: head, modules: [head], optimizer: adam, lr: 0.01}
    """)


HEADS = [{"head": "mlp", "head_hidden": 16, "head_dropout": 0.1}, {"head": "se"}, {"head": "cbam", "head_dropout": 0.2},
         {"head": "bilinear", "bilinear": "full", "bilinear_dim": 8}, {"head": "bilinear", "bilinear": "compact", "bilinear_dim": 64}]


@pytest.mark.parametrize("head", HEADS, ids=lambda h: f"{h['head']}-{h.get('bilinear', '')}")
def test_each_head_trains_alone_then_with_layer4(head):
    torch.manual_seed(0)
    model = create_model("resnet18", 3, "none", options=head)
    name = head_name(model)
    assert name == "fc" and isinstance(model.fc, Head)
    plan = build_plan(model, {**DEFAULTS, "freeze_until": "layer4", "groups": [
        {"name": "body", "modules": ["*"], "lr": 0.01}, {"name": "head", "modules": ["head"], "lr": 0.01}]})
    head_params = {n for n, _ in model.named_parameters() if n.startswith("fc.")}
    assert plan.stages[0].trainable == head_params and set(plan.members["head"]) == head_params
    assert plan.stages[1].trainable == head_params | {n for n, _ in model.named_parameters() if n.startswith("layer4.")}
    for stage in plan.stages:
        apply_trainable(model, stage.trainable)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
        model.train()
        x = torch.randn(4, 3, 64, 64)
        loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0]))
        loss.backward()
        opt.step()
        moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
        assert moved and moved <= stage.trainable, stage.spec.name
        assert any(n.startswith("fc.") for n in moved)
    model.eval()
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 3)


def test_group_norm_and_zero_gamma():
    m = create_model("resnet18", 3, "none", options={"norm": "group", "zero_gamma": True})
    assert not any(isinstance(x, nn.BatchNorm2d) for x in m.modules())
    assert sum(isinstance(x, nn.GroupNorm) for x in m.modules()) == 20
    assert all(float(b.bn2.weight.detach().abs().sum()) == 0 for layer in (m.layer1, m.layer2, m.layer3, m.layer4) for b in layer)
    assert float(m.layer1[0].bn1.weight.detach().abs().sum()) > 0
    from datacurate.core.errors import UserError

    with pytest.raises(UserError, match="no residual block"):
        create_model("alexnet", 3, "none", options={"zero_gamma": True})
    with pytest.raises(UserError, match="takes no norm layer"):
        create_model("alexnet", 3, "none", options={"norm": "group"})


TRICKS = {"mixup": 0.4, "cutmix": 1.0, "mix_switch": 0.5, "ema": 0.9, "augment": "garbage", "head": "mlp", "head_hidden": 32,
          "head_dropout": 0.2}
def test_resume_exact_with_mixup_cutmix_ema_and_dropout(tmp_path, capsys, monkeypatch):
    make_split(tmp_path)
    (tmp_path / "datacurate.yaml").write_text(GROUPS, encoding="utf-8")
    ws = Workspace.open(tmp_path)
    full = train(ws, {**TINY, **TRICKS, "name": "full"}, quiet=True)
    r = train_killed(tmp_path, {**TINY, **TRICKS, "name": "killed"}, 5)
    assert r.returncode == -signal.SIGKILL, r.stderr
    code, _, err = cli(["-C", str(tmp_path), "train", "--resume", "--name", "killed"], capsys, monkeypatch)
    assert code == 0, err
    a, b = checkpoint.load(full.run_dir / "last.pt"), checkpoint.load(tmp_path / "runs" / "killed" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["ema"] is not None and a["ema"].keys() == b["ema"].keys()
    for k in a["ema"]:
        assert torch.equal(a["ema"][k], b["ema"][k]), k
    rows = history(full.run_dir)
    assert rows == history(tmp_path / "runs" / "killed")
    assert {"valid_acc_ema", "valid_loss_ema"} <= set(rows[0])
    # the EMA weights differ from the raw ones and are what `evaluate --ema` scores
    assert any(not torch.equal(a["model"][k], a["ema"]["module." + k]) for k in a["model"] if k.endswith("weight"))
    code, out, err = cli(["-C", str(tmp_path), "evaluate", "full", "--ema"], capsys, monkeypatch)
    assert code == 0 and "6 images, accuracy" in out and "eval/valid-ema" in out
    code, _, err = cli(["-C", str(tmp_path), "train", "--resume", "--name", "killed"], capsys, monkeypatch)
    assert code == 2


@pytest.fixture(scope="module")
def run_ws(tmp_path_factory):
    """A finished tiny run with a CBAM head, GroupNorm and zero-gamma (trained through the CLI)."""
    root = make_split(tmp_path_factory.mktemp("tricks"), n_train=6, n_valid=3)
    (root / "datacurate.yaml").write_text(GROUPS, encoding="utf-8")
    train(Workspace.open(root), {**TINY, "img_size": 64, "head": "cbam", "norm": "group", "zero_gamma": True,
                                 "augment": "fine-grained", "name": "tiny"}, quiet=True)
    return root


def test_fit_head_beats_chance_and_serves_predict_and_evaluate(run_ws, capsys, monkeypatch):
    for clf in ("logreg", "svm"):
        code, out, err = cli(["-C", str(run_ws), "fit-head", "tiny", "--classifier", clf], capsys, monkeypatch)
        assert code == 0, err
        meta = json.loads((run_ws / "runs" / "tiny" / "heads" / f"{clf}.json").read_text(encoding="utf-8"))
        assert meta["valid_acc"] > 1 / 3 + 0.2 and meta["train_images"] == 18 and meta["valid_images"] == 9
        assert f"valid accuracy {meta['valid_acc']:.4f}; the network's own head {meta['network_valid_acc']:.4f}" in out
    code, out, err = cli(["-C", str(run_ws), "evaluate", "tiny", "--head-from", "svm"], capsys, monkeypatch)
    assert code == 0 and "tiny (svm) on" in out and "eval/valid-svm" in out
    m = json.loads((run_ws / "runs" / "tiny" / "eval" / "valid-svm" / "metrics.json").read_text(encoding="utf-8"))
    assert m["head_from"] == "svm" and m["accuracy"] > 1 / 3
    one = run_ws / "data" / "split" / "valid" / "dog" / "0.jpg"
    code, out, err = cli(["-C", str(run_ws), "predict", "tiny", str(one), "--head-from", "logreg"], capsys, monkeypatch)
    rec = json.loads(out)
    assert code == 0 and rec["result"] in CLASSES and abs(sum(p for _, p in rec["top"]) - 1) < 1e-4
    # a backbone's features instead of the run's (random weights here: tests download nothing)
    code, out, err = cli(["-C", str(run_ws), "fit-head", "tiny", "--classifier", "logreg", "--backbone", "resnet18",
                          "--backbone-weights", "none"], capsys, monkeypatch)
    assert code == 0 and "512 features (resnet18)" in out
    code, out, _ = cli(["-C", str(run_ws), "predict", "tiny", str(one), "--head-from", "logreg"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["result"] in CLASSES
    (run_ws / "runs" / "tiny" / "heads" / "svm.pkl").unlink()
    code, _, err = cli(["-C", str(run_ws), "predict", "tiny", str(one), "--head-from", "svm"], capsys, monkeypatch)
    assert code == 2 and "has no fitted svm head; fit one with `datacurate fit-head tiny --classifier svm`" in err


def test_tta_reported_beside_plain_accuracy(run_ws, capsys, monkeypatch):
    from datacurate.train.predict import predict
    from datacurate.train.scorers import open_scorer

    for mode, views in (("flip", 2), ("crops", 5), ("policy", 4)):
        code, out, err = cli(["-C", str(run_ws), "evaluate", "tiny", "--tta", mode, "--tta-views", "3"], capsys, monkeypatch)
        assert code == 0, err
        assert "accuracy " in out and f", with TTA ({mode}) " in out
        m = json.loads((run_ws / "runs" / "tiny" / "eval" / "valid" / "metrics.json").read_text(encoding="utf-8"))
        assert m["tta"] == mode and m["tta_views"] == views and 0 <= m["accuracy_tta"] <= 1
    # predict --tta flip is the mean of the plain and the mirrored softmax
    one = run_ws / "data" / "split" / "valid" / "cat" / "1.jpg"
    ws = Workspace.open(run_ws)
    got = next(predict(ws, "tiny", [str(one)], top=3, tta="flip", device="cpu"))
    sc = open_scorer(ws, "tiny", device="cpu")
    from datacurate.vision.data import ImageSet

    x = ImageSet([(str(one), 0)], sc.pre)[0][0][None]
    want = (sc.probs(x)[0] + sc.probs(x.flip(-1))[0]) / 2
    assert {c: p for c, p in got["top"]} == pytest.approx({sc.classes[i]: float(want[0, i]) for i in range(3)}, abs=2e-6)


def test_distillation_runs_and_checks_the_teacher(run_ws, tmp_path, capsys, monkeypatch):
    ws = Workspace.open(run_ws)
    flags = {**TINY, "img_size": 64, "head_epochs": 1, "epochs": 0}
    plain = train(ws, {**flags, "name": "student0"}, quiet=True)
    taught = train(ws, {**flags, "name": "student1", "teacher": "tiny", "teacher_weight": 0.9, "teacher_temperature": 2}, quiet=True)
    assert history(plain.run_dir)[0]["train_loss"] != history(taught.run_dir)[0]["train_loss"]
    assert checkpoint.load(taught.run_dir / "last.pt")["config"]["teacher"] == "tiny"
    # a teacher trained on other classes, or one that does not exist: one line, exit 2
    other = tmp_path / "other"
    make_split(other)
    (other / "data" / "split" / "train" / "cat").rename(other / "data" / "split" / "train" / "bird")
    (other / "data" / "split" / "valid" / "cat").rename(other / "data" / "split" / "valid" / "bird")
    base = ["-C", str(other), "train", "--arch", "resnet18", "--weights", "none", "--img-size", "32", "--device", "cpu",
            "--workers", "0", "--head-epochs", "1", "--epochs", "0", "--freeze-until", "layer4"]
    code, _, err = cli(base + ["--teacher", str(run_ws / "runs" / "tiny")], capsys, monkeypatch)
    assert code == 2 and "its classes differ from this split's" in err and "'bird'" in err
    code, _, err = cli(base + ["--teacher", "ghost"], capsys, monkeypatch)
    assert code == 2 and "--teacher: no run 'ghost'" in err


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_parity_and_predict_model(run_ws, tmp_path, fmt, capsys, monkeypatch):
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"可回收物_易拉罐": "可回收物/易拉罐"}, ensure_ascii=False), encoding="utf-8")
    out_file = tmp_path / ("m.onnx" if fmt == "onnx" else "m.pt")
    code, out, err = cli(["-C", str(run_ws), "export", "tiny", "--format", fmt, "-o", str(out_file), "--label-map", str(labels)],
                         capsys, monkeypatch)
    assert code == 0, err
    assert "parity on 9 split images: max |logit difference| " in out
    diff = float(out.split("max |logit difference| ")[1].split()[0])
    assert diff <= 1e-3
    meta = json.loads(out_file.with_name(out_file.name + ".json").read_text(encoding="utf-8"))
    assert meta["classes"] == sorted(CLASSES) and meta["preprocess"]["crop"] == 64 and meta["label_map"]["可回收物_易拉罐"] == "可回收物/易拉罐"
    folder = run_ws / "data" / "split" / "valid" / "可回收物_易拉罐"
    code, out, err = cli(["-C", str(run_ws), "predict", "--model", str(out_file), str(folder), "--top", "3"], capsys, monkeypatch)
    assert code == 0, err
    exported = [json.loads(line) for line in out.splitlines()]
    code, out, _ = cli(["-C", str(run_ws), "predict", "tiny", str(folder), "--top", "3", "--label-map", str(labels)], capsys, monkeypatch)
    native = [json.loads(line) for line in out.splitlines()]
    assert len(exported) == 3 and [r["result"] for r in exported] == [r["result"] for r in native]
    for e, n in zip(exported, native):
        assert dict(e["top"]) == pytest.approx(dict(n["top"]), abs=1e-4)
    assert "可回收物/易拉罐" in {c for r in exported for c, _ in r["top"]}


def test_export_errors(run_ws, tmp_path, capsys, monkeypatch):
    code, _, err = cli(["-C", str(run_ws), "export", "nope"], capsys, monkeypatch)
    assert code == 2 and "export: no run 'nope'" in err
    code, _, err = cli(["-C", str(run_ws), "predict", "--model", str(tmp_path / "none.onnx"), "x.jpg"], capsys, monkeypatch)
    assert code == 2 and "no such file" in err
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(b"not onnx")
    code, _, err = cli(["-C", str(run_ws), "predict", "--model", str(lone), "x.jpg"], capsys, monkeypatch)
    assert code == 2 and "lone.onnx.json" in err
    # the default place is the run folder
    code, out, err = cli(["-C", str(run_ws), "export", "tiny"], capsys, monkeypatch)
    assert code == 0 and (run_ws / "runs" / "tiny" / "model.onnx").is_file() and (run_ws / "runs" / "tiny" / "model.onnx.json").is_file()


WORKERS = """
import os, sys, time, torch
torch.set_num_threads(1)
from datacurate.train.run import train
from datacurate.core.workspace import Workspace
flags = dict(arch="resnet18", weights="none", img_size=32, batch_size=2, workers=2, device="cpu",
             freeze_until="layer4.1", head_epochs=1, epochs=1, name="w")
def hang(step):
    open(sys.argv[2], "w").write("ready")
    time.sleep(600)
train(Workspace.open(sys.argv[1]), flags, quiet=True, on_step=hang)
"""


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_loader_workers_die_with_a_killed_trainer(tmp_path):
    make_split(tmp_path)
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", WORKERS, str(tmp_path), str(ready)], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not ready.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert ready.exists(), "training never reached its first step"
        workers = _children(proc.pid)
        assert len(workers) >= 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # PR_SET_PDEATHSIG ends them at once; torch's own watchdog only looks every 5 s, and not while a worker is busy
        deadline = time.time() + 1.5
        while any(_alive(w) for w in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers), "a loader worker outlived the trainer"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_partial_checkpoint_writes_are_swept(tmp_path, capsys, monkeypatch):
    make_split(tmp_path)
    old_run = tmp_path / "runs" / "old"
    old_run.mkdir(parents=True)
    stale = old_run / ".tmp-abc123.part"
    stale.write_bytes(b"\0" * 4096)
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    fresh = old_run / ".tmp-inprogress.part"  # maybe another train writing right now: left alone
    fresh.write_bytes(b"\0")
    own = tmp_path / "runs" / "new" / ".tmp-x.part"
    own.parent.mkdir()
    own.write_bytes(b"\0" * 10)
    keep = old_run / "notes.txt"
    keep.write_text("mine")
    args = ["-C", str(tmp_path), "train", "--arch", "resnet18", "--weights", "none", "--img-size", "32", "--device", "cpu",
            "--workers", "0", "--head-epochs", "1", "--epochs", "0", "--freeze-until", "layer4", "--name", "new"]
    code, _, err = cli(args, capsys, monkeypatch)
    assert code == 0, err
    assert not stale.exists() and not own.exists() and fresh.exists() and keep.exists()
    assert "removed 2 partial file(s)" in err
    assert not list((tmp_path / "runs" / "new").glob(".tmp-*"))
