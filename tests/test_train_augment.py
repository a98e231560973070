"""Augmentation policies: each option changes the input the way it says; presets, overrides, bad input; the preview page."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from datacurate.core.errors import UserError
from datacurate.vision import augment
from datacurate.vision.augment import Policy, build, parse_policy
from datacurate.vision.crop import resize_center_crop
from datacurate.vision.data import ImageSet, Preprocess
from test_train_run import CLASSES, cli, make_split

RESIZE, CROP = 40, 32


def picture() -> Image.Image:
    """A square picture with no symmetry: a gradient plus a bright block in the top-left corner."""
    y, x = np.mgrid[0:RESIZE, 0:RESIZE]
    a = np.stack([x * 6, y * 6, (x + 2 * y) * 2], -1).clip(0, 255).astype(np.uint8)
    a[6:16, 8:14] = 255
    return Image.fromarray(a)


def plain() -> torch.Tensor:
    return torch.from_numpy(np.array(resize_center_crop(picture(), RESIZE, CROP))).permute(2, 0, 1).contiguous()


def run(policy: dict, seed: int = 0) -> torch.Tensor:
    return augment.apply(build(parse_policy(policy), RESIZE, CROP), picture(), seed)


def test_flips_and_quarter_turns_do_what_they_say():
    p = plain()
    assert torch.equal(run({"hflip": 1.0}), p.flip(-1))
    assert torch.equal(run({"vflip": 1.0}), p.flip(-2))
    assert torch.equal(run({"hflip": 0.0, "vflip": 0.0}), p)
    turns = set()
    for seed in range(12):
        out = run({"rotate90": 1.0}, seed)
        k = next(k for k in (1, 2, 3) if torch.equal(out, torch.rot90(p, k, (1, 2))))  # counter-clockwise k quarters
        turns.add(k)
    assert turns == {1, 2, 3}


def test_rotation_crops_and_erasing():
    p = plain()
    rot = run({"rotate": 30}, seed=3)
    assert rot.shape == p.shape and not torch.equal(rot, p) and int(rot[:, 0, 0].sum()) == 0  # a corner turned black
    rrc = run({"resized_crop": [0.1, 0.3]}, seed=1)
    assert rrc.shape == (3, CROP, CROP) and not torch.equal(rrc, p)
    big = torch.from_numpy(np.array(resize_center_crop(picture(), RESIZE, CROP + 8))).permute(2, 0, 1)
    found = set()
    for seed in range(6):  # every output is a window of the larger centre crop, and the window moves
        out = run({"crop_jitter": 4}, seed)
        hit = {(y, x) for y in range(9) for x in range(9) if torch.equal(out, big[:, y:y + CROP, x:x + CROP])}
        assert hit
        found |= hit
    assert len(found) > 1
    er = run({"erasing": 1.0}, seed=2)
    changed = (er != p).any(0)
    assert changed.any() and (er[:, changed] == 0).all()  # a rectangle set to 0


def test_colour_options_each_change_their_component():
    p = plain().float()
    b = run({"brightness": 0.5}, seed=4).float()
    assert abs(b.mean() - p.mean()) > 2 and torch.allclose(b / b.mean(), p / p.mean(), atol=0.05)  # a scale
    c = run({"contrast": 0.8}, seed=4).float()
    assert abs(c.std() - p.std()) > 1
    g = run({"grayscale": 1.0})
    assert torch.equal(g[0], g[1]) and torch.equal(g[1], g[2])
    s = run({"saturation": 0.9}, seed=6).float()
    assert not torch.equal(s, p) and abs(s.mean() - p.mean()) < abs(b.mean() - p.mean())
    h = run({"hue": 0.4}, seed=7).float()
    assert not torch.equal(h, p)


@pytest.mark.parametrize("auto", ["randaugment", "trivialaugment", "autoaugment"])
def test_auto_policies_run_and_change_images(auto):
    outs = [run({"auto": auto}, seed) for seed in range(6)]
    assert all(o.dtype == torch.uint8 and o.shape == (3, CROP, CROP) for o in outs)
    assert any(not torch.equal(o, plain()) for o in outs)


def test_deterministic_per_seed_epoch_image_and_independent_of_caller_rng(tmp_path):
    path = tmp_path / "a.png"
    picture().save(path)
    ds = ImageSet([(str(path), 0)] * 3, Preprocess(RESIZE, CROP), policy=parse_policy("strong"), seed=1)
    torch.manual_seed(0)
    a = ds[(1, 2)][0]
    state = torch.get_rng_state()
    b = ds[(1, 2)][0]
    assert torch.equal(a, b) and torch.equal(state, torch.get_rng_state())  # the caller's generator is untouched
    assert not torch.equal(ds[(1, 3)][0], a) or not torch.equal(ds[(2, 2)][0], a)


def test_presets_overrides_and_descriptions():
    assert parse_policy("characters") == Policy(brightness=0.05)
    assert parse_policy(None) == Policy(brightness=0.05)  # the default stays the characters recipe
    assert parse_policy("none") == Policy()
    g = parse_policy({"preset": "garbage", "vflip": 0.0, "brightness": 0.1})
    assert g.hflip == 0.5 and g.vflip == 0.0 and g.rotate90 > 0 and g.resized_crop and g.brightness == 0.1
    assert parse_policy({"hflip": 0.5}) == Policy(hflip=0.5)  # a mapping without preset starts from none
    text = augment.describe(parse_policy("strong"))
    assert "random resized crop" in text and "TrivialAugmentWide" in text and "random erasing" in text


@pytest.mark.parametrize("raw, message", [
    ("nope", "unknown preset 'nope'"),
    ({"preset": "garbage", "flip": 0.5}, "unknown transform option 'flip'"),
    ({"hflip": 1.5}, "between 0 and 1"),
    ({"erasing": -0.1}, "at least 0"),
    ({"rotate90": float("nan")}, "finite number"),
    ({"hue": 0.7}, "hue must be between 0 and 0.5"),
    ({"resized_crop": [0.5, 0.2]}, "0 < low <= high <= 1"),
    ({"auto": "augmix"}, "is not one of"),
    (["hflip"], "preset name"),
])
def test_bad_policies_are_one_clear_error(raw, message):
    with pytest.raises(UserError, match=message):
        parse_policy(raw)


def test_bad_train_options_exit_2(tmp_path, capsys, monkeypatch):
    base = ["-C", str(tmp_path), "train", "--plan", "--arch", "resnet18", "--freeze-until", "layer4"]
    for extra, message in ((["--augment", "sharp"], "unknown preset 'sharp'"),
                           (["--label-smoothing", "nan"], "label_smoothing must be a finite number"),
                           (["--mixup", "inf"], "finite number"),
                           (["--ema", "1.5"], "between 0 and 1"),
                           (["--mix-switch", "-0.5"], "mix_switch must be a number between 0 and 1"),
                           (["--teacher-weight", "2"], "between 0 and 1"),
                           (["--arch", "mobilenet_v2", "--head", "cbam"], "--head cbam needs the last feature map"),
                           (["--zero-gamma"], "--zero-gamma initialises fresh residual blocks")):
        code, _, err = cli(base + extra, capsys, monkeypatch)
        assert code == 2 and message in err and err.count("error") == 1 and "Traceback" not in err, (extra, err)
    (tmp_path / "datacurate.yaml").write_text(textwrap.dedent("""\
        train:
          augment: {preset: garbage, vflip: 2}
        """), encoding="utf-8")
    code, _, err = cli(base, capsys, monkeypatch)
    assert code == 2 and "train.augment.vflip must be between 0 and 1" in err
    (tmp_path / "datacurate.yaml").write_text("train:\n  label_smoothing: .nan\n", encoding="utf-8")
    code, _, err = cli(base, capsys, monkeypatch)
    assert code == 2 and "finite number" in err


def test_plan_prints_augmentation_head_and_tricks(tmp_path, capsys, monkeypatch):
    (tmp_path / "datacurate.yaml").write_text("train:\n  brightness: 0.2\n", encoding="utf-8")  # the older key still works
    code, out, err = cli(["-C", str(tmp_path), "train", "--plan", "--arch", "resnet18", "--weights", "none", "--freeze-until", "layer4",
                          "--head", "mlp", "--head-hidden", "64", "--mixup", "0.2", "--cutmix", "1", "--ema", "0.999",
                          "--label-smoothing", "0.1", "--zero-gamma", "--norm", "group"], capsys, monkeypatch)
    assert code == 0, err
    assert "augmentation (characters + overrides): centre crop, colour jitter brightness 0.2" in out
    assert "head: mlp (hidden 64)" in out and "fc.hidden" not in out
    tricks = next(line for line in out.splitlines() if line.startswith("tricks: "))
    for word in ("label smoothing 0.1", "mixup alpha 0.2", "cutmix alpha 1", "weight EMA decay 0.999", "zero-gamma",
                 "GroupNorm", "no weight decay on biases"):
        assert word in tricks


def test_augment_preview_page_and_grid(tmp_path, capsys, monkeypatch):
    make_split(tmp_path)
    code, out, err = cli(["-C", str(tmp_path), "augment-preview", "--augment", "garbage", "-n", "3", "--per-class", "2"],
                         capsys, monkeypatch)
    assert code == 0, err
    assert "vertical flip" in out and "wrote reports/augment.html and reports/augment.png: 6 images of 3 classes" in out
    page = (tmp_path / "reports" / "augment.html").read_text(encoding="utf-8")
    assert all(c in page for c in CLASSES) and page.count("<img ") == 6 * 4 and "epoch 3" in page
    assert (tmp_path / "reports" / "augment.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "reports").glob(".tmp-*"))
    # the default policy comes from datacurate.yaml; a bad one is one line
    (tmp_path / "datacurate.yaml").write_text("train:\n  augment: {preset: none, grayscale: 1.0}\n", encoding="utf-8")
    code, out, _ = cli(["-C", str(tmp_path), "augment-preview", "-n", "1", "--per-class", "1"], capsys, monkeypatch)
    assert code == 0 and "grayscale p=1" in out
    code, _, err = cli(["-C", str(tmp_path), "augment-preview", "--augment", "wild"], capsys, monkeypatch)
    assert code == 2 and "--augment: unknown preset 'wild'" in err


def test_augment_preview_flag_is_trains_augment(tmp_path, capsys, monkeypatch):
    """augment-preview --augment PRESET, as train has it; --policy stays a hidden alias."""
    make_split(tmp_path)
    code, out, _ = cli(["augment-preview", "--help"], capsys, monkeypatch)
    assert code == 0 and "--augment PRESET" in out and "--policy" not in out
    for flag in ("--augment", "--policy"):
        code, out, err = cli(["-C", str(tmp_path), "augment-preview", flag, "garbage", "-n", "1", "--per-class", "1"],
                             capsys, monkeypatch)
        assert code == 0 and "vertical flip" in out, (flag, err)
    code, _, err = cli(["-C", str(tmp_path), "augment-preview", "--augment", "garbage", "--policy", "none"], capsys, monkeypatch)
    assert code == 2 and "disagree" in err


@pytest.mark.parametrize("recipe", ["characters", "garbage", "cub200", "demo"])
def test_every_recipe_states_its_augmentation_and_validates(recipe):
    import yaml

    from datacurate.train.options import TrainOptions
    from test_train_run import ROOT

    data = yaml.safe_load((ROOT / "pipelines" / f"{recipe}.yaml").read_text(encoding="utf-8"))
    assert "augment" in data["train"]
    opts = TrainOptions.resolve(data["train"]).as_dict()
    policy = parse_policy(opts["augment"])
    if recipe in ("characters", "demo"):
        assert policy == Policy(brightness=0.05)  # brightness only: no flips, rotation or hue
    elif recipe == "garbage":
        assert policy.hflip and policy.vflip and policy.rotate90 and policy.resized_crop
        assert opts["label_smoothing"] > 0 and any(s.get("schedule", {}).get("kind") == "cosine" for s in opts["stages"])
        assert data["evaluate"]["tta"] == "flip"
    else:
        assert opts["img_size"] >= 448 and policy.resized_crop and opts["head"] in ("cbam", "bilinear")
