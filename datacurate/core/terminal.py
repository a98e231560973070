"""Terminal output every stage and command shares: progress bars, phase lines, tables, results.

Plain Python writes: each line goes to sys.stdout or sys.stderr as they are at the call (a test may
swap them) and is flushed at once. The commands' context and flags are in datacurate/cli/.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "", quiet: bool = False) -> Iterator[T]:
    """A progress bar on stderr (none with --quiet, or when stderr is not a terminal)."""
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=desc, disable=True if quiet else None, file=sys.stderr, leave=False, dynamic_ncols=True)


PHASE_THREAD = "datacurate-phase"  # imageio.captured_noise lets this thread run while it holds fd 2


@contextmanager
def phase(desc: str, *, quiet: bool = False) -> Iterator[None]:
    """A line on stderr naming a phase of a long command, with its running time, cleared when it ends.

    Only on a terminal and without --quiet (or --json): a log or a pipe gets nothing. It writes to a
    copy of the terminal's descriptor, so it stays visible while captured_noise holds fd 2.
    """
    out = None if quiet else _terminal()
    if out is None:
        yield
        return
    from tqdm import tqdm

    bar = tqdm(total=None, desc=desc, bar_format="{desc} {elapsed}", file=out, leave=False, dynamic_ncols=True)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.5):
            bar.refresh()

    ticker = threading.Thread(target=tick, name=PHASE_THREAD, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
        bar.close()


_TERMINAL: list = []


def _terminal():
    """A text stream on a duplicate of stderr's descriptor when stderr is a terminal, else None."""
    try:
        if not sys.stderr.isatty():
            return None
        if not _TERMINAL or _TERMINAL[0][0] != os.getpid():
            stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", encoding="utf-8", errors="replace")
            atexit.register(stream.close)
            _TERMINAL[:] = [(os.getpid(), stream)]
        return _TERMINAL[0][1]
    except (AttributeError, OSError, ValueError):
        return None


def echo(line: str = "", *, err: bool = False) -> None:
    """Write one line to stdout (or stderr) and flush it; nothing when the stream is missing (pythonw)."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:
        return
    stream.write(f"{line}\n")
    stream.flush()


def echo_table(rows: list[dict], columns: list[str] | None = None, *, err: bool = False) -> None:
    """Print rows as an aligned plain-text table."""
    for line in table_lines(rows, columns):
        echo(line, err=err)


def table_lines(rows: list[dict], columns: list[str] | None = None) -> list[str]:
    """Rows as the lines of an aligned plain-text table (wide CJK characters count twice)."""
    if not rows:
        return []
    columns = columns or list(rows[0])
    cells = [[str(c) for c in columns]] + [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(columns))]
    return ["  ".join(_pad(v, w, i > 0 and n > 0 and _numeric(v)) for i, (v, w) in enumerate(zip(row, widths))).rstrip()
            for n, row in enumerate(cells)]


def echo_json(data) -> None:
    """Print a summary dict as JSON (--json of commands without a results object)."""
    import json

    echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _numeric(v: str) -> bool:
    try:
        float(v.rstrip("%"))
        return True
    except ValueError:
        return False


def _width(s: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _pad(s: str, width: int, right: bool) -> str:
    gap = " " * (width - _width(s))
    return gap + s if right else s + gap
