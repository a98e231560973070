"""The executor interface, and the one way every stage chooses where its work runs.

A kernel is a module-level function kernel(batch, *shared) -> one result per item of the batch; an
executor cuts the items into batches, runs the kernel on them and returns the results in order.
Executors with `remote` True (a Ray cluster) also run one task per call and actors (ray.RayExecutor).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

from datacurate.core.workspace import Workspace
from datacurate.executors.connect import connected
from datacurate.executors.options import cluster_options
from datacurate.executors.pool import ProcessPool
from datacurate.executors.ray import RayExecutor
from datacurate.executors.serial import Serial


class Executor(Protocol):
    """Runs a kernel over items: Serial, ProcessPool or ray.RayExecutor."""

    remote: bool   # the work runs on other machines (then task() and actor_map() exist too)

    def map(self, kernel: Callable[..., list], items: Sequence[Any], *shared: Any, desc: str = "",
            quiet: bool = True) -> list:
        """kernel(batch, *shared) over batches of `items`: one result per item, in the items' order, with a
        progress bar `desc` on stderr (none when quiet)."""
        ...


def local_executor(workers: int | None = None, *, serial_below: int = 4) -> Executor:
    """This machine's executor: `workers` processes (default one per core), serial for one worker."""
    pool = ProcessPool(workers, serial_below=serial_below)
    return Serial() if pool.workers == 1 else pool


@contextmanager
def executor_for(ws: Workspace, ray: str | bool | None, workers: int | None = None, folders: Sequence[Path] = (), *,
                 quiet: bool = True) -> Iterator[Executor]:
    """The executor a stage's run uses: a Ray cluster when `ray` (the --ray flag: an address, "auto", False
    for --no-ray, None when not given) or datacurate.yaml's `ray.address` asks for one, else local_executor(workers).

    On a cluster every node is checked to see `folders` (those that exist; the first gets the marker file),
    and the connection is closed when the block ends. Ray itself is imported only in that case.
    """
    opts = cluster_options(ws.config, ray)
    if opts is None:
        yield local_executor(workers)
        return
    with connected(opts, [p for p in folders if Path(p).is_dir()], quiet=quiet) as cluster:
        yield RayExecutor(cluster)
