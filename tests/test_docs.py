"""README.md and docs/*.md say what the program does: every flag and key they name exists, every
options table is the one the option models give, and README's quickstart and Python example run."""

from __future__ import annotations

import re

import click
import pytest

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
    from datacurate.cli import COMMANDS, main

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
