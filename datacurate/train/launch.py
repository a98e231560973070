"""`datacurate train --gpus N` / `--processes N`: torch.distributed.run on this machine, from inside datacurate.

The launcher is torchrun's own (`torch.distributed.run`, a standalone c10d rendezvous on localhost), run in
this process: it starts N copies of `python -m datacurate train ...` with the same options, each of which
joins the process group (datacurate/train/distributed.py). The launcher holds the workspace lock for them;
they die with it (even by SIGKILL). Several nodes: run torchrun yourself (docs/train.md).
"""

from __future__ import annotations

import logging
import os
import sys

from datacurate.core.errors import UserError
from datacurate.train.distributed import LAUNCHER_ENV, env_rank


def check_gpus(n: int) -> None:
    """--gpus N needs N GPUs visible to PyTorch here."""
    import torch

    if n < 1:
        raise UserError(f"--gpus must be at least 1, got {n}")
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n > have:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        scope = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
        raise UserError(f"--gpus {n}: PyTorch sees {have} GPU{'s' if have != 1 else ''} on this machine{scope}; "
                        f"use --gpus {have} or fewer" if have else
                        f"--gpus {n}: PyTorch sees no GPU on this machine{scope} (torch {torch.__version__}); "
                        f"for processes on the CPU use --processes {n} --device cpu")


def check_processes(n: int, flag: str = "--processes") -> None:
    if n < 1:
        raise UserError(f"{flag} must be at least 1, got {n}")
    if env_rank() is not None:
        raise UserError("--gpus/--processes inside a torchrun launch: torchrun already started the processes; drop the flag")


def launch(argv: list[str], nproc: int, *, debug: bool = False) -> int:
    """Run `python -m datacurate ARGV` on `nproc` local processes under torch.distributed.run; their exit code."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    os.environ[LAUNCHER_ENV] = str(os.getpid())
    if not debug:  # the children print their own lines; torchrun's agent would add its log and a traceback
        logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    args = parse_args(["--standalone", "--nproc-per-node", str(nproc), "--max-restarts", "0", "--monitor-interval", "0.5",
                       "-m", "datacurate", *argv])
    try:
        run(args)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        code = failure.exitcode
        how = f"was killed by signal {-code}" if code < 0 else f"stopped with exit code {code}"
        print(f"datacurate: error: training process rank {rank} {how} (its message is above); "
              f"{len(exc.failures)} of {nproc} processes failed", file=sys.stderr)
        return 2 if code == 2 else (code if code > 0 else 1)
    except SignalException as exc:
        print(f"datacurate: interrupted ({exc.sigval.name}): the training processes were stopped", file=sys.stderr)
        return 130
    finally:
        os.environ.pop(LAUNCHER_ENV, None)
    return 0


def launched_child() -> bool:
    """True in a process that `launch` started (its parent is the launcher, which holds the workspace lock)."""
    return os.environ.get(LAUNCHER_ENV) == str(os.getppid())
