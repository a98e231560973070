"""datacurate train: models, weights, freeze specs, parameter groups, schedules, --plan (no training loop here)."""

from __future__ import annotations

import http.server
import os
import sys
import threading
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from datacurate.cli.main import main
from datacurate.core.errors import UserError
from datacurate.vision.freeze import apply_trainable, frozen_before, resolve_modules, set_train_mode, summarize
from datacurate.train.groups import assign, build_optimizers, set_lrs
from datacurate.vision.heads import head_name
from datacurate.vision.models import create_model
from datacurate.train.options import DEFAULTS, ScheduleSpec, parse_groups, parse_schedule, parse_stages
from datacurate.train.plan import build_plan
from datacurate.train.schedules import StageSchedule



@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def resnext():
    torch.manual_seed(0)
    return create_model("resnext101_32x8d", 3, "none")


def _opts(**kw):
    return {**DEFAULTS, **kw}


# -- freeze specs --------------------------------------------------------------------------------
def test_freeze_until_layer3_18_on_resnext(resnext):
    frozen = frozen_before(resnext, "layer3.18")
    assert "conv1.weight" in frozen and "layer2.3.conv3.weight" in frozen
    assert "layer3.17.bn3.bias" in frozen
    assert "layer3.18.conv1.weight" not in frozen and "layer4.0.conv1.weight" not in frozen and "fc.weight" not in frozen
    assert summarize(resnext, frozen) == ["conv1", "bn1", "layer1", "layer2", "layer3.0-17"]
    trainable = set(n for n, _ in resnext.named_parameters()) - frozen
    assert summarize(resnext, trainable) == ["layer3.18-22", "layer4", "fc"]


def test_freeze_head_and_none(resnext):
    assert set(n for n, _ in resnext.named_parameters()) - frozen_before(resnext, "head") == {"fc.weight", "fc.bias"}
    assert frozen_before(resnext, "none") == set()


def test_unknown_freeze_name_lists_nearest(resnext):
    with pytest.raises(UserError) as err:
        frozen_before(resnext, "layer3.81")
    msg = str(err.value)
    assert "'layer3.81' is not a module" in msg and "nearest valid names:" in msg and "layer3.1" in msg


def test_module_ranges(resnext):
    got = resolve_modules(resnext, "layer3.18-")
    assert {n.split(".")[1] for n in got} == {"18", "19", "20", "21", "22"}
    assert {n.split(".")[1] for n in resolve_modules(resnext, "layer3.2-4")} == {"2", "3", "4"}
    with pytest.raises(UserError, match="children 0-22"):
        resolve_modules(resnext, "layer3.30-")


def test_frozen_batchnorm_keeps_running_stats(resnext):
    apply_trainable(resnext, set(n for n, _ in resnext.named_parameters()) - frozen_before(resnext, "layer3.18"))
    set_train_mode(resnext, bn_update=False)
    assert not resnext.layer3[17].bn1.training and resnext.layer3[18].bn1.training and not resnext.bn1.training
    set_train_mode(resnext, bn_update=True)
    assert resnext.bn1.training
    resnext.eval()


def test_head_replaced_for_other_architectures():
    m = create_model("mobilenet_v3_small", 5, "none")
    assert head_name(m) == "classifier.3" and m.classifier[3].out_features == 5
    with pytest.raises(UserError, match="did you mean resnet18"):
        create_model("resnet181", 2, "none")


