"""The click side of every command: the context object (global flags, the workspace and its lock) and --json."""

from __future__ import annotations

import click

from datacurate.core.workspace import Workspace


class Context:
    """The global flags every command gets (workspace folder, --debug, --quiet)."""

    def __init__(self, workspace: str | None, debug: bool, quiet: bool):
        self.workspace_arg = workspace
        self.debug = debug
        self.quiet = quiet
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
        return ws


pass_ctx = click.make_pass_decorator(Context)


def json_option(func):
    """--json: print the command's summary as JSON (on stdout; the rest goes to stderr or nowhere)."""
    return click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")(func)
