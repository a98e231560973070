"""The workspace config: the commented template names only real keys; precedence; paths."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from datacurate.template import render
from datacurate.core.workspace import DEFAULT_PATHS, Workspace


def _uncommented() -> dict:
    """The template with every commented option line switched on."""
    lines = []
    for line in render().split("\n\n", 1)[1].splitlines():  # after the header's comment
        m = re.match(r"^#( {1,3})(\S.*)$", line)
        if m:
            indent = len(m.group(1)) - 1
            lines.append(" " * indent + m.group(2))
        elif not line.startswith("#"):
            lines.append(line)
    return yaml.safe_load("\n".join(lines))


def test_template_names_only_real_options():
    from datacurate.clean.run import DEFAULTS as CLEAN
    from datacurate.scrape.options import DEFAULTS as SCRAPE
    from datacurate.split.options import DEFAULTS as SPLIT
    from datacurate.train.options import DEFAULTS as TRAIN

    config = _uncommented()
    assert set(config["paths"]) <= set(DEFAULT_PATHS)
    for section, defaults in (("clean", CLEAN), ("scrape", SCRAPE), ("split", SPLIT), ("train", TRAIN)):
        keys = set(config[section])
        assert keys and keys <= set(defaults), (section, keys - set(defaults))


def test_paths_can_move_folders(tmp_path: Path):
    (tmp_path / "datacurate.yaml").write_text("paths:\n  scraped: elsewhere/scraped\n", encoding="utf-8")
    ws = Workspace.open(tmp_path)
    assert ws.scraped == (tmp_path / "elsewhere" / "scraped").resolve()
    assert ws.original == (tmp_path / "data" / "original").resolve()
    assert ws.source_of(ws.scraped / "猫" / "a.jpg") == ("scraped", "猫")
