"""The one entry the stages use: a cluster when `--ray` or `ray.address` asks for one, else None."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from datacurate.executors.options import cluster_options
from datacurate.core.workspace import Workspace


@contextmanager
def cluster_for(ws: Workspace, flag: str | bool | None, folders: Sequence[Path] = (), *,
                quiet: bool = True) -> Iterator[object | None]:
    """Yield a connected session.Cluster (every node checked to see `folders`, the first of which gets
    the marker file), or None to run locally. Ray is imported only in the first case."""
    opts = cluster_options(ws.config, flag)
    if opts is None:
        yield None
        return
    from datacurate.executors.ray import connected

    with connected(opts, [p for p in folders if Path(p).is_dir()], quiet=quiet) as cluster:
        yield cluster