# -- groups and the seed's recipe: one real training step on resnext101_32x8d ----------------------
def test_resnext_seed_groups_one_step(resnext):
    plan = build_plan(resnext, _opts())
    assert [g.name for g in plan.groups] == ["layer3.18-", "layer4", "fc"]
    assert [s.spec.name for s in plan.stages] == ["head", "finetune"]
    assert plan.stages[1].lrs == {"layer3.18-": 5e-5, "layer4": 5e-5, "fc": 5e-4}
    opts = build_optimizers(resnext, plan.groups, plan.members)
    assert list(opts) == ["adam"]
    lrs = {pg["group"]: pg["lr"] for pg in opts["adam"].param_groups}
    assert lrs == {"layer3.18-": 5e-5, "layer4": 5e-5, "fc": 5e-4}
    # every group exists from the first step, whatever the stage
    assert {pg["group"] for pg in opts["adam"].param_groups} == {"layer3.18-", "layer4", "fc"}
    assert all(pg["weight_decay"] == 0 for pg in opts["adam"].param_groups)

    stage = plan.stages[1]
    apply_trainable(resnext, stage.trainable)
    set_train_mode(resnext, bn_update=False)
    before = {k: v.detach().clone() for k, v in resnext.state_dict().items()}
    torch.manual_seed(0)
    x, y = torch.randn(2, 3, 64, 64), torch.tensor([0, 2])
    loss = torch.nn.functional.cross_entropy(resnext(x), y)
    loss.backward()
    for o in opts.values():
        o.step()
        o.zero_grad(set_to_none=True)
    after = resnext.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert "layer3.18.conv1.weight" in changed and "layer4.2.conv3.weight" in changed and "fc.weight" in changed
    assert not any(k.startswith(("conv1.", "bn1.", "layer1.", "layer2.", "layer3.17.", "layer3.0.")) for k in changed)
    # Adam's first step moves each weight by about lr: 5e-5 in layer4, 5e-4 in fc
    step4 = (after["layer4.0.conv1.weight"] - before["layer4.0.conv1.weight"]).abs().max().item()
    stepfc = (after["fc.weight"] - before["fc.weight"]).abs().max().item()
    assert 4e-5 < step4 < 6e-5 and 4e-4 < stepfc < 6e-4
    resnext.eval()


