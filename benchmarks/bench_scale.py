"""clean and vet on a Ray cluster against the local process pool, on the same files and the same cores,
and a projection of 10 million images on N nodes from the per-image costs measured here.

A real Ray cluster is started on this machine (a head and a second node, `--cpus-per-node` CPUs each,
tests/raycluster.py), so the ratio ray/local is Ray's overhead: task scheduling, argument and result
transfer, workers reading through the "shared" file system (here the same disk), the node check.

    python benchmarks/bench_scale.py [--count 200] [--embed 96] [--cores-per-node 16] [--gpu-rate IMG/S]

Needs `pip install "datacurate[ray]"`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_clean import make_small, photo_like  # noqa: E402
from raycluster import LocalCluster  # noqa: E402

from datacurate.clean.run import clean  # noqa: E402
from datacurate.core.index import decode_files, walk_files  # noqa: E402
from datacurate.executors.base import local_executor  # noqa: E402
from datacurate.executors.connect import connected  # noqa: E402
from datacurate.executors.options import RayOptions  # noqa: E402
from datacurate.executors.ray import RayExecutor  # noqa: E402
from datacurate.core.imageio import Limits  # noqa: E402
from datacurate.core.workspace import Workspace  # noqa: E402

TARGET = 10_000_000
SIZES_MP = (0.5, 1.0, 3.0)   # scraped pictures are mostly under a few megapixels


def make(root: Path, count: int) -> None:
    for i in range(count):
        path = root / "data" / "original" / f"class{i % 4}" / f"img{i:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        photo_like(SIZES_MP[i % len(SIZES_MP)], i).save(path, quality=90)
    (root / "datacurate.yaml").write_text("clean: {}\n")


def timed(func, *args, **kwargs):
    start = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - start


def best(repeats: int, *runs):
    """The shortest time of each run over `repeats` rounds, the runs alternating (a shared machine's load
    then falls on both alike)."""
    times = [[] for _ in runs]
    for _ in range(repeats):
        for i, run in enumerate(runs):
            times[i].append(timed(run)[1])
    return [min(t) for t in times]


def bench_clean(base: Path, address: str, cores: int, repeats: int) -> dict:
    """The decode phase alone (local pool vs Ray tasks, best of `repeats`), then one whole `clean --dry-run`
    each on fresh copies (connect and node check included)."""
    paths = [e.path for e in walk_files(base / "data" / "original")]
    with connected(RayOptions(address=address), [base]) as cluster:
        local, on_ray = local_executor(cores), RayExecutor(cluster)
        local_decode, ray_decode = best(repeats, lambda: decode_files(paths, Limits(), ("phash",), local),
                                        lambda: decode_files(paths, Limits(), ("phash",), on_ray))
    copies = {}
    for name in ("local", "ray"):
        copies[name] = base.with_name(f"{base.name}-{name}")
        shutil.copytree(base, copies[name])
    _, local_all = timed(clean, Workspace.open(copies["local"]), dry_run=True, workers=cores, ray=False)
    _, ray_all = timed(clean, Workspace.open(copies["ray"]), dry_run=True, ray=address)
    n = len(paths)
    return {"n": n, "cores": cores, "local_all": local_all, "ray_all": ray_all, "local_decode": local_decode,
            "ray_decode": ray_decode}


def driver_cost(root: Path, count: int, cores: int) -> float:
    """Seconds per file of clean's own part (walk, stat, catalog rows, duplicate search, plan) on the driver:
    a first clean of `count` tiny files less the decode inside that very run (timed around index.decode_files)."""
    from datacurate.core import index as scan

    make_small(root, count)
    spent = []
    original = scan.decode_files

    def timed_decode(*args, **kwargs):
        out, seconds = timed(original, *args, **kwargs)
        spent.append(seconds)
        return out

    scan.decode_files = timed_decode
    try:
        _, whole = timed(clean, Workspace.open(root), dry_run=True, workers=cores, ray=False)
    finally:
        scan.decode_files = original
    return max(0.0, whole - sum(spent)) / count


def bench_vet(base: Path, address: str, count: int, cores: int, repeats: int) -> dict:
    """vet's embedding (resnet18, 224 px, random weights: the cost, not the answer) of `count` images:
    the local loop against actors on the cluster, best of `repeats`; the actors' start measured apart."""
    from datacurate.vet.remote import embed_on_cluster
    from datacurate.vet.embed import embed_files, load_backbone
    from datacurate.vet.options import VetOptions

    ws = Workspace.open(base)
    opts = VetOptions(backbone="resnet18", weights="none", batch_size=16)
    backbone = load_backbone(ws, opts)
    paths = [e.path for e in walk_files(base / "data" / "original")][:count]
    embed_files(backbone, paths[:16], opts)  # warm up (first-call allocations)
    with connected(RayOptions(address=address), [base]) as cluster:
        on_ray = RayExecutor(cluster)
        local, first, ray = best(repeats, lambda: embed_files(backbone, paths, opts),
                                 lambda: embed_on_cluster(on_ray, backbone, paths[:16], opts),  # start + one batch
                                 lambda: embed_on_cluster(on_ray, backbone, paths, opts))
    n = len(paths)
    steady = (ray - first) / (n - 16)  # seconds per image once the actors run (their start is the same in both)
    return {"n": n, "cores": cores, "local": local, "ray": ray, "start": first - 16 * steady, "steady": steady,
            "eff": (local / n) / steady}


