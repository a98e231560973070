"""Speed of clean's review report at 10,000 set-aside images, against the string-built report it replaces.

Makes N near-duplicate pairs (an original and a smaller JPEG copy) in a fresh workspace, runs
clean (which sets N copies aside), then times in the same run:

  baseline: the former report's way: one inline data-URI thumbnail per card, made one by one
            (report.html.card), for every card (the former page capped this at 200 per reason);
  report:   `datacurate report clean` (datacurate.regenerate.report), cold (no thumbnails
            made yet: made in worker processes) and warm (thumbnails reused), every card on pages.

    python benchmarks/bench_report.py --pairs 10000
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacurate.clean.run import clean  # noqa: E402
from datacurate.report.html import card  # noqa: E402
from datacurate.regenerate import report  # noqa: E402
from datacurate.core.workspace import Workspace  # noqa: E402


def make(root: Path, pairs: int, side: int = 160) -> None:
    rng = np.random.default_rng(0)
    for i in range(pairs):
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize((side, side * 3 // 4), Image.BICUBIC)
        folder = f"c{i % 20:02d}"
        copy = im.resize((side * 4 // 5, side * 3 // 5))
        for src, pic, name in (("original", im, f"{i:05d}.png"), ("scraped", copy, f"{i:05d}.jpg")):
            path = root / "data" / src / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            pic.save(buf, "PNG" if name.endswith("png") else "JPEG", quality=85)
            path.write_bytes(buf.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=10000)
    ap.add_argument("--side", type=int, default=160, help="width of the originals (copies: 4/5 of it); "
                    "pictures of at most 256 px are shown as they are, larger ones get thumbnails")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        t = time.perf_counter()
        make(root, args.pairs, args.side)
        print(f"made {2 * args.pairs} files in {time.perf_counter() - t:.1f} s")
        # the synthetic pictures (upscaled noise) are blurry to clean's flags: not what is measured here
        (root / "datacurate.yaml").write_text("clean:\n  keep_flags: true\n  blurry_below: 0.0\n", encoding="utf-8")
        ws = Workspace.open(root)
        t = time.perf_counter()
        result = clean(ws)
        print(f"clean: {result.scanned} files, set aside {len(result.decisions)} in {time.perf_counter() - t:.1f} s "
              f"(its report included)")
        import shutil

        shutil.rmtree(ws.reports / "thumbs", ignore_errors=True)
        (ws.reports / ".clean-pages.json").unlink(missing_ok=True)  # cold: every page made again
        paths = [ws.abs(result.moved.get(d.path, d.path)) for d in result.decisions]
        t = time.perf_counter()
        html = "".join(card(p, [p.name]) for p in paths)
        base = time.perf_counter() - t
        print(f"baseline (inline data-URI thumbnail per card, one by one): {len(paths)} cards in {base:.1f} s, "
              f"{len(html) / 1e6:.1f} MB of HTML")
        t = time.perf_counter()
        report(ws, ["clean"])
        cold = time.perf_counter() - t
        t = time.perf_counter()
        report(ws, ["clean"])
        warm = time.perf_counter() - t
        pages = list((ws.reports / "clean-pages").glob("*.html")) + [ws.reports / "clean.html"]
        size = sum(p.stat().st_size for p in pages) / 1e6
        thumbs = len(list((ws.reports / "thumbs").glob("*.jpg")))
        print(f"datacurate report clean, cold: {cold:.1f} s ({thumbs} thumbnails made, {os.cpu_count()} cores); "
              f"warm: {warm:.1f} s; {len(pages)} pages, {size:.1f} MB of HTML")
        print(f"speed-up over the baseline: cold {base / cold:.1f}x, warm {base / warm:.1f}x")


if __name__ == "__main__":
    main()
