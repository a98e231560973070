"""A run's folder under runs/: which one a run trains in, and the partial files a kill left there."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from datacurate.core.errors import UserError
from datacurate.core.fsutil import sweep_partials as sweep
from datacurate.core.workspace import Workspace


def pick_run_dir(ws: Workspace, name: str | None, arch: str, resume: bool) -> tuple[str, Path]:
    """(name, folder) of the run to train: the one to resume (the latest without a name), the name given, or arch numbered."""
    runs = ws.runs
    if resume:
        if name is None:
            cands = sorted((p for p in runs.glob("*/last.pt")), key=lambda p: p.stat().st_mtime) if runs.is_dir() else []
            if not cands:
                raise UserError(f"--resume: no run with a last.pt under {runs}")
            return cands[-1].parent.name, cands[-1].parent
        if not (runs / name / "last.pt").is_file():
            raise UserError(f"--resume: run {name!r} has no checkpoint {runs / name / 'last.pt'} to continue")
        return name, runs / name
    if name:
        if "/" in name or name.startswith("."):
            raise UserError(f"--name {name!r} must be a plain folder name")
        if (runs / name / "last.pt").exists():
            raise UserError(f"run {name!r} exists; continue it with --resume or pick another --name")
        return name, runs / name
    n, base = 0, arch
    while (runs / (base if n == 0 else f"{base}-{n}")).exists():
        n += 1
    name = base if n == 0 else f"{base}-{n}"
    return name, runs / name


PARTIAL_AGE = 600  # seconds: another run's .tmp-*.part older than this is a dead write, not one in progress


def sweep_partials(ws: Workspace, run_dir: Path, echo: Callable[[str], None]) -> int:
    """Delete .tmp-*.part files that a killed checkpoint write left: all in this run, old ones in other runs."""
    if not ws.runs.is_dir():
        return 0
    n = len(sweep([run_dir], min_age=0) if run_dir.is_dir() else []) + len(sweep([ws.runs], min_age=PARTIAL_AGE))
    if n:
        echo(f"removed {n} partial file(s) that an interrupted checkpoint write left under {ws.rel(ws.runs)}/")
    return n
