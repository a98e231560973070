"""README.md and docs/*.md say what the program does: every flag and key they name exists, every
options table is the one the option models give, and README's quickstart and Python example run."""

from __future__ import annotations

import random
import re
from pathlib import Path

import click
import pytest
from PIL import Image

from asuser import cli
from conftest import ROOT

FILE_SUFFIXES = {"html", "csv", "json", "jsonl", "md", "yaml", "py", "png", "jpg", "txt", "pt", "onnx", "sqlite"}
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "RESULTS.md"]
# Flags of other programs that the docs quote (pip, torchrun, ray, pytest, git...).
FOREIGN = {"--upgrade", "--head", "--address", "--port", "--nproc-per-node", "--nnodes", "--node-rank",
           "--master-addr", "--master-port", "--rdzv-endpoint", "--rdzv-backend", "--rdzv-id", "--standalone",
           "--num-cpus", "--num-gpus", "--block", "--index-url", "--extra-index-url", "--durations", "--smoke",
           "--user", "--no-deps", "--dashboard-host", "--include-dashboard", "--nproc_per_node", "--cov",
           "--logdir", "--rdzv-conf"}


def _flags() -> set[str]:
    """Every option of every datacurate command, and the global ones."""
    from datacurate.cli.main import COMMANDS, main

    ctx = click.Context(main)
    out = {o for p in main.params for o in p.opts + p.secondary_opts}
    for name in COMMANDS:
        out |= {o for p in main.get_command(ctx, name).params for o in p.opts + p.secondary_opts}
    return out


def _bench_flags() -> set[str]:
    """The benchmarks' own flags (benchmarks/*.py), which RESULTS.md and the pages quote."""
    return {f for script in (ROOT / "benchmarks").glob("*.py")
            for f in re.findall(r"[\"'](--[a-z][a-z0-9-]*)[\"']", script.read_text(encoding="utf-8"))}


def test_every_flag_the_docs_name_exists():
    known = _flags() | _bench_flags() | FOREIGN
    missing = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for flag in set(re.findall(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*", text)):
            if flag not in known:
                missing.append(f"{page.name}: {flag}")
    assert sorted(missing) == []


def test_every_key_the_docs_name_exists():
    from datacurate.stages import options_model, sections

    known = set(sections())
    missing = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for section, key in set(re.findall(r"`(\w+)\.(\w+)`", text)) | set(re.findall(r"(?<![\w./-])(\w+)\.(\w+):", text)):
            if section in known and key not in FILE_SUFFIXES and key not in options_model(section).model_fields:
                missing.append(f"{page.name}: {section}.{key}")
    assert sorted(missing) == []


def test_every_options_table_is_the_models():
    """Each `<!-- options: SECTION -->` table is what the option model gives (regenerate with
    `python -m datacurate.template README.md docs/*.md`), and every section has one."""
    from datacurate.template import ORDER, TABLE, refresh_tables

    shown = set()
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert refresh_tables(text) == text, f"{page.name}: an options table drifted; run python -m datacurate.template {page.name}"
        shown |= {m.group(2) for m in TABLE.finditer(text)}
    assert shown == set(ORDER)


# -- README's quickstart, small-CPU recipe and Python example, run as written ---------------------
def _block(text: str, marker: str, lang: str) -> str:
    return re.search(rf"<!-- {marker} -->\n```{lang}\n(.*?)^```", text, re.S | re.M).group(1)


def _photos(folder: Path, hue: int, n: int = 10) -> None:
    """What `cp -r ~/photos/cat ...` brings: n distinct pictures of one class."""
    rng = random.Random(hue)
    folder.mkdir(parents=True)
    for i in range(n):
        im = Image.effect_noise((64, 48), 40).convert("RGB")
        im.paste((hue, rng.randrange(256), 255 - hue), (8 + i, 8, 40 + i, 30))
        im.save(folder / f"IMG_{i:04d}.jpg", quality=90)


def _with_recipe(config: Path, recipe: str) -> None:
    """Put the recipe's sections in place of the template's (all-comment) section lines, as the README says."""
    text = config.read_text(encoding="utf-8")
    for block in re.split(r"\n(?=\w)", recipe.strip()):
        section = block.split(":", 1)[0]
        text, n = re.subn(rf"^{section}:\n", block.rstrip() + "\n", text, count=1, flags=re.M)
        assert n == 1, section
    config.write_text(text, encoding="utf-8")


def test_readme_quickstart_and_python_example_run(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = [line.split("#")[0].strip() for line in _block(text, "quickstart", "bash").splitlines()]
    assert len(quickstart) == 6
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATACURATE_OFFLINE", "1")
    for line in quickstart:
        for command in (c.strip() for c in line.split("&&")):
            words = command.split()
            if words[0] == "cd":
                monkeypatch.chdir(Path.cwd() / words[1])
                _with_recipe(Path.cwd() / "datacurate.yaml", _block(text, "small-cpu-recipe", "yaml"))
            elif words[0] == "cp":
                for i, source in enumerate(words[2:-1]):
                    _photos(Path(words[-1]) / Path(source).name, 60 * i)
            else:
                assert words[0] == "datacurate", command
                code, out, err = cli("-q", *words[1:])
                assert code == 0, (command, err)
                if words[-1] == "init":
                    assert out.splitlines()[-1].startswith("next: copy labeled images into data/original/<class>/")
    assert "first" in out and "accuracy" in out  # evaluate's summary
    assert (Path.cwd() / "runs" / "first" / "report.html").is_file()
    # the Python example, from the folder that holds the workspace
    monkeypatch.chdir(tmp_path)
    example = re.search(r"^```python\n(.*?)^```", text, re.S | re.M).group(1)
    scope: dict = {}
    exec(compile(example, "README.md", "exec"), scope)
    assert (tmp_path / "shop" / "runs" / "r1" / "best.pt").is_file() and scope["run"].epochs == 5
