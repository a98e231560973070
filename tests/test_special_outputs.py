"""Every writing command with its output pointed at a special file (a device node, a FIFO, a symbolic link
to a file outside the workspace): refused with one line and exit 2, the special file as it was, the file
outside untouched, no partial write left. Only regular files inside the intended folder are ever replaced."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from datacurate import api
from datacurate.demo.data import make_demo_data
from datacurate.core.errors import UserError
from datacurate.core.fsutil import atomic_path, atomic_write_text
from datacurate.core.workspace import Workspace
from test_train_run import TINY, _threads, cli  # noqa: F401 (_threads: autouse)

KINDS = ("device", "fifo", "symlink", "folder")
ROOT_ONLY = "os.mknod of a device node needs root (CAP_MKNOD)"


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    """A demo workspace cleaned, split, and with a tiny finished run `tiny` (train's options in datacurate.yaml)."""
    root = tmp_path_factory.mktemp("special") / "w"
    root.mkdir()
    import yaml

    (root / "datacurate.yaml").write_text(yaml.safe_dump({"train": {**TINY, "epochs": 1}}), encoding="utf-8")
    make_demo_data(root, per_class=5, test_per_class=1)
    api.clean(root)
    api.split(root)
    from datacurate.train.run import train

    train(Workspace.open(root), {"name": "tiny"}, quiet=True)
    return root


def make_special(path: Path, kind: str, outside: Path) -> None:
    """A `kind` special file at `path` (after removing what is there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        import shutil

        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    if kind == "device":
        if os.geteuid() != 0:
            pytest.skip(ROOT_ONLY)
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":  # e.g. reports/clean.html made a folder by hand
        path.mkdir()
        (path / "inside.txt").write_text("mine\n", encoding="utf-8")
    else:
        os.symlink(outside, path)


def same_special(path: Path, kind: str, outside: Path) -> bool:
    mode = os.lstat(path).st_mode
    if kind == "folder":
        return stat.S_ISDIR(mode) and (path / "inside.txt").read_text(encoding="utf-8") == "mine\n"
    return {"device": stat.S_ISCHR, "fifo": stat.S_ISFIFO, "symlink": stat.S_ISLNK}[kind](mode) and \
        outside.read_text(encoding="utf-8") == "precious\n"


def partials(root: Path) -> list[str]:
    return [str(Path(d) / n) for d, _, files in os.walk(root) for n in files if n.startswith(".tmp-") and n.endswith(".part")]


# command (after -C WS), output path relative to the workspace. Each writes that file (or folder) when it is free.
CASES = {
    "export-onnx": (["export", "tiny", "-o", "{ws}/out/t.onnx"], "out/t.onnx"),
    "export-onnx-sidecar": (["export", "tiny", "-o", "{ws}/out/t.onnx"], "out/t.onnx.json"),
    "export-torchscript": (["export", "tiny", "--format", "torchscript", "-o", "{ws}/out/t.pt"], "out/t.pt"),
    "export-default": (["export", "tiny"], "runs/tiny/model.onnx"),
    "fit-head": (["fit-head", "tiny", "--classifier", "logreg"], "runs/tiny/heads/logreg.pkl"),
    "augment-preview": (["augment-preview", "-n", "1", "--per-class", "1"], "reports/augment.html"),
    "evaluate": (["evaluate", "tiny"], "runs/tiny/eval/valid/metrics.json"),
    "split-csv": (["split"], "data/split/split.csv"),
    "split-folder": (["split"], "data/split/valid"),
    "split-balance": (["split"], "reports/balance.html"),
    "split-manifest": (["split", "--manifest", "csv"], "data/split/manifest.csv"),
    "stats": (["stats"], "data/split/stats.json"),
    "report-split": (["report", "split"], "reports/balance.csv"),
    "report-clean": (["report", "clean"], "reports/clean.html"),
    "clean": (["clean"], "reports/clean-decisions.csv"),
    "train": (["train", "--name", "t2", "--epochs", "1"], "runs/t2/config.yaml"),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", list(CASES))
def test_writing_commands_never_replace_a_special_file(done, tmp_path, capsys, monkeypatch, case, kind):
    args, rel = CASES[case]
    if kind == "folder" and case == "split-folder":
        pytest.skip("a folder is what data/split/valid should be")
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n", encoding="utf-8")
    target = done / rel
    make_special(target, kind, outside)
    before = set(partials(done))
    try:
        code, _, err = cli(["-C", str(done), *(a.format(ws=done) for a in args)], capsys, monkeypatch)
        assert code == 2, err
        assert err.count("\n") == 1 and any(w in err for w in ("not a regular file", "should be a folder", "is a folder;")), err
        assert same_special(target, kind, outside)
        assert set(partials(done)) == before
        if case == "export-onnx-sidecar":  # refused before the model is written
            assert not os.path.lexists(done / "out" / "t.onnx")
        if case == "export-onnx":  # and no description beside a refused export
            assert not os.path.lexists(done / "out" / "t.onnx.json")
    finally:
        if kind == "folder":
            import shutil

            shutil.rmtree(target)
        else:
            target.unlink()
        if case == "split-folder":
            api.split(done)  # the folder the case took away


@pytest.mark.parametrize("kind", KINDS[:3])
def test_api_writers_refuse_special_files(done, tmp_path, kind):
    """The Python API's submission writer and the shared atomic writers refuse the same way."""
    from datacurate.train.submission import write_submission

    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n", encoding="utf-8")
    target = tmp_path / "sub.csv"
    make_special(target, kind, outside)
    with pytest.raises(UserError, match="not a regular file"):
        write_submission(Workspace.open(done), "tiny", [str(done / "data" / "split" / "valid")], target)
    with pytest.raises(UserError, match="not a regular file"):
        atomic_write_text(target, "x")
    with pytest.raises(OSError, match="not a regular file"):  # still an OSError for callers that catch those
        with atomic_path(target) as tmp:
            tmp.write_text("x")
    assert same_special(target, kind, outside) and not partials(tmp_path)


def test_export_to_a_null_device_and_proc(done, tmp_path, capsys, monkeypatch):
    """The issue's own cases, on a copy of /dev/null made in a temporary folder (the real one is shared by the
    machine): it stays a device, no null.json appears; /proc is named as a write failure, not as the model."""
    null = tmp_path / "null"
    make_special(null, "device", tmp_path / "unused")
    code, _, err = cli(["-C", str(done), "export", "tiny", "-o", str(null)], capsys, monkeypatch)
    assert code == 2 and f"{null}: it exists and is a character device" in err
    assert stat.S_ISCHR(os.lstat(null).st_mode) and not os.path.lexists(tmp_path / "null.json")
    code, _, err = cli(["-C", str(done), "export", "tiny", "-o", "/proc/x.onnx"], capsys, monkeypatch)
    assert code == 2 and "cannot write /proc/x.onnx" in err and "cannot be exported" not in err, err


def test_two_formats_of_one_stem_keep_their_own_description(done, tmp_path, capsys, monkeypatch):
    onnx, pt = tmp_path / "t.onnx", tmp_path / "t.pt"
    for fmt, path in (("onnx", onnx), ("torchscript", pt)):
        code, _, err = cli(["-C", str(done), "export", "tiny", "--format", fmt, "-o", str(path)], capsys, monkeypatch)
        assert code == 0, err
    assert (tmp_path / "t.onnx.json").is_file() and (tmp_path / "t.pt.json").is_file()
    image = next((done / "data" / "split" / "valid").rglob("*.jpg"))
    for path in (pt, onnx):
        code, out, err = cli(["-C", str(done), "predict", "--model", str(path), str(image)], capsys, monkeypatch)
        assert code == 0 and '"result"' in out, err


def test_no_quiet_success_without_output(done, tmp_path, capsys, monkeypatch):
    """Issue 21 item 12: predict on a folder with no image (jsonl and csv: not even the header) and `report
    clean` where clean never ran are one line and exit 2."""
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("no picture here", encoding="utf-8")
    for fmt in ([], ["--format", "csv"]):
        code, out, err = cli(["-C", str(done), "predict", "tiny", str(empty), *fmt], capsys, monkeypatch)
        assert code == 2 and out == "" and "no image to predict in" in err and err.count("\n") == 1, (out, err)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    make_demo_data(fresh, per_class=3, test_per_class=1)
    api.split(fresh, dry_run=True)  # indexes the files: the catalog exists, clean never ran
    code, out, err = cli(["-C", str(fresh), "report", "clean"], capsys, monkeypatch)
    assert code == 2 and "run `datacurate clean` first" in err and not (fresh / "reports" / "clean.html").exists(), err
    api.clean(fresh)
    code, out, err = cli(["-C", str(fresh), "report", "clean"], capsys, monkeypatch)
    assert code == 0 and "report: reports/clean.html" in out, err
