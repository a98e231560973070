"""The Ray executor: kernels as tasks and actors on a connected cluster (connect.py), with back-pressure and retries.

Kernels and actor classes are sent to Ray by reference (module and name), so every node needs the
same datacurate installed; they read files and return results, they never write in the workspace.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from datacurate.core.errors import UserError
from datacurate.executors.batches import chunks
from datacurate.executors.connect import Cluster, first_line


class Stopped(Exception):
    """A task cancelled because the caller's stop event was set."""


class TaskFailed(Exception):
    """A task that failed on the cluster after `retries` retries; `cause` is the first line of why."""

    def __init__(self, cause: str, retries: int):
        super().__init__(cause)
        self.cause, self.retries = cause, retries


class RayExecutor:
    """Work on a Ray cluster: map (ray.batch_size items per task), single tasks (task) and actors (actor_map)."""

    remote = True

    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    @property
    def scratch(self) -> Path | None:
        """A folder every node sees (files the driver hands the workers)."""
        return self.cluster.scratch

    @property
    def num_cpus(self) -> float:
        """CPUs each task and actor asks for (ray.num_cpus)."""
        return self.cluster.opts.num_cpus

    def map(self, kernel: Callable[..., list], items: Sequence[Any], *shared: Any, desc: str = "",
            quiet: bool = True) -> list:
        """One result per item, in order (see base.Executor.map): kernel(batch, *shared) as Ray tasks."""
        batches = chunks(items, self.cluster.opts.batch_size)
        parts = self._run_batches(kernel, batches, shared, f"{desc} (ray)", quiet)
        return [out for part in parts for out in part]

    def _run_batches(self, func: Callable, batches: Sequence[Sequence[Any]], shared: Sequence[Any], desc: str,
                     quiet: bool) -> list[Any]:
        """func(batch, *shared) for every batch as Ray tasks, in order: at most cluster.in_flight at once
        (back-pressure), each retried up to ray.max_retries times when its worker dies or it raises,
        with a progress bar on stderr counting the items."""
        import ray

        opts = self.cluster.opts
        remote = ray.remote(func).options(num_cpus=opts.num_cpus, max_retries=opts.max_retries,
                                          retry_exceptions=opts.max_retries > 0)
        refs = [ray.put(a) for a in shared]
        out: list[Any] = [None] * len(batches)
        pending: dict[Any, int] = {}
        bar = _bar(sum(len(b) for b in batches), desc, quiet)
        nxt = 0
        try:
            while nxt < len(batches) or pending:
                while nxt < len(batches) and len(pending) < self.cluster.in_flight:
                    pending[remote.remote(batches[nxt], *refs)] = nxt
                    nxt += 1
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i = pending.pop(ref)
                    out[i] = self._get(ray, ref, desc)
                    bar.update(len(batches[i]))
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            bar.close()
        return out

    def task(self, kernel: Callable, *shared: Any) -> "Task":
        """A kernel to call one item at a time, from any thread: Task.call(item) runs kernel(item, *shared)."""
        return Task(self.cluster, kernel, shared)

    def actor_map(self, cls: type, init: Sequence[Any], method: str, batches: Sequence[Sequence[Any]], *,
                  desc: str, quiet: bool = True, per_actor: int = 2) -> list[Any]:
        """actor.method(batch) for every batch, in order, on actors cls(*init) (cluster.actors of them, no more
        than batches): at most `per_actor` batches queued on each, so the next one is there when it finishes
        one. An actor whose worker dies is restarted and its batch run again (ray.max_retries)."""
        import ray

        retries = self.cluster.opts.max_retries
        actor = ray.remote(cls).options(num_cpus=self.num_cpus, num_gpus=self.cluster.num_gpus,
                                        max_restarts=retries, max_task_retries=retries)
        actors = [actor.remote(*init) for _ in range(min(self.cluster.actors, max(1, len(batches))))]
        out: list[Any] = [None] * len(batches)
        load = {i: 0 for i in range(len(actors))}
        pending: dict = {}
        bar = _bar(sum(len(b) for b in batches), f"{desc} (ray)", quiet)
        nxt = 0
        try:
            while nxt < len(batches) or pending:
                for a in sorted(load, key=load.get):
                    while nxt < len(batches) and load[a] < per_actor:
                        pending[getattr(actors[a], method).remote(batches[nxt])] = (a, nxt)
                        load[a] += 1
                        nxt += 1
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    a, b = pending.pop(ref)
                    load[a] -= 1
                    out[b] = self._get(ray, ref, desc)
                    bar.update(len(batches[b]))
        finally:
            bar.close()
            for a in actors:
                ray.kill(a)
        return out

    def _get(self, ray, ref, desc: str) -> Any:
        try:
            return ray.get(ref)
        except (ray.exceptions.RayError, OSError) as exc:
            raise UserError(f"{desc} on the Ray cluster failed after {self.cluster.opts.max_retries} retries "
                            f"(ray.max_retries): {first_line(exc)}") from None


class Task:
    """One kernel, a Ray task per call, each retried when its worker dies (ray.max_retries); `shared` is sent once."""

    def __init__(self, cluster: Cluster, kernel: Callable, shared: Sequence[Any]):
        import ray

        opts = cluster.opts
        self.ray, self.retries = ray, opts.max_retries
        self.remote = ray.remote(kernel).options(num_cpus=opts.num_cpus, max_retries=opts.max_retries,
                                                 retry_exceptions=opts.max_retries > 0)
        self.shared = tuple(ray.put(a) for a in shared)

    def call(self, item: Any, stop: threading.Event | None = None) -> Any:
        """kernel(item, *shared) on the cluster. Raises Stopped when `stop` is set first (the task is
        cancelled), TaskFailed when it failed after its retries."""
        ray = self.ray
        ref = self.remote.remote(item, *self.shared)
        while not ray.wait([ref], timeout=0.5)[0]:
            if stop is not None and stop.is_set():
                ray.cancel(ref, force=True)
                raise Stopped
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            raise TaskFailed(first_line(exc), self.retries) from None


def _bar(total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=True if quiet else None, file=sys.stderr, leave=False,
                dynamic_ncols=True)
