"""Shared fixtures: real image files made on the spot, workspaces, the CLI in this process or a subprocess."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

# Under pytest-xdist each worker shares the 2-4 cores of a laptop or CI machine with the others: one
# BLAS/OpenMP thread per worker (and per process it starts) instead of one per core in each, which
# oversubscribes the cores and spins. Set before numpy or torch load; a test asking for more threads
# still gets them (torch.set_num_threads).
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`--dist loadgroup`, see pyproject.toml): the tests that share a module-scoped
    fixture (a trained run, a vetted workspace, a Ray cluster) run on one worker, which builds it once."""
    for item in items:
        defs = getattr(item, "_fixtureinfo", None)
        if defs and any(d[-1].scope == "module" for d in defs.name2fixturedefs.values() if d):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """An empty workspace folder with data/original."""
    (tmp_path / "data" / "original").mkdir(parents=True)
    return tmp_path


def ctrl_c_as_in_a_terminal() -> None:
    """Popen's preexec_fn for a child a test sends Ctrl-C: SIGINT as a terminal gives it. A shell that
    starts the test run in the background (`pytest &`, CI scripts) makes it ignored, and an ignored
    signal stays ignored in every process started below, so Python would never raise KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, cwd: Path | None = None, check: bool = False, **kw) -> subprocess.CompletedProcess:
    """`datacurate ARGS` with its output captured: in this process (the console entry point, as
    asuser.cli runs it), or in a fresh `python -m datacurate` where the test needs a real process
    (see run_process) or DATACURATE_TEST_SUBPROCESS=1 asks for one everywhere."""
    if os.environ.get("DATACURATE_TEST_SUBPROCESS") == "1":
        return run_process(*args, cwd=cwd, check=check, **kw)
    kw.pop("timeout", None)  # pytest-timeout bounds a test in this process
    if kw:
        raise TypeError(f"in-process run_cli takes no {sorted(kw)}: use run_process")
    code, out, err = _in_process(args, cwd)
    proc = subprocess.CompletedProcess([sys.executable, "-m", "datacurate", *args], code, out, err)
    return _checked(proc, check)


def run_process(*args: str, cwd: Path | None = None, check: bool = False, **kw) -> subprocess.CompletedProcess:
    """Run `python -m datacurate ARGS` in a subprocess and capture its output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable, "-m", "datacurate", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=kw.pop("timeout", 300), **kw)
    return _checked(proc, check)


def _checked(proc: subprocess.CompletedProcess, check: bool) -> subprocess.CompletedProcess:
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def _pipe() -> io.TextIOWrapper:
    """A text stream like a subprocess's piped stdout: UTF-8, not a terminal, no file descriptor."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)


def _read(stream: io.TextIOWrapper) -> str:
    """What was written, as subprocess.run(text=True) reads a pipe (universal newlines)."""
    stream.flush()
    return stream.buffer.getvalue().decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def _in_process(args: tuple[str, ...], cwd: Path | None) -> tuple[int, str, str]:
    """The console entry point in this process: (exit code, stdout, stderr). The working folder,
    the environment and Python's warning filters are put back afterwards, and warnings are printed
    to the captured stderr as a fresh process would print them."""
    from datacurate.cli.main import run

    saved = sys.argv, sys.stdout, sys.stderr, os.getcwd(), dict(os.environ)
    out, err = _pipe(), _pipe()
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category in _DEFAULT_FILTERS:
            warnings.simplefilter(action, category)
        warnings.showwarning = _show_warning
        sys.argv, sys.stdout, sys.stderr = ["datacurate", *args], out, err
        try:
            if cwd is not None:
                os.chdir(cwd)
            run()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv, sys.stdout, sys.stderr = saved[:3]
            os.chdir(saved[3])
            if os.environ != saved[4]:
                os.environ.clear()
                os.environ.update(saved[4])
    return code, _read(out), _read(err)


# A fresh interpreter's warning filters (python -W default is not set): most warnings once per place.
_DEFAULT_FILTERS = (("default", Warning), ("ignore", DeprecationWarning), ("ignore", PendingDeprecationWarning),
                    ("ignore", ImportWarning), ("ignore", ResourceWarning))


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
