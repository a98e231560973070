"""Images/s of `datacurate scrape` against icrawler 0.6.10's stock BingImageCrawler, side by side.

Both fetch the same result pages and images from the loopback fake engine, which holds every
image response for --latency seconds (default 0.1 s, a far-away image host). icrawler runs with
its defaults (1 feeder, 1 parser, 1 downloader thread), its BingFeeder subclassed only to point at
the fake engine's host; datacurate runs as the real CLI in a subprocess, with --concurrency and
--per-host C and no per-host delay (one host serves everything here).

The latency-bound limit for concurrency C is C / latency images/s; the script prints the ratio of
the two rates and the fraction of that limit, both for the whole command (start-up included) and
for its download phase (first image request to last answer, as the command reports it). A bare
urllib3 client with as many threads and no checks at all runs last, as the machine's ceiling.

    /work/venv/bin/python benchmarks/bench_scrape.py [--classes 4] [--per-class 100] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from icrawler.builtin import BingImageCrawler  # noqa: E402
from icrawler.builtin.bing import BingFeeder  # noqa: E402

from datacurate.demo.engine import FakeEngine, make_image  # noqa: E402


def host_feeder(base: str) -> type:
    """icrawler's BingFeeder with only its host changed (same paths, same steps, same filters)."""

    class HostFeeder(BingFeeder):
        def feed(self, keyword, offset, max_num, filters=None):
            self.filter = self.get_filter()
            filter_str = self.filter.apply(filters)
            filter_str = "&qft=" + filter_str if filter_str else ""
            for i in range(offset, offset + max_num, 20):
                self.out_queue.put(f"{base}/images/async?q={keyword}&first={i}" + filter_str)

    return HostFeeder


def run_icrawler(fe: FakeEngine, classes: list[str], per_class: int, out: Path) -> tuple[int, float]:
    started = time.monotonic()
    for name in classes:
        crawler = BingImageCrawler(feeder_cls=host_feeder(fe.base_url), storage={"root_dir": str(out / name)},
                                   log_level=logging.CRITICAL)
        crawler.crawl(keyword=name, max_num=per_class)
    seconds = time.monotonic() - started
    return sum(len(list((out / n).glob("*"))) for n in classes if (out / n).is_dir()), seconds


def run_datacurate(fe: FakeEngine, classes: list[str], per_class: int, concurrency: int, ws: Path) -> tuple[int, float, float]:
    for name in classes:
        (ws / "data" / "original" / name).mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "datacurate", "-C", str(ws), "-q", "scrape", "--base-url", f"bing={fe.base_url}",
           "--allow-private", "-n", str(per_class), "--concurrency", str(concurrency), "--per-host", str(concurrency),
           "--delay", "0"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"datacurate scrape failed:\n{proc.stdout}\n{proc.stderr}")
    rate = re.search(r"([\d.]+) images/s while downloading", proc.stdout)
    saved = sum(len(list((ws / "data" / "scraped" / n).glob("*"))) for n in classes)
    return saved, seconds, float(rate.group(1)) if rate else 0.0


def run_bare(fe: FakeEngine, classes: list[str], per_class: int, concurrency: int) -> tuple[int, float]:
    """A bare urllib3 client, `concurrency` threads, no checks at all: what this machine allows now."""
    import urllib3
    from concurrent.futures import ThreadPoolExecutor

    urls = [fe.image_url(name, r) for name in classes for r in range(per_class)]
    pool = urllib3.PoolManager(maxsize=concurrency)

    def get(url: str) -> int:
        resp = pool.request("GET", url, retries=False)
        return len(resp.data)

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as ex:
        n = sum(1 for size in ex.map(get, urls) if size)
    return n, time.monotonic() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.1)
    args = ap.parse_args()
    classes = [f"class{i}" for i in range(args.classes)]
    images = {name: [make_image(1000 * i + r) for r in range(args.per_class + 10)] for i, name in enumerate(classes)}
    limit = args.concurrency / args.latency
    with FakeEngine(images, latency=args.latency) as fe, tempfile.TemporaryDirectory() as tmp:
        n_ic, s_ic = run_icrawler(fe, classes, args.per_class, Path(tmp) / "icrawler")
        n_dc, s_dc, phase_rate = run_datacurate(fe, classes, args.per_class, args.concurrency, Path(tmp) / "ws")
        n_bare, s_bare = run_bare(fe, classes, args.per_class, args.concurrency)
    r_ic, r_dc = n_ic / s_ic, n_dc / s_dc
    print(f"fake engine: {args.classes} classes x {args.per_class} images, {args.latency * 1000:.0f} ms per image")
    print(f"icrawler BingImageCrawler (defaults): {n_ic} images in {s_ic:.1f} s = {r_ic:.1f} images/s")
    print(f"datacurate scrape -j {args.concurrency} --per-host {args.concurrency} --delay 0: "
          f"{n_dc} images in {s_dc:.1f} s = {r_dc:.1f} images/s (download phase {phase_rate:.1f} images/s)")
    print(f"bare urllib3 client, {args.concurrency} threads, no checks (this machine's ceiling now): "
          f"{n_bare / s_bare:.1f} images/s = {100 * n_bare / s_bare / limit:.0f}% of the limit")
    print(f"ratio datacurate / icrawler: {r_dc / r_ic:.1f}x whole command, {phase_rate / r_ic:.1f}x download phase "
          f"(goal >= 5x)")
    print(f"latency-bound limit for concurrency {args.concurrency}: {limit:.0f} images/s; reached "
          f"{100 * r_dc / limit:.0f}% for the whole command, {100 * phase_rate / limit:.0f}% in the download phase "
          f"(goal >= 80%)")


if __name__ == "__main__":
    main()
