"""The `datacurate` command: a thin click group; each stage's commands live beside its library."""

from __future__ import annotations

import importlib
import sys
import traceback

import click

from datacurate import stages
from datacurate.cli.context import Context
from datacurate.core.errors import UserError, cut
from datacurate.core.version import __version__

# Command name -> module defining it (in its COMMANDS list), in `datacurate --help` order: module by module,
# each module's stage commands first (datacurate/stages.py names each stage's module), then its others.
# Modules load only when their command runs, so `datacurate clean` does not pay for importing torch or icrawler.
OTHER_COMMANDS = {
    "commands": ("init", "demo-data"),
    "clean": ("restore", "keep", "reason", "relabel"),
    "review": ("review",),
    "vet": (),
    "scrape": (),
    "split": (),
    "report": ("report",),
    "train": ("predict", "fit-head", "export", "augment-preview"),
    "pipeline": ("run", "demo"),
}
COMMANDS = {name: f"datacurate.cli.{module}" for module, others in OTHER_COMMANDS.items()
            for name in (*stages.commands_in(f"datacurate.cli.{module}"), *others)}
COMMANDS.update({s.name: s.command_module for s in stages.STAGES if s.name not in COMMANDS})

# Commands that write in the workspace: each holds the workspace lock (datacurate/core/lock.py) while it
# runs; a second one waits --wait seconds, then refuses naming the holder. Add a writing command here.
# report and augment-preview rewrite reports/, which the writing stages also write. evaluate, predict, fit-head
# and export take no lock: they write only inside one run's folder, every file atomically (a temporary file
# renamed), never a checkpoint or history a running `train` reads, so a train meanwhile sees whole files.
LOCKED = {"clean", "restore", "split", "stats", "scrape", "train", "run", "demo", "vet", "keep", "relabel", "report", "augment-preview"}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when the command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[name])
        return next(c for c in module.COMMANDS if c.name == name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="datacurate")
@click.option("-C", "--workspace", metavar="DIR", help="Workspace folder (default: the current directory).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--wait", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="How long a writing command waits for another one in the same workspace (default 5).")
@click.pass_context
def main(ctx: click.Context, workspace: str | None, debug: bool, quiet: bool, wait: float | None) -> None:
    """Grow, clean and split a labeled image collection, and fine-tune a classifier on it."""
    ctx.obj = Context(workspace, debug, quiet)
    if ctx.invoked_subcommand in LOCKED:
        ctx.obj.lock_as(ctx.invoked_subcommand, wait, ctx)


def run() -> None:
    """Console entry point: user errors are one line on stderr and exit code 2."""
    debug = "--debug" in sys.argv[1:]
    try:
        code = main.main(standalone_mode=False)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - each kind gets its one line below
        sys.exit(_report(exc, debug))
    sys.exit(code if isinstance(code, int) else 0)


def _report(exc: BaseException, debug: bool) -> int:
    """Print the one line an exception gets and return the exit code."""
    from datacurate.core.oserrors import user_error

    exc = user_error(exc) or exc  # file-system and catalog errors a user can cause: UserErrors
    if isinstance(exc, UserError):
        if debug:
            traceback.print_exception(exc)
        click.echo(f"datacurate: error: {cut(str(exc), 2000)}", err=True)  # one line, whatever it echoes
        return 2
    if isinstance(exc, (click.exceptions.Abort, KeyboardInterrupt)):  # Abort is click's form of Ctrl-C
        click.echo("datacurate: interrupted", err=True)
        return 130
    if isinstance(exc, click.UsageError):
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"datacurate: error: {exc.format_message()}{hint}", err=True)
        return 2
    if isinstance(exc, click.ClickException):
        click.echo(f"datacurate: error: {exc.format_message()}", err=True)
        return exc.exit_code
    if debug:
        raise exc
    click.echo(f"datacurate: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
    return 1


if __name__ == "__main__":
    run()