def test_groups_from_config_and_decay_split():
    m = create_model("resnet18", 3, "none")
    groups = parse_groups([
        {"name": "late", "modules": ["layer4"], "optimizer": "sgd", "lr": 0.01, "weight_decay": 1e-4},
        {"name": "head", "modules": ["head"], "optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05},
        {"name": "rest", "modules": ["*"], "optimizer": "sgd", "lr": 1e-3},
    ])
    members = assign(m, groups)
    assert members["head"] == ["fc.weight", "fc.bias"] and "conv1.weight" in members["rest"]
    opts = build_optimizers(m, groups, members)
    assert sorted(opts) == ["adamw", "sgd"]
    pgs = {(pg["group"], pg["decay"]): pg for o in opts.values() for pg in o.param_groups}
    assert pgs[("late", True)]["weight_decay"] == 1e-4 and pgs[("late", False)]["weight_decay"] == 0
    assert all(p.ndim == 1 for p in pgs[("late", False)]["params"])  # biases and BatchNorm weights: no decay
    assert pgs[("head", False)]["params"][0].shape == (3,)
    set_lrs(opts, {"late": 0.5, "head": 0.25, "rest": 0.125})
    assert pgs[("late", True)]["lr"] == 0.5 and pgs[("head", True)]["lr"] == 0.25


def test_group_and_stage_errors():
    m = create_model("resnet18", 3, "none")
    with pytest.raises(UserError, match="optimizer 'lion'"):
        parse_groups([{"modules": ["fc"], "optimizer": "lion"}])
    with pytest.raises(UserError, match="in both"):
        assign(m, parse_groups([{"name": "a", "modules": ["layer4"]}, {"name": "b", "modules": ["layer4.1"]}]))
    with pytest.raises(UserError, match="no parameter group names"):
        build_plan(m, _opts(groups=[{"modules": ["fc"]}], stages=[{"freeze_until": "layer4", "epochs": 1}]))
    with pytest.raises(UserError, match="freeze_until is required"):
        parse_stages([{"epochs": 1}])
    with pytest.raises(UserError, match="2 gammas for 1 milestones"):
        parse_schedule({"kind": "multistep", "milestones": [2], "gamma": [0.1, 0.1]}, "x")


def test_generic_groups_for_small_models():
    m = create_model("resnet18", 3, "none")
    plan = build_plan(m, _opts(freeze_until="layer4"))
    assert [g.name for g in plan.groups] == ["body", "head"]
    assert summarize(m, plan.stages[1].trainable) == ["layer4", "fc"]


# -- schedules -------------------------------------------------------------------------------------
def test_schedules():
    ms = StageSchedule(ScheduleSpec("multistep", milestones=[3, 6], gamma=[0.2, 0.1]), 8, 10)
    assert [round(5e-5 * ms.factor(e), 12) for e in range(8)] == [5e-5] * 3 + [1e-5] * 3 + [1e-6] * 2
    st = StageSchedule(ScheduleSpec("step", step_size=2, gamma=0.5), 6, 1)
    assert [st.factor(e) for e in range(6)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    cos = StageSchedule(ScheduleSpec("cosine", warmup_epochs=1, min_factor=0.0), 3, 4)
    warm = [cos.factor(0, s) for s in range(4)]
    assert warm == [0.25, 0.5, 0.75, 1.0]
    assert cos.factor(1, 0) == 1.0 and cos.factor(2, 3) < 0.1
    pl = StageSchedule(ScheduleSpec("plateau", patience=1, gamma=0.5, metric="valid_loss"), 10, 1)
    for loss in (1.0, 0.9, 0.95, 0.95, 0.95):
        pl.epoch_end({"valid_loss": loss})
    assert pl.factor(5) == 0.5
    again = StageSchedule(ScheduleSpec("plateau", patience=1, gamma=0.5), 10, 1)
    again.load_state_dict(pl.state_dict())
    assert again.factor(0) == 0.5 and again.plateau_bad == pl.plateau_bad


# -- weights ---------------------------------------------------------------------------------------
def test_local_weights_file_state_dict_and_checkpoint(tmp_path):
    torch.manual_seed(1)
    src = create_model("resnet18", 4, "none")
    sd_path = tmp_path / "w.pth"
    torch.save(src.state_dict(), sd_path)
    m = create_model("resnet18", 4, str(sd_path))
    assert torch.equal(m.layer1[0].conv1.weight, src.layer1[0].conv1.weight) and torch.equal(m.fc.weight, src.fc.weight)
    # a checkpoint-shaped dict with a head for other classes: the backbone loads, the head stays new
    ck_path = tmp_path / "ck.pt"
    torch.save({"format": "datacurate-train/1", "model": src.state_dict()}, ck_path)
    m3 = create_model("resnet18", 3, str(ck_path))
    assert torch.equal(m3.layer4[1].bn2.running_var, src.layer4[1].bn2.running_var) and m3.fc.out_features == 3
    with pytest.raises(UserError, match="does not fit this architecture|has shape"):
        create_model("resnet34", 4, str(sd_path))
    (tmp_path / "junk.pt").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="not a loadable PyTorch weights file"):
        create_model("resnet18", 4, str(tmp_path / "junk.pt"))


class _NotFound(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _NotFound.hits.append(self.path)
        self.send_error(404)

    def log_message(self, *a):
        pass


def _cli(args, capsys, monkeypatch, **env) -> tuple[int, str, str]:
    """Run the real console entry point in-process: (exit code, stdout, stderr)."""
    from datacurate.cli.main import run

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(sys, "argv", ["datacurate", *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as ex:
        run()
    out = capsys.readouterr()
    return ex.value.code, out.out, out.err


def test_imagenet_weights_unavailable_one_line_404(tmp_path, capsys, monkeypatch):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    monkeypatch.delenv("DATACURATE_OFFLINE", raising=False)
    try:
        _make_split(tmp_path)
        code, _, err = _cli(["-C", str(tmp_path), "-q", "train", "--arch", "resnet18", "--device", "cpu"], capsys, monkeypatch,
                            TORCH_HOME=str(tmp_path / "torch-home"),
                            DATACURATE_WEIGHTS_URL=f"http://127.0.0.1:{srv.server_port}/models")
    finally:
        srv.shutdown()
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "ImageNet weights for resnet18" in lines[0] and "--weights PATH" in lines[0]
    assert "404" in lines[0] and _NotFound.hits == ["/models/resnet18-f37072fd.pth"]
    assert not (tmp_path / "runs").exists()


def test_imagenet_weights_offline_switch_and_cache(tmp_path, capsys, monkeypatch):
    _make_split(tmp_path)
    home = tmp_path / "torch-home"
    monkeypatch.setenv("DATACURATE_WEIGHTS_URL", "http://127.0.0.1:9/never")  # a refused port, should it try
    code, _, err = _cli(["-C", str(tmp_path), "train", "--arch", "resnet18"], capsys, monkeypatch,
                        TORCH_HOME=str(home), DATACURATE_OFFLINE="1")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "DATACURATE_OFFLINE" in err and "--weights PATH" in err
    # with the file in torchvision's cache (TORCH_HOME/hub/checkpoints), offline works: no download
    cache = home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(3)
    ref = create_model("resnet18", 1000, "none")
    torch.save(ref.state_dict(), cache / "resnet18-f37072fd.pth")
    m = create_model("resnet18", 3, "imagenet", quiet=True)
    assert torch.equal(m.layer2[0].conv1.weight, ref.layer2[0].conv1.weight) and m.fc.out_features == 3


# -- --plan through the CLI -----------------------------------------------------------------------
def _make_split(root: Path, classes=("cat", "可回收物_易拉罐"), n=2) -> None:
    from PIL import Image

    for split in ("train", "valid"):
        for ci, c in enumerate(classes):
            d = root / "data" / "split" / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", (40, 30), (ci * 120, 50 + i, 90)).save(d / f"{i}.jpg")


def test_plan_cli_resnext(tmp_path):
    _make_split(tmp_path)
    r = CliRunner().invoke(main, ["-C", str(tmp_path), "train", "--plan"])
    assert r.exit_code == 0, r.output
    out = r.output
    assert "stage 1 head: 2 epochs, freeze until head" in out
    assert "stage 2 finetune: 8 epochs, freeze until layer3.18, schedule multistep at epochs [3, 6] x[0.2, 0.1]" in out
    assert "  frozen (46,005,568): conv1, bn1, layer1, layer2, layer3.0-17" in out
    assert "  trains (40,740,866): layer3.18-22, layer4, fc" in out
    assert "group layer3.18-: adam lr 5e-05 -> 1e-05 -> 1e-06 weight_decay 0, 11,991,040 parameters train" in out
    assert "group layer4: adam lr 5e-05 -> 1e-05 -> 1e-06 weight_decay 0, 28,745,728 parameters train" in out
    assert "group fc: adam lr 0.0005 -> 0.0001 -> 1e-05 weight_decay 0, 4,098 parameters train" in out
    assert "group fc: adam lr 0.0005 weight_decay 0, 4,098 parameters train" in out  # stage 1
    assert not (tmp_path / "runs").exists()


def test_plan_default_freeze_every_architecture(tmp_path, capsys, monkeypatch):
    """`train --arch A --plan` alone plans every torchvision classifier; the default depth is the seed's."""
    import warnings

    from datacurate.vision.models import architectures

    warnings.simplefilter("ignore", FutureWarning)  # googlenet/inception's init notice
    picked = {}
    for arch in architectures():
        code, out, err = _cli(["-C", str(tmp_path), "-q", "train", "--arch", arch, "--plan"], capsys, monkeypatch)
        assert code == 0, (arch, err)
        picked[arch] = out.split("freeze_until ", 1)[1].split(":", 1)[0]
        assert f"freeze until {picked[arch]}," in out
    assert picked["resnext101_32x8d"] == "layer3.18" and picked["resnet50"] == "layer4.1"
    assert picked["vit_b_16"] == "encoder.layers.encoder_layer_6" and picked["squeezenet1_1"] == "features.11"


def test_plan_cli_errors(tmp_path, capsys, monkeypatch):
    _make_split(tmp_path)
    (tmp_path / "datacurate.yaml").write_text("train:\n  stages:\n    - {freeze_until: layer9, epochs: 1}\n", encoding="utf-8")
    code, _, err = _cli(["-C", str(tmp_path), "train", "--plan", "--arch", "resnet18"], capsys, monkeypatch)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "'layer9' is not a module" in err and "layer4" in err
    code, _, err = _cli(["-C", str(tmp_path), "train", "--plan", "--arch", "resnet18", "--epochs", "3"], capsys, monkeypatch)
    assert code == 2 and "only apply to the default two stages" in err


def test_resize_center_crop_matches_torchvision():
    import numpy as np
    from PIL import Image
    from torchvision import transforms as T

    from datacurate.vision.crop import resize_center_crop

    rng = np.random.default_rng(0)
    for w, h in ((500, 375), (375, 500), (300, 300), (1000, 260)):
        im = Image.fromarray(rng.integers(0, 256, (h // 10 + 1, w // 10 + 1, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
        ref = np.asarray(T.Compose([T.Resize(255), T.CenterCrop(224)])(im), np.int16)
        got = np.asarray(resize_center_crop(im, 255, 224), np.int16)
        diff = np.abs(got - ref)
        assert got.shape == ref.shape == (224, 224, 3) and diff.max() <= 2 and diff.mean() < 0.05, (w, h, diff.mean())
