"""The import contract (.importlinter, docs/architecture.md) holds, and its two own rule types can fail."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT


def _contracts():
    """tools/importcontracts.py, loaded from its file (the repository root is not put on sys.path: its
    datasets/ folder of recipes would shadow Hugging Face's `datasets` for the other tests)."""
    spec = importlib.util.spec_from_file_location("_importcontracts", ROOT / "tools" / "importcontracts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("lint-imports is not installed (pip install \".[test]\")")
    return subprocess.run([exe, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_package_keeps_every_import_contract():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_strongly_connected_finds_cycles_and_only_cycles():
    edges = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["e2"], "e2": []}
    groups = sorted(sorted(g) for g in _contracts().strongly_connected(edges) if len(g) > 1)
    assert groups == [["a", "b", "c"]]


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "proj"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    shutil.copytree(ROOT / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".importlinter").write_text(textwrap.dedent("""\
        [importlinter]
        root_packages =
            pkg
        contract_types =
            no_private_names: tools.importcontracts.NoPrivateNamesContract
            acyclic: tools.importcontracts.AcyclicContract

        [importlinter:contract:private]
        name = private
        type = no_private_names
        root = pkg

        [importlinter:contract:acyclic]
        name = acyclic
        type = acyclic
        root = pkg
        """))
    return root


def test_a_lazy_import_cycle_and_a_private_name_break_the_contract(tmp_path):
    root = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a/__init__.py": "",
        "pkg/a/one.py": "def f():\n    from pkg.b.two import _hidden\n    return _hidden\n",
        "pkg/b/__init__.py": "",
        "pkg/b/two.py": "from pkg.a import one\n_hidden = 1\n",
    })
    proc = _lint(root)
    assert proc.returncode != 0
    assert "pkg.a.one:2 imports _hidden from pkg.b.two" in proc.stdout
    assert "import cycle among 2 modules: pkg.a.one, pkg.b.two" in proc.stdout
