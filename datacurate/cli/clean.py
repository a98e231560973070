"""CLI for `datacurate clean`, `restore`, `keep`, `reason` and `relabel`."""

from __future__ import annotations

import click

from datacurate.clean.options import CleanOptions
from datacurate.clean.reasons import KEEPABLE, SET_ASIDE
from datacurate.clean.restore import DERIVED, RENAMED
from datacurate.clean.restore import restore as restore_files
from datacurate.core.terminal import echo_json, echo_table
from datacurate.results import TERMINAL
from datacurate.cli.context import json_option, pass_ctx
from datacurate.cli.flags import model_options
from datacurate.cli.ray import ray_flag, ray_options
from datacurate.core.fsutil import shown


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@model_options(CleanOptions)
@click.option("--dry-run", is_flag=True, help="Print the plan; move nothing.")
@json_option
@click.option("--rebuild-catalog", is_flag=True, help="Set the catalog aside and rebuild it from the folders first.")
@ray_options
@pass_ctx
def clean(ctx, paths, dry_run, as_json, rebuild_catalog, ray, no_ray, **options):
    """Set aside broken files, duplicates, near-duplicates and test leaks (nothing is deleted).

    PATHS default to the workspace's data/original and data/scraped.
    """
    from datacurate import api

    run = api.clean(ctx.workspace(), paths, dry_run=dry_run, rebuild_catalog=rebuild_catalog, quiet=ctx.quiet or as_json,
                    ray=ray_flag(ray, no_ray), **options)
    TERMINAL.show(run, as_json)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--reason", "reasons", multiple=True, type=click.Choice(SET_ASIDE),
              help=f"Only files set aside for this reason (repeatable); `{RENAMED}`: undo renames; "
                   f"`{DERIVED}`: changed PNGs clean had made (never restored otherwise).")
@click.option("--dry-run", is_flag=True, help="Print what would move back.")
@json_option
@pass_ctx
def restore(ctx, paths, reasons, dry_run, as_json):
    """Move quarantined files back to where they came from: PATHS (in quarantine, or by the path they had), or all.

    A later clean may set a restored file aside again; `datacurate keep PATH` makes it stay.
    """
    ws = ctx.workspace()
    if paths and reasons:
        raise click.UsageError("name files or --reason, not both")
    result = restore_files(ws, tuple(reasons), paths=paths, dry_run=dry_run)
    if as_json:
        echo_json(_restored_json(result, dry_run))
        return
    _echo_restored(result, dry_run)


def _restored_json(result, dry_run: bool) -> dict:
    return {"dry_run": dry_run, "restored": [{"from": s, "to": d, "reason": r} for s, d, r in result.moves],
            "counts": result.counts(), "removed": result.removed}


def _echo_restored(result, dry_run: bool) -> None:
    for src, dst, reason in result.moves:
        click.echo(f"{'would restore' if dry_run else 'restored'}  {shown(src)} -> {shown(dst)}  [{reason}]")
    echo_table([{"reason": r, "files": n} for r, n in result.counts().items()], ["reason", "files"])
    click.echo(f"{'would restore' if dry_run else 'restored'} {len(result.moves)} files"
               + (f"; removed {len(result.removed)} PNGs clean had made from them" if result.removed else ""))


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--not-duplicates", is_flag=True,
              help="These files are not copies of each other: clean never pairs them again (and brings back the one it set aside).")
@click.option("--reason", "reasons", multiple=True, type=click.Choice(KEEPABLE),
              help="Keep against this reason only (repeatable; default: every reason).")
@click.option("--dry-run", is_flag=True, help="Print what would happen; remember nothing, move nothing.")
@json_option
@pass_ctx
def keep(ctx, paths, not_duplicates, reasons, dry_run, as_json):
    """Keep these files: back from quarantine, and no later clean or vet sets them aside again.

    Remembered by content (sha256): a kept file stays kept when renamed, moved or scraped again.
    """
    from datacurate.clean.keep import keep as keep_files

    if not_duplicates and reasons:
        raise click.UsageError("--not-duplicates takes no --reason")
    ws = ctx.workspace()
    result = keep_files(ws, paths, reasons=reasons, not_duplicates=not_duplicates, dry_run=dry_run)
    if as_json:
        echo_json(result.summary())
        return
    verb = "would keep" if dry_run else "kept"
    for a, b in result.apart:
        click.echo(f"{'would record' if dry_run else 'recorded'}  not duplicates: {shown(a)}  {shown(b)}")
    for p in result.kept:
        click.echo(f"{verb}  {shown(p)}" + (f"  (against {', '.join(reasons)})" if reasons else ""))
    if result.restored.moves:
        _echo_restored(result.restored, dry_run)
    if dry_run:
        click.echo("dry run: nothing recorded, nothing moved")


@click.command()
@click.argument("path", type=click.Path())
@json_option
@pass_ctx
def reason(ctx, path, as_json):
    """Why a file was set aside (stage, reason, score, when) and what it was compared with."""
    from datacurate.clean.keep import reason as reason_of

    found = reason_of(ctx.workspace(), path)
    if as_json:
        echo_json(found.to_dict())
        return
    for line in found.lines():
        click.echo(shown(line))


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.argument("klass", metavar="CLASS")
@click.option("--new-class", is_flag=True, help="Make CLASS when no class of that name exists yet.")
@click.option("--dry-run", is_flag=True, help="Print what would move; move nothing.")
@json_option
@pass_ctx
def relabel(ctx, paths, klass, new_class, dry_run, as_json):
    """Move PATHS to the class folder CLASS (out of quarantine too); later clean and vet runs keep the label.

    `datacurate restore PATH` puts a relabelled file back where it was.
    """
    from datacurate import api

    result = api.relabel(ctx.workspace(), paths, klass, new_class=new_class, dry_run=dry_run)
    if as_json:
        echo_json(result.summary())
        return
    for src, dst, was in result.moves:
        click.echo(f"{'would relabel' if dry_run else 'relabelled'}  {shown(src)} -> {shown(dst)}  [{shown(was)} -> {shown(klass)}]")
    if dry_run:
        click.echo("dry run: nothing moved")


COMMANDS = [clean, restore, keep, reason, relabel]
