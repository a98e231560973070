"""CLI for `datacurate vet`."""

from __future__ import annotations

import json

import click

from datacurate.clicommon import echo_table, pass_ctx
from datacurate.cluster.cli import ray_flag, ray_options


@click.command()
@click.option("--backbone", help="torchvision classification architecture (default resnet50).")
@click.option("--weights", help="imagenet | none | PATH: a local state dict or datacurate checkpoint for --backbone (default imagenet).")
@click.option("--run", help="Embed with a datacurate run's model (name under runs/, folder or .pt) instead of --backbone.")
@click.option("--train-first", is_flag=True, default=None, help="With --run NAME: train that run on the originals first when it does not exist.")
@click.option("--img-size", type=int, help="Backbone input size (default 224; a run uses its own).")
@click.option("--batch-size", type=int, help="Images per batch (default 64).")
@click.option("--workers", type=int, help="DataLoader workers (default min(8, CPUs - 1)).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), help="Where the backbone runs (default auto).")
@click.option("--neighbours", type=int, help="Nearest originals compared with (default 5).")
@click.option("--offtopic-quantile", type=float, help="Calibration: this quantile of the originals' own distances (default 0.98).")
@click.option("--offtopic-threshold", type=float, help="A fixed cosine distance instead of the calibrated threshold.")
@click.option("--keep-recognised/--no-keep-recognised", default=None,
              help="A far image the classifier confidently calls its own class is kept, not off-topic (default on).")
@click.option("--recognised-prob", type=float,
              help="Own-class probability that counts as confident: this or cleanlab's threshold, the lower (default 0.9).")
@click.option("--recognised-within", type=float,
              help="A recognised image is kept only within this many times its class's threshold (default 3).")
@click.option("--folds", type=int, help="K of the K-fold logistic regression (default 5).")
@click.option("--move-originals", is_flag=True, default=None, help="Also move originals that look like another class.")
@click.option("--seed", type=int, help="Seed (default 0).")
@click.option("--dry-run", is_flag=True, help="Print the plan; move nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@ray_options
@pass_ctx
def vet(ctx, dry_run, as_json, ray, no_ray, **flags):
    """Set aside scraped images that are off-topic or look like another class (originals are only listed)."""
    from datacurate.vet.run import vet as vet_images

    ws = ctx.workspace()
    quiet = ctx.quiet or as_json
    result = vet_images(ws, dry_run=dry_run, quiet=quiet, echo=click.echo if not as_json else lambda s: None,
                        ray=ray_flag(ray, no_ray), **flags)
    for name, why in result.skipped_classes.items():
        click.echo(f"datacurate: {name}: {why}; skipped", err=True)
    if as_json:
        click.echo(json.dumps(result.summary(), ensure_ascii=False, indent=2))
        return
    verb = "would move" if dry_run else "moved"
    for f in result.flags:
        where = f"-> {f.dst}" if f.dst else ("(original: listed, not moved)" if not f.move else f"[{verb}]")
        click.echo(f"{f.reason:<11}  {f.path}  {where}  {f.detail}")
    rows = [{"class": name, **c} for name, c in result.classes.items()]
    echo_table(rows, ["class", "originals", "scraped", "threshold", "off-topic", "wrong-class"])
    counts = result.counts()
    click.echo(f"{result.model}: embedded {result.embedded} new images ({result.cached} from the cache); "
               f"{'would set aside' if dry_run else 'set aside'} {counts['off-topic']} off-topic and "
               f"{counts['wrong-class']} wrong-class" + (f"; {len(result.listed)} originals listed" if result.listed else "")
               + f" in {result.seconds:.1f}s" + ("; dry run: nothing moved" if dry_run else ""))
    for note in result.notes:
        click.echo(note)
    for path in result.reports.values():
        click.echo(f"report: {path}")
    if result.undecodable:
        click.echo(f"warning: {len(result.undecodable)} files did not decode and were left alone (run `datacurate clean`)", err=True)


COMMANDS = [vet]
