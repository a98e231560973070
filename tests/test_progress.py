"""Every phase of a long command shows itself on a terminal's stderr; a pipe, --json and -q get nothing."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

from conftest import ROOT, run_cli


def _on_a_terminal(*args: str) -> tuple[int, str, str]:
    """Run `python -m datacurate ARGS` with stderr on a pseudo-terminal; (exit code, stdout, terminal text)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))  # a terminal 200 columns wide
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8", COLUMNS="200")
    proc = subprocess.Popen([sys.executable, "-m", "datacurate", *args], stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    stdout = proc.stdout.read().decode("utf-8")
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, stdout, seen.decode("utf-8", "replace")


def test_phases_show_on_a_terminal_only(tmp_path: Path):
    ws = tmp_path / "ws"
    run_cli("demo-data", str(ws), "--per-class", "6", check=True)
    rc, out, term = _on_a_terminal("-C", str(ws), "clean", "--dry-run", "--json")
    assert rc == 0 and out.startswith("{") and term.strip() == ""  # --json: no progress
    rc, out, term = _on_a_terminal("-C", str(ws), "clean")
    assert rc == 0 and "set aside" in out
    for shown in ("listing 2 folder(s)", "clean: searching", "clean: setting aside", "clean: writing reports"):
        assert shown in term, (shown, term)
    rc, out, term = _on_a_terminal("-C", str(ws), "split", "--convert", "png")
    assert rc == 0 and "placed" in out
    for shown in ("split: assigning", "split: building split/", "split: writing the balance report"):
        assert shown in term, (shown, term)
    rc, out, term = _on_a_terminal("-C", str(ws), "-q", "split")
    assert rc == 0 and term.strip() == ""  # -q: none
    piped = run_cli("-C", str(ws), "clean")
    assert piped.returncode == 0 and piped.stderr == ""  # not a terminal: none
