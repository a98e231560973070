"""datacurate.executors: the same results, in order, whichever executor runs a kernel (Ray's: tests/test_ray.py)."""

from __future__ import annotations

import os

from datacurate.core.workspace import Workspace
from datacurate.executors.base import executor_for, local_executor
from datacurate.executors.batches import chunks
from datacurate.executors.pool import ProcessPool
from datacurate.executors.serial import Serial


def square_plus(batch: list[int], offset: int) -> list[tuple[int, int]]:
    """A kernel: one result per item, and the pid that computed it."""
    return [(x * x + offset, os.getpid()) for x in batch]


def test_every_local_executor_gives_one_result_per_item_in_order():
    items = list(range(203))
    want = [x * x + 5 for x in items]
    for executor in (Serial(), ProcessPool(1), ProcessPool(2, serial_below=1), ProcessPool(3, serial_below=1)):
        found = executor.map(square_plus, items, 5, desc="test")
        assert [r for r, _ in found] == want, executor
    assert ProcessPool(2).map(square_plus, [], 0) == []


def test_the_pool_runs_in_worker_processes_and_small_jobs_here():
    pids = {pid for _, pid in ProcessPool(2, serial_below=1).map(square_plus, list(range(64)), 0)}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert {pid for _, pid in ProcessPool(2, serial_below=16).map(square_plus, list(range(15)), 0)} == {os.getpid()}


def test_local_executor_and_executor_for_without_a_cluster(ws):
    ws = Workspace.open(ws)
    assert isinstance(local_executor(1), Serial) and isinstance(local_executor(4), ProcessPool)
    assert local_executor(None).remote is False
    with executor_for(ws, False, 3) as executor:
        assert isinstance(executor, ProcessPool) and executor.workers == 3 and not executor.remote
    with executor_for(ws, None, 1) as executor:  # no ray: section, no --ray: this machine
        assert isinstance(executor, Serial)


def test_chunks():
    assert chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]] and chunks([], 3) == []
