"""The GPU checks in one command, for a machine with a GPU lent for a few minutes (no internet needed).

    python benchmarks/gpu_checks.py [--out FILE]     # about 3 minutes on one H100
    python benchmarks/gpu_checks.py --cpu-smoke      # the same code paths at toy sizes on the CPU (the tests run it)

It prints a section for benchmarks/RESULTS.md (date, device, command, one table) and one JSON line:

  (b) train step, resnext101_32x8d at 224 px, batch 64, AMP + channels_last: frozen until layer3.18 vs a full fine-tune
      (benchmarks/bench_train.py's bench_steps);
  (c) train images/s, resnext101_32x8d frozen until layer3.18, AMP + channels_last: synthetic uint8 batches and real
      JPEGs through datacurate's loader and loop (bench_train.py's bench_gpu, what `bench_train.py --gpu` measures);
  (v) vet embedding images/s, resnet50 at 224 px: vet's embedder against a plain torchvision ImageFolder + DataLoader
      + model loop on the same JPEGs and model (bench_vet.py's embed_speed);
  (ddp) `datacurate train --gpus N` end to end (N = 2 when the machine has 2 GPUs, else 1; --sync-bn with 2), and with
      2 GPUs the same run on 1 GPU for the scaling figure.

Weights are random (`--weights none`), the images generated on local disk at start: nothing is downloaded.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

import bench_train  # noqa: E402
import bench_vet  # noqa: E402


def sizes(smoke: bool) -> dict:
    """Work per part: the real one on a GPU, toy sizes on the CPU."""
    if smoke:
        return {"device": "cpu", "arch": "resnet18", "freeze": "layer4", "size": 32, "images": 30, "batch": 4, "seconds": 0.2,
                "embed_arch": "resnet18", "embed_images": 4, "embed_batch": 4, "ddp_images": 9, "ddp_batch": 4, "workers": 0,
                "epochs": 1, "rounds": 1}
    cpus = os.cpu_count() or 2
    return {"device": "cuda", "arch": "resnext101_32x8d", "freeze": "layer3.18", "size": 224, "images": 1000, "batch": 256,
            "seconds": 10.0, "embed_arch": "resnet50", "embed_images": 512, "embed_batch": 64, "ddp_images": 640,
            "ddp_batch": 64, "workers": max(1, min(16, cpus - 1)), "epochs": 2, "rounds": 2}


def part_train(folder: Path, s: dict) -> dict:
    """(b) and (c): bench_train.py's GPU measurements, in this process."""
    out = {}
    if s["device"] == "cuda":
        dt = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        out["steps_224_b64"] = {k: round(v, 4) for k, v in bench_train.bench_steps(torch.device("cuda"), 224, 64, 10, amp_dtype=dt,
                                                                                   channels_last=True).items()}
    out["train"] = bench_train.bench_gpu(folder, s["batch"], s["workers"], s["seconds"], device=s["device"], size=s["size"],
                                         arch=s["arch"], freeze_until=s["freeze"])
    return out


def part_vet(folder: Path, s: dict) -> dict:
    """(v): vet's embedder against a plain torchvision loop (bench_vet.py's embed_speed)."""
    paths = sorted(folder.rglob("*.jpg"))[:s["embed_images"]]
    sub = folder.parent / f"embed-{len(paths)}"
    if not sub.is_dir():  # embed_speed reads the ImageFolder above its paths: give it exactly these files
        for p in paths:
            (sub / p.parent.name).mkdir(parents=True, exist_ok=True)
            os.link(p, sub / p.parent.name / p.name)
    speed = bench_vet.embed_speed(sorted(sub.rglob("*.jpg")), s["embed_arch"], s["embed_batch"], s["workers"], rounds=s["rounds"])
    speed.pop("rounds", None)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in speed.items()}


def ddp_workspace(root: Path, folder: Path, n: int, classes: int) -> Path:
    """A workspace whose split holds `n` generated images of the first `classes` classes (1 in 5 of each class valid)."""
    for c in sorted(folder.iterdir())[:classes]:
        for i, p in enumerate(sorted(c.glob("*.jpg"))[:n // classes]):
            d = root / "data" / "split" / ("valid" if i % 5 == 0 else "train") / c.name
            d.mkdir(parents=True, exist_ok=True)
            os.link(p, d / p.name)
    return root


def part_ddp(folder: Path, s: dict, smoke: bool) -> dict:
    """(ddp): `datacurate train --gpus N` (with --cpu-smoke: --processes 1 --device cpu), and 1 GPU beside 2."""
    gpus = torch.cuda.device_count() if s["device"] == "cuda" else 0
    counts = [2, 1] if gpus >= 2 else [1]
    ws = ddp_workspace(Path(tempfile.mkdtemp(prefix="dc-gpu-ddp-")), folder, s["ddp_images"], 3 if smoke else 10)
    out = {}
    for n in counts:
        launch = ["--processes", "1", "--device", "cpu"] if smoke else ["--gpus", str(n)] + (["--sync-bn"] if n > 1 else [])
        arch = "resnet18" if smoke else "resnet50"
        cmd = [sys.executable, "-m", "datacurate", "-q", "-C", str(ws), "train", "--arch", arch, "--weights", "none",
               "--img-size", str(s["size"]), "--batch-size", str(s["ddp_batch"]), "--workers", str(s["workers"] // n if smoke else max(1, s["workers"] // n)),
               "--freeze-until", "layer4" if smoke else "layer3", "--head-epochs", "1", "--epochs", str(s["epochs"]), "--name", f"ddp{n}", *launch]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(HERE.parent)))
        wall = time.perf_counter() - t0
        if proc.returncode:
            out[f"gpus_{n}"] = {"error": f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-600:]}"}
            continue
        run = ws / "runs" / f"ddp{n}"
        metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
        rows = (run / "history.csv").read_text(encoding="utf-8").splitlines()
        head = rows[0].split(",")
        last = dict(zip(head, rows[-1].split(",")))
        n_train = sum(1 for _ in (ws / "data" / "split" / "train").rglob("*.jpg"))
        out[f"gpus_{n}"] = {"processes": metrics["processes"], "global_batch": metrics["global_batch"], "wall_s": round(wall, 1),
                            "last_epoch_s": float(last["seconds"]), "train_img_s_incl_valid": round(n_train / float(last["seconds"]), 1),
                            "valid_acc": float(last["valid_acc"]), "command": " ".join(["datacurate", "train", *cmd[cmd.index("train") + 1:]])}
    if "gpus_2" in out and "gpus_1" in out and "error" not in out["gpus_2"] and "error" not in out["gpus_1"]:
        out["scaling_2_vs_1"] = round(out["gpus_1"]["last_epoch_s"] / out["gpus_2"]["last_epoch_s"], 2)
    return out


