"""CLI for `datacurate clean` and `datacurate restore`."""

from __future__ import annotations

import json

import click

from datacurate.clean.restore import restore as restore_files
from datacurate.clean.run import clean as clean_files
from datacurate.clicommon import echo_table, pass_ctx
from datacurate.clean.neardup import DEFAULT_THRESHOLD
from datacurate.imageio import HASH_KINDS, REASONS

SET_ASIDE = REASONS + ("duplicate", "near-duplicate", "label-conflict", "test-leak", "converted")


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--workers", type=int, help="Decoding processes (default: all cores).")
@click.option("--min-size", type=int, help="Smallest short side in pixels (default 32).")
@click.option("--max-pixels", type=int, help="Largest width x height (default Pillow's 89,478,485).")
@click.option("--max-aspect", type=float, help="Largest long/short side ratio (default 10).")
@click.option("--hash", "hash_", type=click.Choice(HASH_KINDS), help="Perceptual hash (default phash).")
@click.option("--threshold", type=int, help=f"Near-duplicate Hamming distance in bits (default {DEFAULT_THRESHOLD}).")
@click.option("--against", type=click.Path(), help="Test folder to check for leaks (default: data/test if present).")
@click.option("--dry-run", is_flag=True, help="Print the plan; move nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--rebuild-catalog", is_flag=True, help="Set the catalog aside and rebuild it from the folders first.")
@pass_ctx
def clean(ctx, paths, workers, min_size, max_pixels, max_aspect, hash_, threshold, against, dry_run, as_json,
          rebuild_catalog):
    """Set aside broken files, duplicates, near-duplicates and test leaks (nothing is deleted).

    PATHS default to the workspace's data/original and data/scraped.
    """
    ws = ctx.workspace()
    if rebuild_catalog:
        from datacurate.rebuild import rebuild_catalog as rebuild

        for line in rebuild(ws, quiet=ctx.quiet or as_json).lines(ws):
            click.echo(line, err=as_json)
    result = clean_files(ws, paths, dry_run=dry_run, quiet=ctx.quiet or as_json, workers=workers, min_size=min_size,
                         max_pixels=max_pixels, max_aspect=max_aspect, hash=hash_, threshold=threshold, against=against)
    if as_json:
        click.echo(json.dumps(result.summary(), ensure_ascii=False, indent=2))
        return
    if dry_run:
        for fix in result.fixes:
            click.echo(f"would {fix.action}  {fix.path} -> {fix.dst}")
        for d in result.decisions:
            click.echo(f"would set aside  {d.path}  [{d.reason}]  {d.detail}")
    rows = [{"result": "kept", "files": result.kept}, {"result": "fixed", "files": len(result.fixes)}]
    rows += [{"result": reason, "files": n} for reason, n in result.counts.items()]
    if result.conflicts_reported:
        rows.append({"result": "conflicts reported (not moved)", "files": len(result.conflicts_reported)})
    echo_table(rows, ["result", "files"])
    verb = "would set aside" if dry_run else "set aside"
    click.echo(f"{result.scanned} files checked in {result.seconds:.1f}s; {verb} {len(result.decisions)}"
               + ("; dry run: nothing moved" if dry_run else f"; quarantine: {ws.rel(ws.quarantine)}"))
    for name, path in result.reports.items():
        click.echo(f"report: {path}")
    if result.outside:
        click.echo(f"warning: {len(result.outside)} files lie outside class folders and were left alone", err=True)


@click.command()
@click.option("--reason", "reasons", multiple=True, type=click.Choice(SET_ASIDE), help="Only files set aside for this reason (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print what would move back.")
@pass_ctx
def restore(ctx, reasons, dry_run):
    """Move quarantined files back to where they came from."""
    ws = ctx.workspace()
    result = restore_files(ws, tuple(reasons), dry_run=dry_run)
    for src, dst, reason in result.moves:
        if dry_run:
            click.echo(f"would restore  {src} -> {dst}  [{reason}]")
    echo_table([{"reason": r, "files": n} for r, n in result.counts().items()], ["reason", "files"])
    click.echo(f"{'would restore' if dry_run else 'restored'} {len(result.moves)} files")


COMMANDS = [clean, restore]
