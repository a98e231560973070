"""Handing a decode to the decoding child process (datacurate.core.decodeproc runs its loop).

The child starts on first use, ends with its parent (its stdin closes), and is started again if a
file makes it crash (a second crash on the same file makes that file `corrupt`).
"""

from __future__ import annotations

import atexit
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

_LOCK = threading.Lock()
_CHILD: list = []  # [(pid of the process that started it, Popen)]


def inspect_in_child(kind: str, arg, limits, hash_kinds) -> dict:
    """imageio.inspect_file (kind "file", arg a path) or inspect_bytes (kind "bytes") in the child: its fields."""
    request = (kind, os.path.abspath(arg) if kind == "file" else arg, limits, tuple(hash_kinds))
    with _LOCK:
        for attempt in (1, 2):
            child = _child()
            try:
                pickle.dump(request, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                child.stdin.flush()
                return pickle.load(child.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                _stop(child)
    return {"reason": "corrupt", "detail": "decoding it crashed the decoder process (twice)"}


def _child() -> subprocess.Popen:
    if _CHILD and _CHILD[0][0] == os.getpid() and _CHILD[0][1].poll() is None:
        return _CHILD[0][1]
    root = str(Path(__file__).resolve().parents[2])  # above this copy of datacurate, whatever the current folder holds
    code = f"import sys; sys.path.insert(0, {root!r}); from datacurate.core.decodeproc import serve; serve({os.getpid()})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    if not _CHILD:
        atexit.register(_close)
    _CHILD[:] = [(os.getpid(), proc)]
    return proc


def _close() -> None:
    """At exit: the child ends when its stdin closes."""
    if _CHILD and _CHILD[0][0] == os.getpid():
        proc = _CHILD.pop()[1]
        proc.stdin.close()
        proc.stdout.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()
    _CHILD.clear()
