"""What every command shares: the context object, option helpers, progress bars."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

import click

from datacurate.core.workspace import Workspace

T = TypeVar("T")


class Context:
    """The global flags every command gets (workspace folder, --debug, --quiet)."""

    def __init__(self, workspace: str | None, debug: bool, quiet: bool):
        self.workspace_arg = workspace
        self.debug = debug
        self.quiet = quiet
        self.overrides: dict = {}  # config sections laid over datacurate.yaml (a pipeline file's)
        self._lock: tuple[str, float | None, click.Context] | None = None

    def lock_as(self, command: str, wait: float | None, click_ctx: click.Context) -> None:
        """Have workspace() take the workspace lock for `command` until the command ends."""
        self._lock = (command, wait, click_ctx)

    def skip_lock(self) -> None:
        """Do not take the workspace lock: another process of the same command holds it (train on several processes)."""
        self._lock = None

    @staticmethod
    def _dry_run_without_state(ws: Workspace) -> bool:
        """A --dry-run in a workspace with no .datacurate yet: not made just to hold a lock."""
        current = click.get_current_context(silent=True)
        return bool(current and current.params.get("dry_run")) and not ws.state_dir.exists()

    def workspace(self, must_exist: bool = True) -> Workspace:
        ws = Workspace.open(self.workspace_arg, must_exist=must_exist)
        if self._lock and ws.root.is_dir() and not self._dry_run_without_state(ws):
            from datacurate.core.lock import workspace_lock

            command, wait, click_ctx = self._lock
            click_ctx.with_resource(workspace_lock(ws, command, wait=wait))  # re-entrant: `run`'s stages share it
        for section, values in self.overrides.items():
            if isinstance(values, dict) and isinstance(ws.config.get(section), dict):
                ws.config[section] = {**ws.config[section], **values}
            else:
                ws.config[section] = values
        if "paths" in self.overrides and must_exist:
            ws.relayout()
        return ws


pass_ctx = click.make_pass_decorator(Context)


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


def echo_table(rows: list[dict], columns: list[str] | None = None, *, err: bool = False) -> None:
    """Print rows as an aligned plain-text table."""
    for line in table_lines(rows, columns):
        click.echo(line, err=err)


def table_lines(rows: list[dict], columns: list[str] | None = None) -> list[str]:
    """Rows as the lines of an aligned plain-text table (wide CJK characters count twice)."""
    if not rows:
        return []
    columns = columns or list(rows[0])
    cells = [[str(c) for c in columns]] + [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(columns))]
    return ["  ".join(_pad(v, w, i > 0 and n > 0 and _numeric(v)) for i, (v, w) in enumerate(zip(row, widths))).rstrip()
            for n, row in enumerate(cells)]


def json_option(func):
    """--json: print the command's summary as JSON (on stdout; the rest goes to stderr or nowhere)."""
    return click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")(func)


def echo_result(result, as_json: bool = False) -> None:
    """Print a datacurate.results object: its JSON, or its lines; its warnings on stderr either way."""
    for line in [result.to_json()] if as_json else result.lines():
        click.echo(line)
    for line in result.warnings():
        click.echo(f"datacurate: warning: {line}", err=True)


def echo_json(data) -> None:
    """Print a summary dict as JSON (--json of commands without a results object)."""
    import json

    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


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
