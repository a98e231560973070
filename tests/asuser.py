"""Run the CLI in-process, and as the unprivileged user `nobody` (tests run as root, who reads anything)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NOBODY = 65534


def cli(*args: str) -> tuple[int, str, str]:
    """The real console entry point, in-process: (exit code, stdout, stderr)."""
    from datacurate.cli.main import run

    old = sys.argv, sys.stdout, sys.stderr
    out, err = io.StringIO(), io.StringIO()
    sys.argv, sys.stdout, sys.stderr = ["datacurate", *args], out, err
    try:
        run()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv, sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


def shared_dir(prefix: str) -> Path:
    """A folder outside pytest's root-only tmp tree that nobody can reach."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)
    return path


def give_to_nobody(root: Path) -> None:
    for p in [root, *root.rglob("*")]:
        os.chown(p, NOBODY, NOBODY, follow_symlinks=False)


def demo_workspace(root: Path, per_class: int = 4) -> Path:
    """A workspace of generated pictures with the demo's planted problems."""
    from datacurate.cli.commands import init_workspace
    from datacurate.demo.data import make_demo_data

    init_workspace(root)
    make_demo_data(root, per_class=per_class)
    return root


def cli_as_nobody(*args: str, warm: tuple[tuple[str, ...], ...] = ()) -> tuple[int, str, str]:
    """cli(*args) as the user nobody, in a fresh process (as non-root: in this one).

    The process runs each `warm` command as root on a scratch workspace first, so every module
    the command needs is imported before it drops privileges: nobody cannot read this Python's
    folders. (A fork of the test process could deadlock on a lock some thread of it held.)
    """
    if os.geteuid() != 0:
        return cli(*args)
    code = f"import asuser; asuser._child({list(args)!r}, {[list(w) for w in warm]!r})"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    try:
        return tuple(json.loads(proc.stdout.splitlines()[-1]))
    except (IndexError, ValueError):
        raise AssertionError(f"the child failed: {proc.stderr[-3000:]}") from None


def _child(args: list[str], warm: list[list[str]]) -> None:  # pragma: no cover - runs in the child
    scratch = Path(tempfile.mkdtemp(prefix="dc-warm-"))
    try:
        for i, command in enumerate(warm):
            cli("-q", "-C", str(demo_workspace(scratch / str(i))), *command)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    result = cli(*args)
    print(json.dumps(result))
