"""`datacurate demo`: the main job on built-in data, fully offline.

Makes a workspace of generated pictures (with planted problems), starts a loopback image-search
engine that serves more pictures for each class (with broken files, duplicates, a mislabeled
copy and off-topic pictures among them), then runs the demo pipeline through the real code
paths: scrape from that engine, clean, vet (with a small CNN trained on the originals alone),
split, train a small CNN on the kept set, evaluate, predict.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from datacurate import api
from datacurate.core.errors import UserError
from datacurate.core.fsutil import atomic_write_text
from datacurate.demo.data import CLASSES, background, draw, jpeg, make_demo_data
from datacurate.pipeline.execute import Session, execute, run_name
from datacurate.pipeline.runner import load_pipeline

PIPELINE = Path(__file__).resolve().parents[1] / "data" / "demo.yaml"
MARKER = "demo.json"


def search_results(root: Path, queries: dict[str, list[str]], seed: int = 1) -> dict[str, list]:
    """What the loopback engine returns for each class's query: good pictures and every trap."""
    from datacurate.demo.engine import ImageSpec

    rng = random.Random(seed)
    originals = {k: sorted((root / "data" / "original" / k).glob(f"{k.split('_')[0]}_[0-9]*.jpg")) for k in CLASSES}
    results = {}
    for i, klass in enumerate(CLASSES):
        other = CLASSES[(i + 1) % len(CLASSES)]
        near = Image.open(originals[klass][3]).resize((150, 112))
        traps = [
            ImageSpec(jpeg(draw(klass, rng)), fault="html"),          # an error page served as image/jpeg
            ImageSpec(jpeg(draw(klass, rng)), fault="cut"),           # half an image
            ImageSpec(jpeg(draw(klass, rng)), fault="404"),
            ImageSpec(jpeg(draw(klass, rng)), fault="bomb"),          # claims 20000x20000 pixels
            ImageSpec(originals[klass][0].read_bytes()),              # bytes the workspace already has
            ImageSpec(jpeg(near, 70)),                                # a resized copy of an original: clean's near-duplicate
            ImageSpec(jpeg(Image.open(originals[other][5]).resize((140, 105)), 75)),  # another class's picture: label conflict
            ImageSpec(jpeg(background(rng, (160, 120)))),             # off-topic: no shape at all
            ImageSpec(jpeg(size_chart(rng))),                         # off-topic: a shop's size chart
            ImageSpec(jpeg(banner(rng, klass))),                      # off-topic: a shop banner with the query's word
            ImageSpec(jpeg(draw(klass, rng)), fault="png"),           # a PNG behind a .jpg URL
            ImageSpec(jpeg(draw(klass, rng)), fault="webp"),          # a WebP behind a .jpg URL
        ]
        good = [ImageSpec(jpeg(draw(klass, rng))) for _ in range(24)]
        for query in queries.get(klass, []):
            results[query] = traps + good
    return results


def size_chart(rng: random.Random, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """White page, black table grid and numbers: what a search for a product returns between photos."""
    im = Image.new("RGB", size, (250, 250, 250))
    d = ImageDraw.Draw(im)
    rows, cols = rng.randint(4, 7), rng.randint(3, 5)
    for r in range(rows + 1):
        d.line((8, 8 + r * (size[1] - 16) // rows, size[0] - 8, 8 + r * (size[1] - 16) // rows), fill=(30, 30, 30))
    for c in range(cols + 1):
        d.line((8 + c * (size[0] - 16) // cols, 8, 8 + c * (size[0] - 16) // cols, size[1] - 8), fill=(30, 30, 30))
        for r in range(rows):
            d.text((12 + c * (size[0] - 16) // cols, 10 + r * (size[1] - 16) // rows), str(rng.randint(30, 120)), fill=(0, 0, 0))
    return im


def banner(rng: random.Random, text: str, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A flat brightly coloured banner with large lettering."""
    im = Image.new("RGB", size, tuple(rng.randint(0, 255) for _ in range(3)))
    d = ImageDraw.Draw(im)
    for n in range(3):
        d.text((10, 20 + 30 * n), f"{text.upper()} SALE -{rng.randint(10, 70)}%", fill=(255, 255, 255))
    return im


def prepare(root: Path, per_class: int) -> None:
    """Make the demo workspace once; a folder holding other data is refused."""
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} is a file; the demo needs a new folder (e.g. `datacurate demo datacurate-demo`)")
    marker = root / ".datacurate" / MARKER
    if marker.exists():
        return
    if root.exists() and any(root.iterdir()):
        raise UserError(f"{root} exists and is not a datacurate demo; choose a new folder")
    api.init_workspace(root)
    make_demo_data(root, per_class=per_class)
    atomic_write_text(marker, json.dumps({"per_class": per_class}))


def run_demo(session: Session, root: Path, *, per_class: int, force: bool, as_json: bool = False) -> None:
    """Make the demo workspace, run its pipeline against a loopback engine, predict; with as_json every
    stage's output goes to stderr and stdout gets one JSON summary (the pipeline's, the reports, the run).

    `session` opens the workspace at `root` (the CLI's: with the workspace lock) and prints.
    """
    from datacurate.demo.engine import FakeEngine
    from datacurate.scrape.queries import plan_queries

    prepare(root, per_class)
    pipeline = load_pipeline(PIPELINE)
    scrape = pipeline.config["scrape"]
    queries = plan_queries(list(CLASSES), scrape["template"], scrape["suffix"], {})
    reports = [root / "reports" / name for name in ("clean.html", "clean-duplicates.html", "vet.html", "balance.html")]
    run_dir = root / "runs" / run_name(pipeline)
    echo = session.term.echo
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        with FakeEngine(search_results(root, queries)) as engine:
            echo(f"demo workspace: {root}  (loopback image search at {engine.base_url})")
            summary = execute(session, pipeline, force=force, extra={"scrape": {"base_url": [f"bing={engine.base_url}"]}})
        _predict(session, root, run_name(pipeline))
        echo("reports:")
        for path in reports:
            if path.exists():
                echo(f"  {path}")
        echo(f"  {run_dir}/ (history.png, eval/)")
    if as_json:
        echo(json.dumps({"workspace": str(root), **summary, "reports": [str(p) for p in reports if p.exists()],
                         "run": str(run_dir), "run_report": str(run_dir / "report.html")}, ensure_ascii=False, indent=2, default=str))


def _predict(session: Session, root: Path, run: str) -> None:
    """Predict the held-out test pictures and print the JSON lines."""
    session.term.echo("== predict (data/test)")
    result = api.predict(session.workspace(), run, [str(root / "data" / "test")], top=2)
    session.term.show(result)
    failed = sum("error" in rec for rec in result.records)
    if failed:
        raise UserError(f"{failed} images could not be decoded (their lines carry an \"error\")")
