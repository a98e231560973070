"""The executor that runs every batch here, in this process, one item at a time."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from datacurate.core.terminal import progress


class Serial:
    """kernel([item], *shared) for each item in turn, with a progress bar on stderr."""

    remote = False

    def map(self, kernel: Callable[..., list], items: Sequence[Any], *shared: Any, desc: str = "",
            quiet: bool = True) -> list:
        """One result per item, in order (see base.Executor.map)."""
        return [out for item in progress(items, total=len(items), desc=desc, quiet=quiet)
                for out in kernel([item], *shared)]
