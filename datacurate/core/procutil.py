"""Worker processes that die with the process that started them (kill -9 included)."""

from __future__ import annotations

import os
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Call first thing in a worker process: it ends when `parent` dies, even by SIGKILL.

    Linux: prctl(PR_SET_PDEATHSIG, SIGKILL) through ctypes; everywhere: a daemon thread that exits the
    worker once os.getppid() is no longer `parent` (the worker was re-parented).
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="datacurate-parent-watch", daemon=True).start()


def worker_init(_worker_id: int = 0) -> None:
    """A torch DataLoader's worker_init_fn: the loader worker dies with the process that started it."""
    die_with_parent(os.getppid())
