"""The Python API, the options models, --json and the init template (issue 15 points 7, 8 and 10)."""

from __future__ import annotations

import inspect
import json
import pydoc
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from asuser import cli, demo_workspace
from conftest import ROOT



def one_line(err: str) -> bool:
    return err.strip().count("\n") == 0 and "Traceback" not in err


# -- point 10: the init template states the code's defaults ----------------------------------------
def template_values() -> dict[tuple[str, str], object]:
    """(section, key) -> the value each commented option line of the template states (first one wins)."""
    out, section = {}, None
    from datacurate.template import render

    for line in render().splitlines():
        head = re.match(r"^#? ?(\w+):\s*(#.*)?$", line)
        if head and not line.startswith("#   "):
            section = head.group(1)
            continue
        m = re.match(r"^#   (\w+):(.*)$", line)
        if not m or section is None:
            continue
        text = re.sub(r"\s+#.*$", "", m.group(2)).strip()
        if text and (section, m.group(1)) not in out:
            out[(section, m.group(1))] = yaml.safe_load(text)
    return out


def test_the_init_template_states_the_code_defaults():
    from datacurate.stages import options_model
    from datacurate.core.workspace import DEFAULT_PATHS

    stated = template_values()
    assert ("clean", "threshold") in stated and ("train", "workers") in stated and len(stated) > 60
    for (section, key), value in stated.items():
        if section == "paths":
            assert DEFAULT_PATHS[key] == value, key
            continue
        model = options_model(section)
        assert key in model.model_fields, f"{section}.{key} is not an option"
        default = model.model_fields[key].get_default(call_default_factory=True)
        if isinstance(default, tuple):
            default = list(default)
        assert value == default, f"the template says {section}.{key}: {value!r}; the code's default is {default!r}"
        model.resolve({key: value})  # and it is a valid value
    from datacurate.stages import sections

    every = {(s, k) for s in sections() for k in options_model(s).model_fields}
    assert every - set(stated) == set(), "keys the template leaves out"


def test_every_key_is_a_flag_unless_yaml_only():
    """Each option is its command's --flag, or the one FLAGS_ELSEWHERE table says where (or that it is yaml only)."""
    import click

    from datacurate.cli.main import main
    from datacurate.stages import FLAGS_ELSEWHERE, flag_of, options_model, sections
    from datacurate.template import render

    ctx = click.Context(main)
    flags = {}
    for section in sections():
        for key in options_model(section).model_fields:
            where = flag_of(section, key)
            if where is None:
                assert section in ("paths", "ray") or f"{key}: " in render() and "(yaml only)" in render()
                continue
            command = main.get_command(ctx, where[0])
            assert command is not None, where
            opts = flags.setdefault(where[0], {o for p in command.params for o in p.opts + p.secondary_opts}
                                    | {p.name.upper() for p in command.params if isinstance(p, click.Argument)})
            assert where[1] in opts, f"{section}.{key}: `datacurate {where[0]}` has no {where[1]}"
    assert all(k.split(".")[0] in sections() for k in FLAGS_ELSEWHERE)


