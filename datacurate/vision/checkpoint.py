"""Checkpoints: one dict with everything a resumed run needs, written atomically, read with weights_only=True."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import torch

from datacurate.core.errors import UserError
from datacurate.core.fsutil import atomic_path

FORMAT = "datacurate-train/1"


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(_py_state())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _py_state():
    version, internal, gauss = random.getstate()
    return version, list(internal), gauss


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, payload: dict) -> None:
    """torch.save to a temporary file beside `path`, then os.replace."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())


def copy(src: Path, dst: Path) -> None:
    """Atomic copy (best.pt from last.pt)."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def torch_load(path: str | os.PathLike, missing: str, unreadable: str):
    """torch.load(weights_only=True) on the CPU; a missing or unreadable file is a UserError."""
    import warnings
    import zipfile

    from datacurate.core.errors import cut

    if not Path(path).is_file():
        raise UserError(missing)
    if zipfile.is_zipfile(path) and any(n.endswith("/constants.pkl") for n in zipfile.ZipFile(path).namelist()):
        raise UserError(f"{unreadable}: it is a TorchScript program (from `datacurate export` or torch.jit.save), "
                        f"not a state dict or a datacurate checkpoint")
    try:
        with warnings.catch_warnings():  # torch's notes on the file's format: the line below says what matters
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and torch errors all mean "not loadable"
        raise UserError(f"{unreadable} ({cut(f'{type(exc).__name__}: {exc}', 160)})") from None


def load(path: Path) -> dict:
    """Read a checkpoint written by `save`."""
    data = torch_load(path, f"{path} does not exist", f"{path} is not a readable checkpoint")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"{path} is not a datacurate training checkpoint")
    return data
