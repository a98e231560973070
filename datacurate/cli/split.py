"""CLI: `datacurate split` and `datacurate stats` (`datacurate report split` is in datacurate.report)."""

from __future__ import annotations

import click

from datacurate.cli.context import json_option, pass_ctx
from datacurate.core.errors import UserError
from datacurate.split.options import CONVERT_FORMATS, LINK_MODES, MANIFEST_FORMATS

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
@click.option("--convert", type=click.Choice(CONVERT_FORMATS + ("none",)), default=None,
              help="Place files timm's and fastai's readers skip (webp, bmp, tiff...) converted to JPEG or PNG (default: none).")
@click.option("--jpeg-quality", type=int, default=None, help="Quality of --convert jpeg files, 1..100 (default 95).")
@click.option("--manifest", type=click.Choice(MANIFEST_FORMATS + ("none",)), default=None,
              help="Write data/split/manifest.csv|jsonl and Hugging Face imagefolder metadata per split (default: none).")
@click.option("--fresh", is_flag=True, help="Forget earlier assignments and draw anew (images may change split).")
@click.option("--dry-run", is_flag=True, help="Show what the split would be; write nothing.")
@json_option
@pass_ctx
def split(ctx, valid, test, seed, min_valid, scraped_in_valid, link, final, min_per_class, convert, jpeg_quality,
          manifest, fresh, dry_run, as_json):
    """Build data/split/train|valid/<class>/ from data/original and data/scraped (ImageFolder layout)."""
    from datacurate import api

    flags = {"valid": valid, "test": test, "seed": seed, "min_valid": min_valid, "scraped_in_valid": scraped_in_valid,
             "link": link, "final": final, "min_per_class": min_per_class, "convert": convert,
             "jpeg_quality": jpeg_quality, "manifest": manifest}
    run = api.split(ctx.workspace(), fresh=fresh, dry_run=dry_run, quiet=ctx.quiet or as_json, **flags)
    for line in [run.to_json()] if as_json else run.lines():
        click.echo(line)
    _warn(run.warnings())


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
@json_option
@pass_ctx
def stats(ctx, size, as_json):
    """Per-channel mean and std of the train split, written to data/split/stats.json for the trainer."""
    from datacurate import api

    run = api.stats(ctx.workspace(), size=size, quiet=ctx.quiet or as_json)
    for line in [run.to_json()] if as_json else run.lines():
        click.echo(line)
    _warn(run.warnings())


COMMANDS = [split, stats]