# -- point 7: the API -------------------------------------------------------------------------------
def test_import_datacurate_is_light_and_names_the_api():
    code = ("import sys, datacurate\n"
            "from datacurate import Workspace, UserError, scrape, clean, vet, split, train, evaluate, predict\n"
            "assert all(callable(f) for f in (scrape, clean, vet, split, train, evaluate, predict))\n"
            "assert issubclass(UserError, Exception)\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'icrawler', 'cleanlab', 'faiss') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)},
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_signatures_and_help_come_from_the_models():
    from datacurate import clean, evaluate, split, train

    sig = inspect.signature(clean)
    assert sig.parameters["threshold"].default == 10 and sig.parameters["threshold"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["dry_run"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "valid" in inspect.signature(split).parameters and "arch" in inspect.signature(train).parameters
    assert list(inspect.signature(evaluate).parameters)[:3] == ["ws", "run", "data"]
    text = pydoc.render_doc(split, renderer=pydoc.plaintext)
    assert "valid: float = 0.2  -- share of each class's valid-eligible images" in text
    assert "threshold: int = 10  -- near-duplicate Hamming distance in bits" in pydoc.render_doc(clean, renderer=pydoc.plaintext)


@pytest.mark.parametrize("stage, options, needle", [
    ("clean", {"threshhold": 8}, "unknown option clean.threshhold (did you mean threshold?)"),
    ("split", {"valid": 1.5}, "split: valid must be a fraction in [0, 1), got 1.5"),
    ("split", {"seed": "1"}, "split: seed must be a whole number, got '1'"),
    ("vet", {"folds": 1}, "vet: folds must be a whole number of at least 2, got 1"),
    ("scrape", {"per_host": 0}, "scrape: per_host must be a whole number from 1 to 256, got 0"),
    ("train", {"epoch": 3}, "unknown option train.epoch (did you mean epochs?)"),
    ("evaluate", {"batch_size": 0}, "evaluate: batch_size must be a whole number of at least 1, got 0"),
])
def test_bad_options_are_the_same_user_error_from_the_api_the_cli_and_the_yaml(tmp_path: Path, stage, options, needle):
    import datacurate
    from datacurate import UserError, Workspace

    ws = demo_workspace(tmp_path / "ws")
    args = ("first",) if stage == "evaluate" else ()
    switches = {"train": {"plan": True}, "evaluate": {}}.get(stage, {"dry_run": True})
    with pytest.raises(UserError) as caught:
        getattr(datacurate, stage)(Workspace(ws), *args, **switches, **options)
    assert needle in str(caught.value)
    key, value = next(iter(options.items()))
    if not key.endswith(("hold", "epoch")) and not isinstance(value, str):  # click checks names and types itself
        flag = [f"--{key.replace('_', '-')}", str(value)]
        code, _, err = cli("-C", str(ws), stage, *args, *flag, *(["--dry-run"] if stage in ("clean", "split", "vet", "scrape") else []))
        assert code == 2 and needle in err and one_line(err), err
    (ws / "datacurate.yaml").write_text(yaml.safe_dump({stage: options}), encoding="utf-8")
    code, _, err = cli("-C", str(ws), "report", "balance")  # any command: the whole file is checked
    assert code == 2 and f"datacurate.yaml: {needle}" in err and one_line(err), err
    with pytest.raises(UserError, match=re.escape(needle)):
        Workspace(ws)


def test_api_results_match_the_cli_and_frame_their_rows(tmp_path: Path):
    from datacurate import Workspace, clean, split

    ws_dir = demo_workspace(tmp_path / "ws", per_class=6)
    ws = Workspace(str(ws_dir))
    plan = clean(ws, dry_run=True, threshold=8)
    assert repr(plan).startswith("<CleanRun ") and "dry run" in repr(plan) and len(repr(plan)) < 100
    frame = plan.to_frame()
    assert len(frame) == len(plan.decisions) + len(plan.fixes) > 0
    assert set(frame["reason"]) >= {"truncated", "duplicate"}
    code, out, _ = cli("-C", str(ws_dir), "-q", "clean", "--dry-run", "--threshold", "8")
    strip = lambda text: re.sub(r" in \d+\.\d+s", "", text).strip()  # noqa: E731
    assert code == 0 and strip(out) == strip(plan.summary())
    done = clean(ws_dir, threshold=8)  # a folder works as well as a Workspace
    assert sorted(d.path for d in done.decisions) == sorted(d.path for d in plan.decisions)
    assert clean(ws, threshold=8).to_frame().empty  # again: nothing left to set aside
    parts = split(ws, valid=0.25, dry_run=True)
    assert not (ws_dir / "data" / "split").exists()
    code, out, _ = cli("-C", str(ws_dir), "-q", "split", "--valid", "0.25", "--dry-run")
    assert code == 0 and out.strip() == parts.summary().strip()
    frame = parts.to_frame()
    assert list(frame.columns) == ["path", "class", "source", "split"] and set(frame["split"]) == {"train", "valid"}
    assert parts.to_dict()["counts"] == frame["split"].value_counts().to_dict()


def test_the_api_takes_the_workspace_lock(tmp_path: Path):
    from datacurate import UserError, split

    ws = demo_workspace(tmp_path / "ws")
    (ws / ".datacurate").mkdir(exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom datacurate.core.lock import workspace_lock\n"
         f"with workspace_lock({str(ws)!r}, 'clean'):\n    print('held', flush=True)\n    time.sleep(30)"],
        stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match="is busy"):
            split(ws, wait=0)
    finally:
        holder.kill()
        holder.wait()
    assert split(ws, wait=0).counts["train"] > 0


# -- point 8: --json on every command that prints a summary ----------------------------------------
def test_json_on_every_summary_command(tmp_path: Path):
    ws = tmp_path / "ws"
    w = ("-C", str(ws))
    commands = [("demo-data", str(ws), "--per-class", "4"), (*w, "init"), (*w, "clean", "--dry-run"), (*w, "clean"),
                (*w, "restore", "--dry-run"), (*w, "split"), (*w, "stats"), (*w, "report", "balance"),
                (*w, "scrape", "--dry-run", "-n", "2", "--class", "circle")]
    for args in commands:
        code, out, err = cli("-q", *args, "--json")
        assert code == 0, (args, err)
        data = json.loads(out)
        assert isinstance(data, dict) and data, (args, out)
    from datacurate.cli.main import COMMANDS, main

    missing = []
    for name in COMMANDS:
        command = main.get_command(None, name)
        if name != "predict" and not any(p.name == "as_json" for p in command.params):
            missing.append(name)
    assert missing == []


def test_bad_arguments_of_the_api_are_user_errors(tmp_path: Path):
    """Issue 21 item 10: the run switches, paths and the workspace itself, checked as the CLI checks them."""
    from datacurate import Workspace, clean, predict, split
    from datacurate.demo.data import make_demo_data
    from datacurate.core.errors import UserError

    make_demo_data(tmp_path, per_class=3, test_per_class=1)
    ws = Workspace(tmp_path)
    assert Workspace(os.fsencode(str(tmp_path))).root == ws.root  # bytes: a file-system path too
    bad = [(lambda: Workspace(5), "a workspace is a folder"),
           (lambda: clean(ws, True), "clean: paths must be a file or folder"),
           (lambda: clean(ws, [5]), "clean: paths must be a file or folder"),
           (lambda: clean(ws, wait="x"), "clean: wait (--wait) must be a number of seconds"),
           (lambda: clean(ws, wait=-1), "clean: wait (--wait) must be a number of seconds, at least 0, got -1"),
           (lambda: split(ws, fresh="no"), "split: fresh must be true or false, got 'no'"),
           (lambda: split(ws, dry_run="no"), "split: dry_run must be true or false, got 'no'"),
           (lambda: predict(ws, "r1", None), "predict needs at least one image or folder"),
           (lambda: predict(ws, 7, ["x.jpg"]), "predict: run must be a run's name")]
    for call, needle in bad:
        with pytest.raises(UserError, match=re.escape(needle)):
            call()
    assert not (tmp_path / "data" / "split").exists() and not (tmp_path / "data" / "quarantine").exists()
    folder = sorted((tmp_path / "data" / "original").iterdir())[0]
    one = clean(ws, str(folder), dry_run=True)  # one path, not its characters
    assert f"{len(list(folder.iterdir()))} files checked" in one.summary(), one.summary()
