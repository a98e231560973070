"""The workspace lock: one writing command at a time per workspace (fcntl.flock on .datacurate/lock).

The CLI takes it for every command in cli.LOCKED; Python code that writes in a workspace takes
it with `with workspace_lock(ws, "my-script"):`. It is re-entrant within a process, so `run`
holds it once and its stages run under it. The lock file holds who has it (pid, command, since)
for the line a second command prints.
"""

from __future__ import annotations

import errno
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from datacurate.core.errors import UserError

LOCK_NAME = "lock"
DEFAULT_WAIT = 5.0  # seconds a second command waits before it gives up

# lock-file path -> [open file, depth, pid]: the locks this process holds
_held: dict[str, list] = {}


class WorkspaceBusy(UserError):
    """Another process holds the workspace lock."""


def lock_path(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / LOCK_NAME


@contextmanager
def workspace_lock(ws, command: str = "python", *, wait: float | None = None) -> Iterator[None]:
    """Hold the exclusive lock of workspace `ws` (a Workspace or its folder) while the block runs.

    Waits up to `wait` seconds (default DEFAULT_WAIT) for another holder, then raises WorkspaceBusy
    naming it. A workspace whose .datacurate folder cannot be written is a UserError.
    """
    state_dir = Path(ws.state_dir if hasattr(ws, "state_dir") else Path(ws) / ".datacurate")
    path = lock_path(state_dir)
    key = os.path.abspath(path)
    entry = _held.get(key)
    if entry and entry[2] == os.getpid():
        entry[1] += 1
        try:
            yield
        finally:
            entry[1] -= 1
        return
    fd = _open(state_dir, path, command)
    try:
        _acquire(fd, path, command, DEFAULT_WAIT if wait is None else wait)
        _write_holder(fd, command)
        _held[key] = [fd, 1, os.getpid()]
        try:
            yield
        finally:
            _held.pop(key, None)
            _write_holder(fd, None)
    finally:
        os.close(fd)  # closing the file releases the flock


def holder(ws) -> dict | None:
    """Who holds the lock as its file tells ({pid, command, since}), or None."""
    state_dir = Path(ws.state_dir if hasattr(ws, "state_dir") else Path(ws) / ".datacurate")
    try:
        text = lock_path(state_dir).read_text(encoding="utf-8")
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None


def _open(state_dir: Path, path: Path, command: str) -> int:
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        why = "read-only file system" if exc.errno == errno.EROFS else (exc.strerror or str(exc)).lower()
        raise UserError(f"cannot write in the workspace: {state_dir} ({why}); "
                        f"`{command}` needs a workspace it can write to") from None


def _acquire(fd: int, path: Path, command: str, wait: float) -> None:
    import fcntl

    deadline = time.monotonic() + max(0.0, wait)
    delay = 0.05
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
            time.sleep(delay)
            delay = min(0.5, delay * 2)
    raise WorkspaceBusy(_busy_line(path, command, wait))


def _busy_line(path: Path, command: str, wait: float) -> str:
    info = holder(path.parent.parent) or {}
    who = f"`datacurate {info['command']}` (pid {info['pid']}" if info.get("pid") else "another process (pid unknown"
    if info.get("since"):
        who += f", since {time.strftime('%H:%M:%S', time.localtime(info['since']))}"
    if info.get("pid") and not _alive(info["pid"]):
        who += ", no longer running: its worker processes may still hold the lock"
    return (f"the workspace {path.parent.parent} is busy: {who}) holds {path}; `{command}` waited {wait:g} s. "
            f"Try again when it has finished, or wait longer with `datacurate --wait SECONDS {command}`")


def _alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError):
        return True
    return True


def _write_holder(fd: int, command: str | None) -> None:
    """Note who holds the lock in its file (None: clear it); unbuffered, so a full disk only loses the note."""
    note = json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}).encode() if command else b""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0)
    except OSError:
        pass  # the lock holds without the note
