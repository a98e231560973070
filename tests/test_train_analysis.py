"""Error analysis after training (issue 15 point 4) and the training bar (point 8): predictions.csv, errors.html,
the normalised confusion matrix as SVG at 200 classes with CJK names, runs/NAME/report.html, predict --format csv,
train --tensorboard, running loss / img/s / lr on the bar and in a CI log."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import sys
import textwrap
import warnings
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
import torch

from datacurate.train import meter
from datacurate.train.run import train
from datacurate.core.workspace import Workspace
from test_train_run import CLASSES, TINY, _threads, cli, history, make_split  # noqa: F401 (_threads: autouse)

GROUPS = textwrap.dedent("""\
    train:
      groups:
        - {name: body, modules: ["*"], optimizer: adam, lr: 0.001}
        - {name: head, modules: [head], optimizer: adam, lr: 0.01}
    """)


class Page(HTMLParser):
    """The links, images, table rows and text of an HTML page (the page must parse)."""

    def __init__(self, path: Path):
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.classes: list[tuple[str, str]] = []  # (tag, class attribute)
        self.text: list[str] = []
        self.feed(path.read_text(encoding="utf-8"))
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "img":
            self.images.append(a["src"])
        if a.get("class"):
            self.classes.append((tag, a["class"]))

    def handle_data(self, data):
        self.text.append(data)

    @property
    def body(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture(scope="module")
def run_ws(tmp_path_factory):
    """One finished run with --tensorboard, through the Python API."""
    root = make_split(tmp_path_factory.mktemp("ws"))
    (root / "datacurate.yaml").write_text(GROUPS, encoding="utf-8")
    res = train(Workspace.open(root), {**TINY, "name": "r", "tensorboard": True}, quiet=True)
    return root, res


# -- the training bar -----------------------------------------------------------------------------
class TTY(io.StringIO):
    def isatty(self):
        return True


def _drive(m: meter.Meter) -> None:
    for i, _ in enumerate(m):
        m.update(torch.tensor(0.5 * 2 * (i + 1), dtype=torch.float64), 2 * (i + 1))
    m.close()


def test_bar_shows_running_loss_rate_and_lr_on_a_terminal(monkeypatch):
    monkeypatch.setattr(meter, "REFRESH", 0.0)
    said: list[str] = []
    tty = TTY()
    _drive(meter.Meter(range(4), 4, "finetune 1/2 train", quiet=False, echo=said.append,
                       lrs=lambda: {"body": 1e-4, "head": 1e-3}, stream=tty))
    out = tty.getvalue()
    assert "finetune 1/2 train" in out and "loss 0.5000" in out and "img/s" in out and "lr 0.0001/0.001" in out
    assert said == []  # the bar, no log lines
    quiet = TTY()
    _drive(meter.Meter(range(4), 4, "x", quiet=True, echo=said.append, stream=quiet))
    assert quiet.getvalue() == "" and said == []


def test_bar_on_a_log_is_periodic_lines_not_carriage_returns(monkeypatch):
    monkeypatch.setattr(meter, "LINE_EVERY", 0.0)
    said: list[str] = []
    log = io.StringIO()
    _drive(meter.Meter(range(3), 3, "head 1/1 train", quiet=False, echo=said.append, lrs=lambda: {"head": 5e-4}, stream=log))
    assert log.getvalue() == ""
    assert said[0].startswith("head 1/1 train: 1/3 batches, loss 0.5000, ") and said[0].endswith("img/s, lr head 0.0005")
    assert len(said) == 3
    monkeypatch.setattr(meter, "LINE_EVERY", 60.0)
    said.clear()
    _drive(meter.Meter(range(3), 3, "head 1/1 train", quiet=False, echo=said.append, stream=io.StringIO()))
    assert said == []  # a short pass: only the loop's epoch line


def test_train_cli_log_has_one_line_per_epoch_with_rate_and_lr(tmp_path, capsys, monkeypatch):
    make_split(tmp_path)
    (tmp_path / "datacurate.yaml").write_text(GROUPS, encoding="utf-8")
    args = ["-C", str(tmp_path), "train", "--arch", "resnet18", "--weights", "none", "--img-size", "32", "--batch-size", "4",
            "--workers", "0", "--device", "cpu", "--freeze-until", "layer4.1", "--head-epochs", "1", "--epochs", "1", "--name", "b"]
    code, out, err = cli(args, capsys, monkeypatch)
    assert code == 0, err
    assert "\r" not in err  # stderr is not a terminal here: no bar redraws
    epochs = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2 and len(err.splitlines()) <= 4
    assert epochs[0].endswith("img/s | lr head 0.01") and " s, " in epochs[0]  # stage 1 trains the head group alone
    assert epochs[1].endswith("lr body 0.001, head 0.01")
    assert "report.html" in out and not (tmp_path / "runs" / "b" / "tensorboard").exists()


# -- tensorboard ------------------------------------------------------------------------------------
def test_tensorboard_scalars_read_back(run_ws):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, res = run_ws
    acc = EventAccumulator(str(res.run_dir / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"loss/train", "loss/valid", "accuracy/train", "accuracy/valid", "lr/body", "lr/head", "speed/train_images_per_s"} <= tags
    rows = history(res.run_dir)
    for tag, col in (("loss/train", "train_loss"), ("accuracy/valid", "valid_acc"), ("lr/head", "lr_head")):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [int(r["epoch"]) for r in rows]
        assert all(math.isclose(e.value, float(r[col]), rel_tol=1e-4) for e, r in zip(events, rows))
    assert all(e.value > 0 for e in acc.Scalars("speed/train_images_per_s"))


def test_tensorboard_missing_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    make_split(tmp_path)
    for mod in ("tensorboard", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, mod, None)  # `import tensorboard` now raises ImportError
    code, out, err = cli(["-C", str(tmp_path), "train", "--arch", "resnet18", "--weights", "none", "--device", "cpu",
                          "--tensorboard", "--name", "tb"], capsys, monkeypatch)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "pip install 'datacurate[tensorboard]'" in err
    assert not (tmp_path / "runs" / "tb").exists()
    (tmp_path / "datacurate.yaml").write_text("train:\n  tensorboard: maybe\n", encoding="utf-8")
    code, _, err = cli(["-C", str(tmp_path), "train", "--plan"], capsys, monkeypatch)
    assert code == 2 and "train: tensorboard must be true or false" in err


# -- evaluate: predictions.csv, errors.html, the run report ---------------------------------------------
def _swapped(root: Path) -> Path:
    """The valid images under their own class and again under the next class: at least half are wrong."""
    folder = root / "twice"
    for i, c in enumerate(CLASSES):
        other = CLASSES[(i + 1) % len(CLASSES)]
        for f in sorted((root / "data" / "split" / "valid" / c).iterdir()):
            for label in (c, other):
                (folder / label).mkdir(parents=True, exist_ok=True)
                shutil.copy(f, folder / label / f"{c}-{f.name}")
    return folder


def test_evaluate_writes_predictions_errors_page_and_refreshes_the_report(run_ws, capsys, monkeypatch):
    root, res = run_ws
    report = res.run_dir / "report.html"
    page = Page(report)
    assert "history.svg" in page.images and "Not evaluated yet" in page.body
    best_rows = [c for c in page.classes if c == ("tr", "best")]
    assert len(best_rows) == 1 and f"best epoch {res.best_epoch} by valid_acc" in page.body
    assert "stage 1 head: 1 epochs" in page.body and "group head: adam lr 0.01" in page.body  # the plan
    for c in CLASSES:
        assert f"{c} 4 2 6" in page.body  # data: train, valid, total per class
    assert (res.run_dir / "history.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")

    data = _swapped(root)
    code, out, err = cli(["-C", str(root), "evaluate", "r", str(data), "--worst", "2", "--examples", "2"], capsys, monkeypatch)
    assert code == 0, err
    ev = res.run_dir / "eval" / "twice"
    assert "predictions.csv errors.html" in out and f"run report: {report}" in out
    with open(ev / "predictions.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["path", "true", "predicted", "probability", "loss"] and len(rows) == 12
    assert {r["path"] for r in rows} == {f"twice/{p.parent.name}/{p.name}" for p in data.rglob("*.jpg")}
    assert all(r["true"] == r["path"].split("/")[1] for r in rows)
    # probability and loss are the model's: the same image under its two labels has one prediction, two losses
    from datacurate.train.predict import predict

    one = next(r for r in rows if r["path"] == "twice/cat/cat-0.jpg")
    rec = next(predict(Workspace.open(root), "r", [str(root / one["path"])], top=3, device="cpu"))
    probs = dict(rec["top"])
    assert one["predicted"] == rec["result"] and math.isclose(float(one["probability"]), probs[rec["result"]], abs_tol=2e-6)
    assert math.isclose(float(one["loss"]), -math.log(probs["cat"]), rel_tol=1e-4)
    wrong = [r for r in rows if r["true"] != r["predicted"]]
    assert len(wrong) >= 6
    metrics = json.loads((ev / "metrics.json").read_text(encoding="utf-8"))
    assert math.isclose(metrics["accuracy"], 1 - len(wrong) / 12)
    # confusion, normalised: each true class's row sums to 1
    with open(ev / "confusion_normalized.csv", encoding="utf-8", newline="") as fh:
        norm = list(csv.reader(fh))
    assert norm[0][1:] == sorted(CLASSES) and all(math.isclose(sum(map(float, r[1:])), 1, abs_tol=1e-3) for r in norm[1:])
    ET.parse(ev / "confusion_normalized.svg")
    # errors.html: per true class at most --worst wrong images, most confident first, each beside 2 train images of the
    # class it was taken for; every thumbnail and every link resolves to a file
    errors = Page(ev / "errors.html")
    cards = [c for c in errors.classes if c[1] == "card wrong"]
    per_class = {c: sum(r["true"] == c for r in wrong) for c in CLASSES}
    assert len(cards) == sum(min(2, n) for n in per_class.values())
    assert "predictions.csv" in errors.links and f"{len(wrong)} of 12 images predicted wrong" in errors.body
    for src in errors.images:
        assert (ev / src).is_file() and (ev / src).read_bytes()[:2] == b"\xff\xd8"
    files = [unquote(h) for h in errors.links if not h.startswith("#") and h != "predictions.csv"]
    assert all((ev / f).resolve().is_file() for f in files)
    assert sum("/data/split/train/" in f for f in files) == 2 * len(cards)
    worst_cat = max((r for r in wrong if r["true"] == "cat"), key=lambda r: float(r["probability"]), default=None)
    if worst_cat:
        assert f"{worst_cat['path']} taken for {worst_cat['predicted']} (p={float(worst_cat['probability']):.3f})" in errors.body
    # the report now shows this evaluation and links its errors page
    page = Page(report)
    assert "eval/twice/errors.html" in page.links and "eval/twice/confusion_normalized.svg" in page.images
    assert f"accuracy {metrics['accuracy']:.4f}" in page.body
    # again: the same files, the thumbnails reused
    thumbs = sorted(p.name for p in (ev / "thumbs").iterdir())
    code, out2, err = cli(["-C", str(root), "evaluate", "r", str(data), "--worst", "2", "--examples", "2"], capsys, monkeypatch)
    assert code == 0, err and out2 == out
    assert sorted(p.name for p in (ev / "thumbs").iterdir()) == thumbs
    code, _, err = cli(["-C", str(root), "evaluate", "r", "--worst", "-1"], capsys, monkeypatch)
    assert code == 2 and "evaluate: worst must be a whole number of at least 0" in err


def test_confusion_svg_at_200_classes_keeps_every_label_and_chinese_glyphs(tmp_path):
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    from datacurate.train.evaluate import _matrix_csv, normalize_rows
    from datacurate.train.outputs import _pyplot, plot_confusion

    n = 200
    classes = [f"class_{i:03d}" for i in range(n)]
    classes[7], classes[150] = "条纹_stripes", "可回收物_易拉罐"
    gen = torch.Generator().manual_seed(0)
    true = torch.arange(n).repeat_interleave(5)
    pred = torch.where(torch.rand(len(true), generator=gen) < 0.8, true, torch.randint(0, n, (len(true),), generator=gen))
    matrix = [[0] * n for _ in range(n)]
    for t, p in zip(true.tolist(), pred.tolist()):
        matrix[t][p] += 1
    normalized = normalize_rows(matrix)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_confusion(tmp_path / "confusion_normalized.svg", normalized, classes, normalized=True)
    assert [str(w.message) for w in caught if "missing from font" in str(w.message)] == []
    rows = list(csv.reader(io.StringIO(_matrix_csv(classes, normalized))))
    assert rows[0][1:] == classes and all(math.isclose(sum(map(float, r[1:])), 1) for r in rows[1:])
    assert normalize_rows([[0, 0], [1, 3]]) == [[0.0, 0.0], [0.25, 0.75]]
    tree = ET.parse(tmp_path / "confusion_normalized.svg", parser=ET.XMLParser(target=ET.TreeBuilder(insert_comments=True)))
    # glyphs are paths (svg.fonttype path): each drawn text is a comment naming it, then its glyphs
    texts = [el.text.strip() for el in tree.iter() if el.tag is ET.Comment]
    assert all(texts.count(c) == 2 for c in classes), "each class labels a row and a column"
    ids = {el.get("id") for el in tree.iter() if el.get("id")}
    used = {v.lstrip("#") for el in tree.iter() for k, v in el.attrib.items() if k.endswith("href")}
    plt = _pyplot()
    for ch in "条纹可回收物易拉罐":
        glyph = None
        for family in plt.rcParams["font.sans-serif"]:
            path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
            font = FT2Font(path)
            if font.get_char_index(ord(ch)):
                glyph = f"{font.postscript_name}-{font.get_char_index(ord(ch)):x}"
                break
        assert glyph, f"no font of the list has {ch!r}"
        assert glyph in ids and glyph in used, f"{ch!r} is not drawn with its own glyph (tofu)"
    svg = (tmp_path / "confusion_normalized.svg").read_text(encoding="utf-8")
    width = float(ET.fromstring(svg).get("width").rstrip("pt"))
    assert width > 25 * 72  # scaled to the class count: about 0.14 in per class


# -- predict --format csv ------------------------------------------------------------------------------
def test_predict_csv_submission(run_ws, tmp_path, capsys, monkeypatch):
    root, _ = run_ws
    test = tmp_path / "test"
    test.mkdir()
    for c in CLASSES:
        shutil.copy(root / "data" / "split" / "valid" / c / "0.jpg", test / f"{c}_0.jpg")
    code, out, err = cli(["-C", str(root), "predict", "r", str(test)], capsys, monkeypatch)
    assert code == 0, err
    jsonl = {Path(r["path"]).stem: r for r in map(json.loads, out.splitlines())}
    code, out, err = cli(["-C", str(root), "predict", "r", str(test), "--format", "csv"], capsys, monkeypatch)
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["id", "label"] and sorted(r[0] for r in rows[1:]) == sorted(f"{c}_0" for c in CLASSES)
    assert all(label == jsonl[i]["result"] for i, label in rows[1:])
    labels = root / "labels.json"
    labels.write_text(json.dumps({"cat": "猫"}, ensure_ascii=False), encoding="utf-8")
    code, out, err = cli(["-C", str(root), "predict", "r", str(test), "--format", "csv", "--columns", "id:ImageId,label:Label,probability",
                          "--label-map", str(labels)], capsys, monkeypatch)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["ImageId", "Label", "probability"]
    for r in rows:
        rec = jsonl[r["ImageId"]]
        assert r["Label"] == ("猫" if rec["result"] == "cat" else rec["result"])
        assert float(r["probability"]) == pytest.approx(rec["top"][0][1], abs=1e-6)
    # bad column: one line, exit 2, nothing on stdout
    code, out, err = cli(["-C", str(root), "predict", "r", str(test), "--format", "csv", "--columns", "id,lable"], capsys, monkeypatch)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "unknown column 'lable'" in err
    # an undecodable image: named on stderr, no row, exit 2 at the end
    (test / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    code, out, err = cli(["-C", str(root), "predict", "r", str(test), "--format", "csv"], capsys, monkeypatch)
    assert code == 2 and len(out.splitlines()) == 1 + len(CLASSES) and "broken.jpg: could not decode" in err
    assert "no row in the submission" in err
    # the Python API writes the file
    from datacurate.train.submission import write_submission

    sub = write_submission(Workspace.open(root), "r", [str(test)], tmp_path / "sub.csv", columns="id,label,path", device="cpu")
    assert sub.rows == len(CLASSES) and [e["path"] for e in sub.errors] == [str(test / "broken.jpg")]
    text = (tmp_path / "sub.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "id,label,path" and len(text.splitlines()) == 1 + len(CLASSES)
    # predict.columns in datacurate.yaml is checked when the workspace opens
    cfg = root / "datacurate.yaml"
    try:
        cfg.write_text(GROUPS + "predict:\n  columns: id,score\n", encoding="utf-8")
        code, _, err = cli(["-C", str(root), "predict", "r", str(test)], capsys, monkeypatch)
        assert code == 2 and "predict.columns: unknown column 'score'" in err
    finally:
        cfg.write_text(GROUPS, encoding="utf-8")
