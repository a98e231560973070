"""Loading a trained run (evaluate, predict, export, fit-head, a teacher, vet's embeddings): its model, classes and preprocessing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from datacurate.core.errors import UserError
from datacurate.core.workspace import Workspace
from datacurate.vision import checkpoint
from datacurate.vision.data import Preprocess
from datacurate.vision.device import pick_device
from datacurate.vision.models import create_model


@dataclass
class LoadedRun:
    """A trained run in eval mode on its device, with what its inputs need."""

    name: str
    run_dir: Path
    model: torch.nn.Module
    classes: list[str]
    pre: Preprocess
    checkpoint: Path
    config: dict = field(default_factory=dict)


def load_run(ws: Workspace, run: str, device: str = "auto", *, what: str = "run", ema: bool = False) -> LoadedRun:
    """A run by name (under runs/), folder or checkpoint file; best.pt when present, else last.pt.

    With `ema`, the exponential moving average of the weights (a run trained with --ema).
    """
    p = Path(run)
    if p.is_file():
        ck_path = p
    else:
        folder = p if p.is_dir() and (p / "last.pt").exists() else ws.runs / run
        ck_path = folder / "best.pt" if (folder / "best.pt").is_file() else folder / "last.pt"
        if not ck_path.is_file():
            known = sorted(d.name for d in ws.runs.iterdir() if (d / "last.pt").is_file()) if ws.runs.is_dir() else []
            prefix = "no run" if what == "run" else f"{what}: no run"
            raise UserError(f"{prefix} {run!r} (no {ck_path}); runs: {', '.join(known) or 'none yet'}")
    ck = checkpoint.load(ck_path)
    model = create_model(ck["arch"], len(ck["classes"]), "none", options=ck.get("config") or {})
    state = ck["model"]
    if ema:
        if not ck.get("ema"):
            raise UserError(f"run {ck_path.parent.name!r} was trained without --ema: it has no averaged weights")
        state = {k.removeprefix("module."): v for k, v in ck["ema"].items() if k != "n_averaged"}
    model.load_state_dict(state)
    dev = pick_device(device, True, True)
    model.to(dev.device).eval()
    return LoadedRun(ck_path.parent.name, ck_path.parent, model, list(ck["classes"]), Preprocess.from_dict(ck["preprocess"]), ck_path,
                     ck.get("config") or {})
