"""CLI: `datacurate split` and `datacurate stats` (`datacurate report split` is in datacurate.report)."""

from __future__ import annotations

import click

from datacurate.clicommon import echo_table, pass_ctx
from datacurate.errors import UserError
from datacurate.split.options import DEFAULTS, LINK_MODES, SECTION, SplitOptions
from datacurate.split.splitter import split_dataset
from datacurate.split.stats import compute_stats, write_stats

MAX_WARNINGS = 12


@click.command("split")
@click.option("--valid", type=float, default=None, help="Share of each class's original images for valid (default 0.2).")
@click.option("--test", type=float, default=None, help="Share for a third, test split (default 0: none).")
@click.option("--seed", type=int, default=None, help="Seed of the content-hash ranking (default 0).")
@click.option("--min-valid", type=int, default=None, help="At least this many in valid per class of 2+ images (default 1).")
@click.option("--scraped-in-valid/--no-scraped-in-valid", default=None,
              help="Let scraped images into valid/test (default: no, valid is drawn from the originals).")
@click.option("--link", type=click.Choice(LINK_MODES), default=None,
              help="How files get into data/split (default hardlink; copies across file systems).")
@click.option("--final/--no-final", default=None, help="Everything in train, valid empty (for the final submission).")
@click.option("--min-per-class", type=int, default=None, help="Flag classes with fewer train images (default 10).")
@click.option("--fresh", is_flag=True, help="Forget earlier assignments and draw anew (images may change split).")
@click.option("--dry-run", is_flag=True, help="Show what the split would be; write nothing.")
@pass_ctx
def split(ctx, valid, test, seed, min_valid, scraped_in_valid, link, final, min_per_class, fresh, dry_run):
    """Build data/split/train|valid/<class>/ from data/original and data/scraped (ImageFolder layout)."""
    ws = ctx.workspace()
    flags = {"valid": valid, "test": test, "seed": seed, "min_valid": min_valid, "scraped_in_valid": scraped_in_valid,
             "link": link, "final": final, "min_per_class": min_per_class}
    opts = SplitOptions.from_mapping(ws.resolve(SECTION, flags, DEFAULTS))
    res = split_dataset(ws, opts, fresh=fresh, dry_run=dry_run, quiet=ctx.quiet)
    rows, cols = res.balance.table()
    echo_table(rows, cols)
    click.echo(res.balance.summary())
    counts = ", ".join(f"{n} {s}" for s, n in res.counts.items())
    verb = "would place" if dry_run else "placed"
    click.echo(f"split: {verb} {counts} (seed {opts.seed}{', final' if opts.final else ''}, {opts.link}) in {_show(ws, res.folder)}")
    left = len(res.assignment.left_out) + len(res.skipped)
    if left:
        click.echo(f"left out: {left} file(s) (see {_show(ws, res.folder)}/split.csv)")
    if res.assignment.moved:
        click.echo(f"moved: {len(res.assignment.moved)} image(s) changed split to keep linked images together")
    if res.tree and res.tree.copied and opts.link == "hardlink":
        click.echo(f"copied {res.tree.copied} file(s) that could not be hardlinked (another file system)")
    if res.stats_removed:
        click.echo("train changed: removed the stale stats.json; run `datacurate stats`")
    for name, path in res.reports.items():
        click.echo(f"report: {_show(ws, path)}")
    if dry_run:
        click.echo("dry run: nothing written")
    _warn(res.assignment.warnings)


def _show(ws, path) -> str:
    """A path as the user reads it: workspace-relative when inside the workspace."""
    try:
        return ws.rel(path)
    except UserError:
        return str(path)


def _warn(lines: list[str]) -> None:
    for line in lines[:MAX_WARNINGS]:
        click.echo(f"datacurate: warning: {line}", err=True)
    if len(lines) > MAX_WARNINGS:
        click.echo(f"datacurate: warning: ... and {len(lines) - MAX_WARNINGS} more", err=True)


@click.command("stats")
@click.option("--size", type=int, default=None, help="Decode images to about this many pixels a side (default 64).")
@pass_ctx
def stats(ctx, size):
    """Per-channel mean and std of the train split, written to data/split/stats.json for the trainer."""
    ws = ctx.workspace()
    opts = SplitOptions.from_mapping(ws.resolve(SECTION, {"stats_size": size}, DEFAULTS))
    result = compute_stats(ws.split_dir, size=opts.stats_size, quiet=ctx.quiet)
    path = write_stats(result, ws.split_dir)
    fmt = lambda v: " ".join(f"{x:.4f}" for x in v)  # noqa: E731
    click.echo(f"mean {fmt(result.mean)}  std {fmt(result.std)}  over {result.count} train images -> {_show(ws, path)}")
    if result.skipped:
        _warn([f"{len(result.skipped)} image(s) did not decode and were skipped, e.g. {result.skipped[0]}"])


COMMANDS = [split, stats]
