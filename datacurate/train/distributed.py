"""Training on several processes (torchrun, `train --gpus N`): the process group, DDP, reductions.

torchrun (or `datacurate train --gpus N`, which runs torch.distributed.run itself) starts one process
per GPU with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in the environment. `setup`
joins the process group (nccl on CUDA, gloo on the CPU) with a short rendezvous timeout, so a
rendezvous that never answers is one line and exit 2 rather than a hang. Rank 0 alone writes files
and prints; metrics are summed over every rank.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from torch import nn

from datacurate.core.errors import UserError

COLLECTIVE_TIMEOUT = timedelta(minutes=30)  # a step or an epoch's checkpoint on rank 0 may take this long
LAUNCHER_ENV = "DATACURATE_LAUNCHER_PID"  # set by `train --gpus/--processes`: the launcher holds the workspace lock


@dataclass(frozen=True)
class Dist:
    """This process's place: rank of world_size (1 when not distributed), its local rank and backend."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    owned: bool = False  # this module initialised the process group (and destroys it at the end)

    @property
    def active(self) -> bool:
        return bool(self.backend)

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = Dist()


def env_rank() -> int | None:
    """RANK from the environment when a launcher (torchrun) set WORLD_SIZE, else None."""
    if "WORLD_SIZE" not in os.environ and "RANK" not in os.environ:
        return None
    return _env_int("RANK")


def _env_int(name: str) -> int:
    raw = os.environ.get(name)
    if raw is None:
        raise UserError(f"torchrun-style launch: {name} is not set (RANK, WORLD_SIZE and LOCAL_RANK come from torchrun; "
                        "start with `torchrun --nproc-per-node N -m datacurate train ...` or `datacurate train --gpus N`)")
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"{name}={raw!r} in the environment is not an integer") from None
    if value < 0:
        raise UserError(f"{name}={raw!r} in the environment is negative")
    return value


def setup(device_name: str, timeout: float) -> tuple[Dist, str]:
    """Join the process group named by the environment; (Dist, device name for this rank).

    Without RANK/WORLD_SIZE in the environment: (SINGLE, device_name), nothing done. An existing
    process group (a script that initialised its own) is used as it is.
    """
    import torch.distributed as dist

    if env_rank() is None:
        return SINGLE, device_name
    if os.environ.get("TORCHELASTIC_RUN_ID"):  # torchrun's worker: end with its agent, even after a kill -9 of torchrun
        from datacurate.core.procutil import die_with_parent

        die_with_parent(os.getppid())
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    local = int(os.environ.get("LOCAL_RANK", rank))
    if world < 1 or rank >= world:
        raise UserError(f"RANK={rank} and WORLD_SIZE={world} in the environment do not fit (RANK must be below WORLD_SIZE)")
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    if device_name == "mps":
        raise UserError("training on several processes runs on CUDA (nccl) or the CPU (gloo), not on MPS")
    if device_name == "cuda":
        n = torch.cuda.device_count()
        if local >= n:
            raise UserError(f"LOCAL_RANK {local} has no GPU: this machine shows PyTorch {n} GPU(s); start at most {n} "
                            "processes per node (--nproc-per-node)")
        torch.cuda.set_device(local)
    backend = "nccl" if device_name == "cuda" else "gloo"
    if dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size(), local, str(dist.get_backend())), device_name
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:
        raise UserError(f"RANK and WORLD_SIZE are set but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: "
                        "no rendezvous to join; start training with torchrun (`torchrun --nproc-per-node N -m datacurate train ...`) "
                        "or `datacurate train --gpus N`")
    where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    try:
        with _stderr_muted():  # c10d logs each failed connect with a C++ stack; the one line below says it all
            store, _, _ = next(dist.rendezvous("env://", rank, world, timeout=timedelta(seconds=timeout)))
        store.set_timeout(COLLECTIVE_TIMEOUT)
        dist.init_process_group(backend, store=dist.PrefixStore("default_pg", store), rank=rank, world_size=world,
                                timeout=COLLECTIVE_TIMEOUT)
    except (RuntimeError, ValueError, OSError) as exc:  # DistStoreError, DistNetworkError (RuntimeErrors), socket errors
        who = (f"rank 0 of {world} hosted the rendezvous at {where} but not all {world - 1} other process(es) joined" if rank == 0
               else f"rank {rank} of {world} found no rendezvous answering at {where}")
        why = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{who} within {timeout:g} s ({why}); start every process with the same torchrun rendezvous "
                        "(MASTER_ADDR:MASTER_PORT), or raise --dist-timeout") from None
    return Dist(rank, world, local, backend, owned=True), device_name


@contextlib.contextmanager
def _stderr_muted():
    """File descriptor 2 to /dev/null while the block runs (C++ log lines included)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def teardown(d: Dist) -> None:
    import torch.distributed as dist

    if d.owned and dist.is_initialized():
        dist.destroy_process_group()


def broadcast(d: Dist, obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    if not d.active:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(d: Dist, values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum over every rank (float64)."""
    if not d.active:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def all_gather(d: Dist, obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order."""
    if not d.active:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * d.world_size
    dist.all_gather_object(out, obj)
    return out


def check_shared(d: Dist, state_dir: Path) -> None:
    """Every rank must see rank 0's workspace (a shared file system): rank 0 writes a token, each rank reads it."""
    if not d.active or d.world_size == 1:
        return
    token = uuid.uuid4().hex if d.main else ""
    path = state_dir / f"dist-check-{token}"
    if d.main:
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(token, encoding="utf-8")
    token = broadcast(d, token)
    path = state_dir / f"dist-check-{token}"
    try:
        seen = path.read_text(encoding="utf-8") == token
    except OSError:
        seen = False
    blind = [f"rank {r} on {host}" for r, (ok, host) in enumerate(all_gather(d, (seen, socket.gethostname()))) if not ok]
    if d.main:
        path.unlink(missing_ok=True)
    if blind:
        raise UserError(f"{', '.join(blind)} cannot see the workspace {state_dir.parent} that rank 0 writes in: put the workspace "
                        "on a file system every node mounts at the same path")


def wrap(model: nn.Module, d: Dist, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `model` for the parameters that train now (re-wrap when a stage unfreezes more)."""
    if not d.active:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    if not any(p.requires_grad for p in model.parameters()):
        return model
    ids = [device.index] if device.type == "cuda" else None
    return DDP(model, device_ids=ids, output_device=ids[0] if ids else None)  # buffers: rank 0's, synced each forward


def sync_batchnorm(model: nn.Module, d: Dist, device_name: str) -> nn.Module:
    """--sync-bn: BatchNorm statistics over the global batch (SyncBatchNorm; CUDA only in PyTorch)."""
    if not d.active or d.world_size == 1:
        return model
    if device_name != "cuda":
        raise UserError("--sync-bn needs CUDA: PyTorch's SyncBatchNorm does not run on the CPU; "
                        "use --norm group (GroupNorm does not depend on the batch) or drop --sync-bn")
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)
