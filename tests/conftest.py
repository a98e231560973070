"""Shared fixtures: real image files made on the spot, workspaces, the CLI in a subprocess."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def photo(w: int = 96, h: int = 72, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A smooth random picture (distinct per seed, stable perceptual hash)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    im = Image.fromarray(small).resize((w, h), Image.BICUBIC)
    return im.convert(mode) if mode != "RGB" else im


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """An empty workspace folder with data/original."""
    (tmp_path / "data" / "original").mkdir(parents=True)
    return tmp_path


def run_cli(*args: str, cwd: Path | None = None, check: bool = False, **kw) -> subprocess.CompletedProcess:
    """Run `python -m datacurate ARGS` and capture its output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable, "-m", "datacurate", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=kw.pop("timeout", 300), **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc
