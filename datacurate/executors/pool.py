"""The local process pool: batches of items run in worker processes that die with this one.

Workers are forked on Linux (spawned elsewhere), so the kernel and its shared arguments are sent by
reference and by pickle. A worker ends with the process that started it, kill -9 included
(core.procutil.die_with_parent), and checks before each batch that its parent is still there.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
from typing import Any, Callable, Sequence

from datacurate.core import procutil
from datacurate.core.terminal import progress
from datacurate.executors.batches import chunks
from datacurate.executors.serial import Serial

_PARENT = 0  # in a worker: the pid of the process that started the pool


class ProcessPool:
    """`workers` processes (default: one per core); fewer than `serial_below` items run here instead."""

    remote = False

    def __init__(self, workers: int | None = None, *, serial_below: int = 4):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.serial_below = serial_below

    def map(self, kernel: Callable[..., list], items: Sequence[Any], *shared: Any, desc: str = "",
            quiet: bool = True) -> list:
        """One result per item, in order (see base.Executor.map): batches of up to 32 items, about 8 per worker."""
        if self.workers == 1 or len(items) < self.serial_below:
            return Serial().map(kernel, items, *shared, desc=desc, quiet=quiet)
        size = max(1, min(32, len(items) // (self.workers * 8)))
        jobs = [(kernel, batch, shared) for batch in chunks(items, size)]
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ctx.Pool(self.workers, initializer=_start_worker, initargs=(os.getpid(),)) as pool:
            done = (out for part in pool.imap(_run_batch, jobs) for out in part)
            return list(progress(done, total=len(items), desc=desc, quiet=quiet))


def _start_worker(parent: int) -> None:
    """Pool initializer: the worker dies with `parent` (kill -9 included)."""
    global _PARENT
    _PARENT = parent
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not a handler inherited from the parent (Ray's prints a stack)
    procutil.die_with_parent(parent)


def _run_batch(job: tuple) -> list:
    kernel, batch, shared = job
    if _PARENT and os.getppid() != _PARENT:
        os._exit(1)  # the parent is gone (kill -9) and no death signal came: stop
    return kernel(batch, *shared)
