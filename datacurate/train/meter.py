"""The training bar: running loss, images/s and learning rates while a pass runs.

On a terminal it is a tqdm bar whose postfix is refreshed at most every REFRESH seconds (the running loss is
summed on the device; reading it is the only sync, once per refresh). Elsewhere (a CI log, `2> file`) there
is no bar: a plain line every LINE_EVERY seconds of a long pass, and the loop's one line per epoch.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Iterable, Iterator, TextIO

import torch

REFRESH = 1.0  # seconds between postfix updates on a terminal
LINE_EVERY = 60.0  # seconds between progress lines when stderr is not a terminal


def format_lrs(lrs: dict[str, float], compact: bool = False) -> str:
    """`fc 0.0005, layer4 5e-05` (or `5e-05/0.0005` compactly, in group order); '' when there are none."""
    if compact:
        return "/".join(f"{lr:.2g}" for lr in lrs.values())
    return ", ".join(f"{g} {lr:.2g}" for g, lr in lrs.items())


class Meter:
    """Wraps one pass over a loader; `update` after each batch with the device-side loss sum and image count."""

    def __init__(self, items: Iterable, total: int, desc: str, *, quiet: bool, echo: Callable[[str], None],
                 lrs: Callable[[], dict[str, float]] | None = None, stream: TextIO | None = None):
        from tqdm import tqdm

        self.stream = stream or sys.stderr
        self.tty = not quiet and _isatty(self.stream)
        self.quiet, self.echo, self.lrs, self.desc, self.total = quiet, echo, lrs, desc, total
        self.bar = tqdm(items, total=total, desc=desc, disable=not self.tty, file=self.stream, leave=False, dynamic_ncols=True)
        self.t0 = self.shown = self.lined = time.perf_counter()
        self.images, self.steps = 0, 0

    def __iter__(self) -> Iterator:
        return iter(self.bar)

    @property
    def rate(self) -> float:
        """Images per second since the pass started."""
        return self.images / max(time.perf_counter() - self.t0, 1e-9)

    def update(self, loss_sum: torch.Tensor, images: int) -> None:
        self.images, self.steps = images, self.steps + 1
        now = time.perf_counter()
        if self.tty and now - self.shown >= REFRESH:
            self.shown = now
            self.bar.set_postfix_str(self.status(loss_sum, compact=True))
        elif not self.tty and not self.quiet and now - self.lined >= LINE_EVERY:
            self.lined = now
            self.echo(f"{self.desc}: {self.steps}/{self.total} batches, {self.status(loss_sum)}")

    def status(self, loss_sum: torch.Tensor, compact: bool = False) -> str:
        loss = loss_sum.item() / self.images if self.images else float("nan")
        parts = [f"loss {loss:.4f}", f"{self.rate:.0f} img/s"]
        lrs = self.lrs() if self.lrs else {}
        if lrs:
            parts.append(f"lr {format_lrs(lrs, compact)}")
        return ", ".join(parts)

    def close(self) -> None:
        self.bar.close()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