def projection(c: dict, v: dict, cores_per_node: int, gpu_rate: float | None) -> None:
    """Hours for TARGET images on N nodes: the per-image work at the cost per core measured on the Ray
    cluster here, divided over the nodes' cores; the driver's part not divided."""
    decode_core = c["ray_decode"] * c["cores"] / c["n"]
    embed_core = v["steady"] * v["cores"]
    print(f"\nprojection: {TARGET:,} images on N nodes of {cores_per_node} cores, from the costs measured on the "
          f"Ray cluster here, per image and core: clean decode/verify/hash {decode_core * 1000:.1f} ms, vet "
          f"embedding (resnet18, CPU) {embed_core * 1000:.0f} ms; clean's driver part {c['driver_s'] * 1000:.2f} ms "
          f"per file, not divided (walk, catalog, moves, on one machine)")
    print("the exact near-duplicate search also stays on the driver and grows with the square of the count: "
          "1M hashes took 205 s on 2 cores (RESULTS.md), 10M is ~100x that: ~5.7 h on 2 cores, ~45 min on 16")
    header = f"{'nodes':>5}  {'clean decode':>13}  {'clean driver':>12}  {'vet CPU embed':>13}"
    if gpu_rate:
        header += f"  {'vet GPU embed':>13}"
    print(header)
    for nodes in (1, 2, 4, 8, 16, 32, 64):
        cores = nodes * cores_per_node
        row = (f"{nodes:>5}  {_hours(TARGET * decode_core / cores):>13}  {_hours(TARGET * c['driver_s']):>12}  "
               f"{_hours(TARGET * embed_core / cores):>13}")
        if gpu_rate:
            row += f"  {_hours(TARGET / (nodes * gpu_rate)):>13}"
        print(row)
    if gpu_rate:
        print(f"(vet GPU: one GPU per node at {gpu_rate:g} images/s each, the rate given with --gpu-rate)")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=200, help="pictures for clean (0.5, 1 and 3 MP JPEGs)")
    ap.add_argument("--embed", type=int, default=96, help="pictures for vet's embedding (over 16)")
    ap.add_argument("--small", type=int, default=3000, help="tiny files for the driver's per-file cost")
    ap.add_argument("--repeats", type=int, default=3, help="rounds; each figure is the best of them")
    ap.add_argument("--cpus-per-node", type=int, default=1, help="CPUs of each of the 2 local Ray nodes")
    ap.add_argument("--cores-per-node", type=int, default=16, help="cores per node in the projection")
    ap.add_argument("--gpu-rate", type=float, default=None, help="measured vet images/s of one GPU, for the projection")
    args = ap.parse_args()
    cores = 2 * args.cpus_per_node
    print(f"machine: {os.cpu_count()} cores; local Ray cluster: 2 nodes x {args.cpus_per_node} CPU; "
          f"local pool: {cores} processes")
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        base = tmp / "ws"
        make(base, args.count)
        with LocalCluster(nodes=2, cpus=args.cpus_per_node) as cluster:
            c = bench_clean(base, cluster.address, cores, args.repeats)
            print(f"clean, {c['n']} JPEGs ({'/'.join(f'{m:g}' for m in SIZES_MP)} MP):")
            print(f"  decode phase (best of {args.repeats}): local pool {c['n'] / c['local_decode']:.1f} images/s, Ray "
                  f"{c['n'] / c['ray_decode']:.1f} images/s; ratio ray/local {c['local_decode'] / c['ray_decode']:.2f}")
            print(f"  whole clean --dry-run (connect and node check included): local {c['local_all']:.2f} s, "
                  f"Ray {c['ray_all']:.2f} s; ratio {c['local_all'] / c['ray_all']:.2f}")
            v = bench_vet(base, cluster.address, args.embed, cores, args.repeats)
            print(f"vet embedding, {v['n']} images, resnet18 at 224 px on CPU (best of {args.repeats}):")
            print(f"  local (DataLoader + {cores} threads) {v['n'] / v['local']:.1f} images/s, Ray ({cores} actors) "
                  f"{v['n'] / v['ray']:.1f} images/s with the actors' start ({v['start']:.1f} s), ratio ray/local "
                  f"{v['local'] / v['ray']:.2f}; after the start: ratio {v['eff']:.2f}")
        c["driver_s"] = driver_cost(tmp / "tiny", args.small, cores)
        print(f"clean's driver part: {c['driver_s'] * 1000:.3f} ms per file ({args.small} tiny files)")
        projection(c, v, args.cores_per_node, args.gpu_rate)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
