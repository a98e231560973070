"""Workspace commands: `init` and `demo-data`."""

from __future__ import annotations

from pathlib import Path

import click

from datacurate.api import init_workspace
from datacurate.core.terminal import echo_json
from datacurate.cli.context import json_option, pass_ctx
from datacurate.core.errors import UserError


@click.command()
@json_option
@pass_ctx
def init(ctx, as_json):
    """Make the workspace layout and a commented datacurate.yaml here (or in -C DIR)."""
    ws = ctx.workspace(must_exist=False)
    made = init_workspace(ws.root)
    if as_json:
        return echo_json({"workspace": str(ws.root), "made": made})
    click.echo(f"workspace {ws.root}: " + (", ".join(made) if made else "already set up"))
    click.echo(f"next: copy labeled images into {ws.rel(ws.original)}/<class>/, then datacurate -C {ws.root} clean")


@click.command("demo-data")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--per-class", type=click.IntRange(2, 10000), default=24, show_default=True, help="Images per class.")
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
def demo_data(directory, per_class, seed, as_json):
    """Write a small generated workspace with broken files and duplicates planted among the images."""
    from datacurate.demo.data import CLASSES, make_demo_data

    root = Path(directory)
    if root.exists() and any((root / "data").glob("*/*")):
        raise UserError(f"{root} already holds data; choose an empty folder")
    init_workspace(root)
    planted = make_demo_data(root, per_class=per_class, seed=seed)
    if as_json:
        return echo_json({"workspace": str(root), "classes": list(CLASSES), "per_class": per_class, **planted})
    click.echo(f"wrote {len(CLASSES)} classes x {per_class} images and {planted['problems']} planted problems to {root}")
    click.echo(f"next: datacurate -C {root} clean")


COMMANDS = [init, demo_data]
