"""What runs on the workers, and the driver's loop that feeds them.

The functions at the top are sent to Ray by reference (module and name), so every node needs the
same datacurate installed. They read files and return results; they never write in the workspace.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import asdict
from typing import Any, Callable, Sequence

from datacurate.executors.ray import Cluster, _first_line
from datacurate.core.errors import UserError


# -- on the workers -------------------------------------------------------------------------------
def see_workspace(marker: str, token: str, folders: Sequence[str]) -> tuple[str | None, str]:
    """(what this node cannot see, or None; its datacurate version)."""
    from datacurate.core.version import __version__

    try:
        with open(marker, encoding="utf-8") as fh:
            found = fh.read()
    except OSError as exc:
        return f"{marker}: {(exc.strerror or str(exc)).lower()} on {socket.gethostname()}", __version__
    if found != token:
        return f"{marker} holds other bytes on {socket.gethostname()} (another file system at that path)", __version__
    for folder in folders:
        if not os.path.isdir(folder):
            return f"{folder}: no such folder on {socket.gethostname()}", __version__
    return None, __version__


def decode_batch(paths: Sequence[str], limits, kinds: tuple) -> list[dict]:
    """clean's per-file work (imageio.inspect_file: decode, verify, hash, measure) for a batch of files."""
    from datacurate.core.imageio import inspect_file

    return [asdict(inspect_file(p, limits, kinds)) for p in paths]


# -- on the driver --------------------------------------------------------------------------------
def run_batches(cluster: Cluster, func: Callable, batches: Sequence[Sequence[Any]], *args: Any, desc: str,
                quiet: bool, sizes: Sequence[int] | None = None) -> list[Any]:
    """func(batch, *args) for every batch as Ray tasks, in order: at most cluster.in_flight at once
    (back-pressure), each retried up to ray.max_retries times when its worker dies or it raises,
    with a progress bar on stderr counting `sizes` (default the batches' lengths)."""
    import ray
    from tqdm import tqdm

    remote = ray.remote(func).options(num_cpus=cluster.opts.num_cpus, max_retries=cluster.opts.max_retries,
                                      retry_exceptions=cluster.opts.max_retries > 0)
    shared = [ray.put(a) for a in args]
    sizes = list(sizes) if sizes is not None else [len(b) for b in batches]
    out: list[Any] = [None] * len(batches)
    pending: dict[Any, int] = {}
    bar = tqdm(total=sum(sizes), desc=desc, disable=True if quiet else None, file=sys.stderr, leave=False,
               dynamic_ncols=True)
    nxt = 0
    try:
        while nxt < len(batches) or pending:
            while nxt < len(batches) and len(pending) < cluster.in_flight:
                pending[remote.remote(batches[nxt], *shared)] = nxt
                nxt += 1
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                out[i] = _result(ray, ref, desc, cluster)
                bar.update(sizes[i])
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()
    return out


def _result(ray, ref, desc: str, cluster: Cluster) -> Any:
    try:
        return ray.get(ref)
    except (ray.exceptions.RayError, OSError) as exc:
        raise UserError(f"{desc} on the Ray cluster failed after {cluster.opts.max_retries} retries "
                        f"(ray.max_retries): {_first_line(exc)}") from None


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def decoder(cluster: Cluster) -> Callable:
    """A stand-in for clean.scan._decode_all that decodes on the cluster, ray.batch_size files per task."""
    from datacurate.core.imageio import Inspection

    def decode(paths: Sequence[str], limits, kinds: tuple, quiet: bool) -> list:
        batches = chunks(paths, cluster.opts.batch_size)
        found = run_batches(cluster, decode_batch, batches, limits, tuple(kinds), desc="decoding (ray)", quiet=quiet)
        return [Inspection(**d) for part in found for d in part]

    return decode


# -- scrape's downloads -----------------------------------------------------------------------------
_NETS: dict[str, Any] = {}


def download(url: str, config, max_bytes: int, limits) -> tuple:
    """scrape's per-image work on a worker: the polite fetch (robots.txt, X-Robots-Tag, byte and time
    limits, retries) and the full decode. ("refused", status, content type, bytes, reason, detail) or
    ("examined", scrape.run.Examined); the driver claims the content and saves it."""
    from datacurate.scrape.net import Net, Refused
    from datacurate.scrape.run import Examined, _check_x_robots, examine

    key = repr(config)
    if key not in _NETS:  # one per worker process and configuration: its connection pools and robots.txt cache
        _NETS[key] = Net(config)
    try:
        got = _NETS[key].fetch(url, max_bytes=max_bytes, check_headers=_check_x_robots)
    except Refused as exc:
        return "refused", exc.status, exc.content_type, exc.nbytes, exc.reason, exc.detail
    try:
        return "examined", examine(got, limits)
    except Exception as exc:  # noqa: BLE001 - one odd file must not end the run (as in scrape.run.Runner._check)
        return "examined", Examined(got.status, got.content_type, len(got.data), reason="check-error",
                                    detail=f"{type(exc).__name__}: {exc}")


class Downloader:
    """The driver's side of scrape on a cluster: one download task per image URL, run from scrape's fetch
    threads (so at most --concurrency at once), each retried when its worker dies."""

    def __init__(self, cluster: Cluster, config, max_bytes: int, limits):
        import ray

        self.ray, self.cluster = ray, cluster
        self.remote = ray.remote(download).options(num_cpus=cluster.opts.num_cpus, max_retries=cluster.opts.max_retries,
                                                   retry_exceptions=cluster.opts.max_retries > 0)
        self.args = (ray.put(config), max_bytes, ray.put(limits))

    def fetch(self, url: str, stop) -> tuple:
        """download(url) on the cluster; ("refused", ..., "stopped", ...) when `stop` is set first."""
        ray = self.ray
        ref = self.remote.remote(url, *self.args)
        while not ray.wait([ref], timeout=0.5)[0]:
            if stop.is_set():
                ray.cancel(ref, force=True)
                return "refused", None, None, None, "stopped", "interrupted"
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            return ("refused", None, None, None, "cluster-error",
                    f"the download failed on the Ray cluster after {self.cluster.opts.max_retries} retries: "
                    f"{_first_line(exc)}")
