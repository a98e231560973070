"""scrape on a Ray cluster: the download kernel the workers run, and the driver's side that calls it.

`download` is sent to Ray by reference (module and name), so every node needs the same datacurate
installed. It reads the network and returns what it found; it never writes in the workspace.
"""

from __future__ import annotations

import threading
from typing import Any

from datacurate.executors.ray import RayExecutor, Stopped, TaskFailed
from datacurate.scrape.examine import Examined, check_x_robots, examine
from datacurate.scrape.net import Net, Refused

_NETS: dict[str, Any] = {}


def download(url: str, config, max_bytes: int, limits) -> tuple:
    """scrape's per-image work on a worker: the polite fetch (robots.txt, X-Robots-Tag, byte and time
    limits, retries) and the full decode. ("refused", status, content type, bytes, reason, detail) or
    ("examined", examine.Examined); the driver claims the content and saves it."""
    key = repr(config)
    if key not in _NETS:  # one per worker process and configuration: its connection pools and robots.txt cache
        _NETS[key] = Net(config)
    try:
        got = _NETS[key].fetch(url, max_bytes=max_bytes, check_headers=check_x_robots)
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

    def __init__(self, executor: RayExecutor, config, max_bytes: int, limits):
        self.task = executor.task(download, config, max_bytes, limits)

    def fetch(self, url: str, stop: threading.Event) -> tuple:
        """download(url) on the cluster; ("refused", ..., "stopped", ...) when `stop` is set first."""
        try:
            return self.task.call(url, stop)
        except Stopped:
            return "refused", None, None, None, "stopped", "interrupted"
        except TaskFailed as exc:
            return ("refused", None, None, None, "cluster-error",
                    f"the download failed on the Ray cluster after {exc.retries} retries: {exc.cause}")