def report(result: dict, smoke: bool) -> str:
    """The section for benchmarks/RESULTS.md."""
    dev = result["device"]
    lines = [f"### {'CPU smoke (toy sizes, not figures)' if smoke else 'GPU'}, {result['date'][:10]}, {dev}, torch {result['torch']}"
             f"{', CUDA ' + str(result['cuda']) if result.get('cuda') else ''}", "",
             f"    python benchmarks/gpu_checks.py{' --cpu-smoke' if smoke else ''}", "", "| part | figure |", "| --- | --- |"]
    b = result.get("steps_224_b64")
    if b:
        lines.append(f"| (b) train step, resnext101_32x8d 224 px, batch 64, AMP | frozen until layer3.18 {b['frozen_layer3.18'] * 1000:.1f} ms, "
                     f"full fine-tune {b['full'] * 1000:.1f} ms: **{b['speedup']:.2f}x** |")
    c = result["train"]
    lines.append(f"| (c) train images/s, {result['sizes']['arch']} frozen until {result['sizes']['freeze']}, {c['amp']} + channels_last, "
                 f"batch {c['batch']}, {c['workers']} workers | synthetic **{c['synthetic_img_s']:.0f}**, real JPEGs "
                 f"**{c['real_img_s']:.0f}** ({c['real_vs_synthetic'] * 100:.0f}% of synthetic; goals >= 1000 and >= 90%) |")
    v = result["vet"]
    lines.append(f"| (v) vet embedding images/s, {result['sizes']['embed_arch']} 224 px, batch {result['sizes']['embed_batch']}, "
                 f"{v['images']} JPEGs | vet **{v['ours_images_s']:.0f}**, plain torchvision loop {v['plain_images_s']:.0f}: "
                 f"**{v['speedup']:.2f}x** (loading alone {v['decode_speedup']:.2f}x; mean cosine {v['mean_cosine_ours_vs_plain']:.4f}) |")
    for key, d in sorted(result["ddp"].items()):
        if not key.startswith("gpus_"):
            continue
        if "error" in d:
            lines.append(f"| (ddp) {key.replace('_', ' ')} | FAILED: {d['error'].splitlines()[-1]} |")
            continue
        lines.append(f"| (ddp) `{d['command']}` | {d['processes']} process(es), global batch {d['global_batch']}: last epoch "
                     f"{d['last_epoch_s']:.1f} s ({d['train_img_s_incl_valid']:.0f} train img/s incl. validation), run {d['wall_s']:.0f} s "
                     f"with start-up |")
    if "scaling_2_vs_1" in result["ddp"]:
        lines.append(f"| (ddp) 2 GPUs vs 1, same per-GPU batch | epoch time ratio **{result['ddp']['scaling_2_vs_1']:.2f}x** (ideal 2x) |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-smoke", action="store_true", help="every part at toy sizes on the CPU (no figures; checks the code paths)")
    ap.add_argument("--out", help="also write the JSON figures to this file")
    ap.add_argument("--data", help="folder for the generated images (default: a temporary folder)")
    args = ap.parse_args()
    smoke = args.cpu_smoke
    if not smoke and not torch.cuda.is_available():
        print("gpu_checks: CUDA is not available to this PyTorch; run with --cpu-smoke to check the code paths on the CPU",
              file=sys.stderr)
        return 2
    if smoke:
        torch.set_num_threads(1)
    s = sizes(smoke)
    t_all = time.perf_counter()
    base = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="dc-gpu-checks-"))
    folder = bench_train.make_folder(base / f"jpegs-500x375-{s['images']}", s["images"], (500, 375), procs=s["workers"] or 1)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
              "device": torch.cuda.get_device_name(0) + f" x {torch.cuda.device_count()}" if not smoke else "cpu",
              "torch": torch.__version__, "cuda": torch.version.cuda if not smoke else None, "cpus": os.cpu_count(), "sizes": s}
    timings = {}
    for name, fn in (("train", lambda: part_train(folder, s)), ("vet", lambda: {"vet": part_vet(folder, s)}),
                     ("ddp", lambda: {"ddp": part_ddp(folder, s, smoke)})):
        t0 = time.perf_counter()
        result.update(fn())
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"gpu_checks: {name} done in {timings[name]} s", file=sys.stderr)
    result["seconds"] = {**timings, "all": round(time.perf_counter() - t_all, 1)}
    print(report(result, smoke))
    line = json.dumps(result, default=str)
    print(line)
    if args.out:
        Path(args.out).write_text(line + "\n", encoding="utf-8")
    failed = [k for k, v in result["ddp"].items() if isinstance(v, dict) and "error" in v]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
