"""Counts behind docs/architecture.md: modules, import cycles, upward imports, click outside cli/.

    python tools/layer_counts.py        (from the repository root; imports inside functions count)
"""

from __future__ import annotations

import configparser
import re
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools.importcontracts import strongly_connected  # noqa: E402


def layers() -> dict[str, int]:
    """Top package -> rank (higher imports lower), read from .importlinter's layers contract."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    lines = [line.strip() for line in config["importlinter:contract:layers"]["layers"].splitlines() if line.strip()]
    return {name.strip(): len(lines) - i for i, line in enumerate(lines) for name in re.split(r"[|:]", line)}


def main() -> None:
    graph = grimp.build_graph("datacurate", include_external_packages=True)
    modules = sorted(m for m in graph.modules if m.startswith("datacurate"))
    edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i.startswith("datacurate"))
             for m in modules}
    cycles = [group for group in strongly_connected(edges) if len(group) > 1]
    rank = layers()

    def layer(module: str) -> int | None:
        parts = module.split(".")
        return rank.get(parts[1]) if len(parts) > 1 else None

    upward = [(a, b) for a in modules for b in edges[a] if layer(a) and layer(b) and layer(b) > layer(a)]
    click = [m for m in modules if "click" in graph.find_modules_directly_imported_by(m)
             and not m.startswith("datacurate.cli")]
    options = sum(p.read_text().count("click.option(") for p in (ROOT / "datacurate").rglob("*.py"))
    print(f"modules {len(modules)}; import cycles {len(cycles)} ({sum(map(len, cycles))} modules in them); "
          f"upward imports {len(upward)}; modules outside cli/ importing click {len(click)}; "
          f"click.option( in the source {options}")
    for a, b in upward:
        print(f"  upward: {a} -> {b}")


if __name__ == "__main__":
    main()
