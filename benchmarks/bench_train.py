"""Benchmark the training side of datacurate; prints figures measured side by side in one run.

  (a) loader: datacurate's training loader (draft-decoded JPEG, uint8 tensors, normalise after
      batching) against torchvision's stock ImageFolder + Resize/CenterCrop/ColorJitter/ToTensor/
      Normalize on the same large JPEGs, same workers and batch size.
  (b) step time: resnext101_32x8d frozen until layer3.18 (the seed's stage 2) against a full
      fine-tune (CPU at a small input; with --gpu at 224 under AMP).
  (c) --gpu: resnext101_32x8d training images/s with the seed's freezing, AMP (bf16) and
      channels_last, on synthetic batches and on real JPEGs (generated on local disk at startup)
      through datacurate's own loader and loop; then (d) a 2-epoch `train()` run on those images,
      end to end on CUDA. Prints one JSON line; --out FILE writes it too.
  (e) the input pipeline's cost per augmentation policy (decode + augmentation + tensor, one process):
      the garbage, fine-grained and strong presets (TrivialAugmentWide, RandAugment, AutoAugment, random
      erasing) against the default characters policy (brightness 0.05), same images, same run.

    python benchmarks/bench_train.py                      # (e), (a) and (b) on the CPU
    python benchmarks/bench_train.py --policies-only      # (e) alone
    python benchmarks/bench_train.py --gpu --out FILE     # (b) and (c) on CUDA, plus (a)

Needs only the repository and its packages (torch, torchvision, pillow, numpy, pyyaml, click, tqdm).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402


# -- data -----------------------------------------------------------------------------------------
def _make_jpeg(args) -> None:
    path, w, h, seed = args
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    im = Image.fromarray(small).resize((w, h), Image.BICUBIC)
    noise = rng.integers(0, 24, (h, w, 3), dtype=np.uint8)  # texture, so the entropy-coded stream is realistic
    im = Image.fromarray(np.clip(np.asarray(im, np.int16) + noise - 12, 0, 255).astype(np.uint8))
    im.save(path, quality=90)


def make_folder(root: Path, n: int, size: tuple[int, int], classes: int = 10, procs: int | None = None) -> Path:
    """An ImageFolder tree of `n` JPEGs of `size` (w, h) under root; reused when already there."""
    jobs = []
    for i in range(n):
        d = root / f"class{i % classes:02d}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"{i:05d}.jpg"
        if not p.exists():
            jobs.append((str(p), size[0], size[1], i))
    if jobs:
        with ProcessPoolExecutor(procs or os.cpu_count()) as ex:
            list(ex.map(_make_jpeg, jobs, chunksize=8))
    return root


# -- (a) the loader -------------------------------------------------------------------------------
def bench_loader(folder: Path, workers: int, batch: int, passes: int = 1) -> dict:
    import torchvision
    from torchvision import transforms as T

    from datacurate.vision.augment import parse_policy
    from datacurate.vision.data import IMAGENET_MEAN, IMAGENET_STD, ImageSet, Preprocess, make_loader, scan_folder, set_epoch, to_input

    stock_tf = T.Compose([T.Resize(255), T.CenterCrop(224), T.ColorJitter(brightness=0.05), T.ToTensor(),
                          T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    stock = torch.utils.data.DataLoader(torchvision.datasets.ImageFolder(str(folder), stock_tf), batch_size=batch,
                                        shuffle=True, num_workers=workers)
    _, samples = scan_folder(folder)
    pre = Preprocess(255, 224)
    ours = make_loader(ImageSet(samples, pre, policy=parse_policy("characters")), batch, workers, shuffle=True)

    def run_stock() -> int:
        return sum(len(x) for x, _ in stock)

    def run_ours() -> int:
        n = 0
        for images, labels, _ in ours:
            n += len(to_input(images, torch.device("cpu"), pre, False))
        return n

    out = {}
    for name, fn in (("stock", run_stock), ("datacurate", run_ours)):
        t0, n = time.perf_counter(), 0
        for p in range(passes):
            set_epoch(ours, p)
            n += fn()
        out[name] = n / (time.perf_counter() - t0)
    out["ratio"] = out["datacurate"] / out["stock"]
    return out


# -- (e) the input pipeline under each augmentation policy ------------------------------------------
POLICIES = {"characters (default)": "characters", "none": "none", "garbage": "garbage", "fine-grained": "fine-grained",
            "strong (TrivialAugmentWide + erasing)": "strong",
            "strong with RandAugment": {"preset": "strong", "auto": "randaugment"},
            "strong with AutoAugment": {"preset": "strong", "auto": "autoaugment"}}


def bench_policies(folder: Path, passes: int = 5, size: int = 224) -> dict:
    """Images/s of one loader worker's work (decode + augmentation + tensor) per policy, against the default's."""
    from datacurate.vision.augment import parse_policy
    from datacurate.vision.data import ImageSet, Preprocess, scan_folder

    _, samples = scan_folder(folder)
    pre = Preprocess(round(size * 255 / 224), size)
    sets = {label: ImageSet(samples, pre, policy=parse_policy(raw), seed=0) for label, raw in POLICIES.items()}
    out = dict.fromkeys(sets, 0.0)
    for ds in sets.values():  # warm up: file cache, transforms built
        for i in range(min(len(ds), 20)):
            ds[(i, 99)]
    for p in range(passes):  # round robin, best pass per policy: load drifting on a shared machine hits all alike
        for label, ds in sets.items():
            t0 = time.perf_counter()
            for i in range(len(ds)):
                ds[(i, p)]
            out[label] = max(out[label], round(len(ds) / (time.perf_counter() - t0), 1))
    base = out["characters (default)"]
    return {k: {"img_s": v, "vs_default": round(v / base, 3)} for k, v in out.items()}


# -- (b) frozen vs full step time -----------------------------------------------------------------
def _setup(freeze_until: str, device, amp_dtype, channels_last: bool, arch: str = "resnext101_32x8d"):
    from datacurate.vision.freeze import apply_trainable, set_train_mode
    from datacurate.train.groups import build_optimizers
    from datacurate.vision.models import create_model
    from datacurate.train.options import DEFAULTS
    from datacurate.train.plan import build_plan

    torch.manual_seed(0)
    model = create_model(arch, 10, "none")
    opts = {**DEFAULTS}
    if freeze_until == "none":  # full fine-tune: one group for everything
        opts["groups"] = [{"name": "all", "modules": ["*"], "optimizer": "adam", "lr": 5e-5}]
    opts["freeze_until"] = freeze_until
    plan = build_plan(model, opts)
    model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    apply_trainable(model, plan.stages[-1].trainable)
    set_train_mode(model, bn_update=False)
    return model, plan, build_optimizers(model, plan.groups, plan.members)


def bench_steps(device: torch.device, size: int, batch: int, steps: int, amp_dtype=None, channels_last=False) -> dict:
    out = {}
    for label, until in (("frozen_layer3.18", "layer3.18"), ("full", "none")):
        model, _, opts = _setup(until, device, amp_dtype, channels_last)
        x = torch.randn(batch, 3, size, size, device=device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (batch,), device=device)
        times = []
        for i in range(steps + 2):
            _sync(device)
            t0 = time.perf_counter()
            with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else _null():
                loss = torch.nn.functional.cross_entropy(model(x).float(), y)
            for o in opts.values():
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in opts.values():
                o.step()
            _sync(device)
            if i >= 2:
                times.append(time.perf_counter() - t0)
        out[label] = float(np.median(times))
        del model, opts
    out["speedup"] = out["full"] / out["frozen_layer3.18"]
    return out


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


# -- (c) GPU throughput through datacurate's loop -------------------------------------------------
def bench_gpu(folder: Path, batch: int, workers: int, seconds: float, device: str = "cuda", size: int = 224,
              arch: str = "resnext101_32x8d", freeze_until: str = "layer3.18") -> dict:
    from datacurate.vision.augment import parse_policy
    from datacurate.vision.data import ImageSet, Preprocess, make_loader, scan_folder, set_epoch
    from datacurate.train.loop import Loop
    from datacurate.vision.device import pick_device

    dev = pick_device(device, True, True)
    cuda = dev.device.type == "cuda"
    model, plan, opts = _setup(freeze_until, dev.device, dev.amp_dtype, dev.channels_last, arch)
    pre = Preprocess(round(size * 255 / 224), size)
    _, samples = scan_folder(folder)
    loader = make_loader(ImageSet(samples, pre, policy=parse_policy("characters")), batch, workers, shuffle=True, pin=cuda, stream=True)
    loop = Loop(model=model, plan=plan, optimizers=opts, train_loader=loader, valid_loader=loader, pre=pre, dev=dev,
                run_dir=Path(tempfile.gettempdir()), meta={}, quiet=True)
    lrs = plan.stages[-1].lrs

    def step(_i):
        pass

    from datacurate.train.groups import set_lrs

    set_lrs(opts, lrs)
    g = torch.Generator().manual_seed(0)
    synth = [(torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=g),
              torch.randint(0, 10, (batch,), generator=g), {}) for _ in range(8)]
    if cuda:
        synth = [(x.pin_memory(), y, b) for x, y, b in synth]

    def timed(data, epochs_fn) -> float:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            n += epochs_fn(data)
        _sync(dev.device)
        return n / (time.perf_counter() - t0)

    def synth_pass(data) -> int:
        loop.pass_over(data, "synthetic", step=step)
        return sum(len(b[1]) for b in data)

    epoch = [0]

    def real_pass(data) -> int:
        set_epoch(data, epoch[0])
        epoch[0] += 1
        loop.pass_over(data, "real", step=step)
        return len(samples)

    synth_pass(synth[:2])  # warm up cuDNN autotuning
    real_pass(loader)  # warm up the workers
    _sync(dev.device)
    synthetic = timed(synth, synth_pass)
    real = timed(loader, real_pass)
    return {"synthetic_img_s": round(synthetic, 1), "real_img_s": round(real, 1), "real_vs_synthetic": round(real / synthetic, 3),
            "batch": batch, "workers": workers, "amp": str(dev.amp_dtype).replace("torch.", ""), "channels_last": True,
            "max_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None}


def bench_train_cli(folder: Path, batch: int, workers: int, device: str = "cuda", size: int = 224) -> dict:
    """The whole `datacurate train` path on CUDA (1 head epoch + 1 epoch from layer3.18, weights none)."""
    from datacurate.train.run import train
    from datacurate.core.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix="dc-bench-ws-"))
    for split in ("train", "valid"):
        (root / "data" / "split").mkdir(parents=True, exist_ok=True)
        (root / "data" / "split" / split).symlink_to(folder, target_is_directory=True)
    t0 = time.perf_counter()
    res = train(Workspace.open(root), {"weights": "none", "head_epochs": 1, "epochs": 1, "batch_size": batch,
                                        "workers": workers, "device": device, "img_size": size, "name": "bench"}, quiet=True)
    rows = res.run_dir / "history.csv"
    return {"seconds": round(time.perf_counter() - t0, 1), "epochs": res.epochs, "device": res.device,
            "history": rows.read_text(encoding="utf-8").splitlines()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true", help="run the CUDA parts (b at 224, c)")
    ap.add_argument("--out", help="also write the JSON figures to this file")
    ap.add_argument("--data", help="folder for the generated images (default: a temporary folder)")
    ap.add_argument("--large", type=int, default=None, help="(a) number of large JPEGs (default 24 per worker, at least 48)")
    ap.add_argument("--large-size", default="4000x3000", help="(a) their size (default 4000x3000, 12 MP)")
    ap.add_argument("--real", type=int, default=2000, help="(c) number of ~500x375 JPEGs (default 2000)")
    ap.add_argument("--workers", type=int, default=None, help="loader workers (default: CPU count - 1, at most 16)")
    ap.add_argument("--batch", type=int, default=256, help="(c) batch size (default 256)")
    ap.add_argument("--seconds", type=float, default=30, help="(c) seconds per throughput measurement (default 30)")
    ap.add_argument("--cpu-size", type=int, default=64, help="(b) input size on the CPU (default 64)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads on the CPU")
    ap.add_argument("--policies", type=int, default=200, help="(e) ~500x375 JPEGs timed per augmentation policy (0: skip)")
    ap.add_argument("--policies-only", action="store_true", help="run (e) alone")
    ap.add_argument("--selfcheck", action="store_true", help="run (c)'s code path on the CPU at toy sizes (no figures)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    workers = args.workers if args.workers is not None else max(1, min(16, (os.cpu_count() or 2) - 1))
    base = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="dc-bench-train-"))
    w, h = (int(v) for v in args.large_size.split("x"))
    n_large = args.large or max(48, 24 * workers)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
              "cpus": os.cpu_count(), "torch": torch.__version__, "workers": workers}

    if args.selfcheck:
        real = make_folder(base / "real-500x375", 24, (500, 375))
        print(json.dumps(bench_gpu(real, 4, 2, 1.0, device="cpu", size=32)))
        print(json.dumps(bench_train_cli(real, 8, 2, device="cpu", size=32)))
        return
    if args.policies:
        real = make_folder(base / "real-500x375", max(args.policies, 24), (500, 375))
        e = bench_policies(real)
        result["policies"] = e
        print(f"(e) input pipeline per augmentation policy, one process, {args.policies} JPEGs 500x375 -> 224 px:")
        for k, v in e.items():
            print(f"    {k:38s} {v['img_s']:7.1f} img/s  {v['vs_default']:.2f}x the default's rate")
        if args.policies_only:
            print(json.dumps(result))
            return
    t0 = time.perf_counter()
    large = make_folder(base / f"large-{w}x{h}-{n_large}", n_large, (w, h))
    print(f"(a) generated {n_large} JPEGs {w}x{h} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    a = bench_loader(large, workers, 16)
    result["loader"] = {k: round(v, 2) for k, v in a.items()}
    result["loader_images"] = n_large
    print(f"(a) loader on {n_large} JPEGs {w}x{h}, {workers} workers: stock ImageFolder {a['stock']:.1f} img/s, "
          f"datacurate {a['datacurate']:.1f} img/s, ratio {a['ratio']:.2f}x (goal >= 2x)")

    if args.gpu:
        if not torch.cuda.is_available():
            sys.exit("--gpu: CUDA is not available to this PyTorch")
        result["device"] = torch.cuda.get_device_name(0)
        dt = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        b = bench_steps(torch.device("cuda"), 224, 64, 10, amp_dtype=dt, channels_last=True)
        result["steps_224_b64"] = {k: round(v, 4) for k, v in b.items()}
        print(f"(b) step, 224 px, batch 64, AMP: frozen until layer3.18 {b['frozen_layer3.18'] * 1000:.1f} ms, "
              f"full fine-tune {b['full'] * 1000:.1f} ms, {b['speedup']:.2f}x")
        t0 = time.perf_counter()
        real = make_folder(base / "real-500x375", args.real, (500, 375))
        print(f"(c) generated {args.real} JPEGs 500x375 in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        c = bench_gpu(real, args.batch, workers, args.seconds)
        result["train_gpu"] = c
        print(f"(c) resnext101_32x8d, frozen until layer3.18, {c['amp']} + channels_last, batch {c['batch']}: "
              f"synthetic {c['synthetic_img_s']:.0f} img/s, real JPEGs {c['real_img_s']:.0f} img/s "
              f"({c['real_vs_synthetic'] * 100:.0f}% of synthetic; goals >= 1000 img/s and >= 90%)")
        try:
            e = bench_train_cli(real, args.batch, workers)
            result["train_cli"] = e
            print(f"(d) datacurate train on CUDA, 2 epochs (head, then from layer3.18) on {args.real} images: {e['seconds']} s "
                  f"including validation and checkpoints; history: {e['history']}")
        except Exception as exc:  # noqa: BLE001 - report it with the figures above rather than lose them
            result["train_cli"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"(d) datacurate train on CUDA failed: {type(exc).__name__}: {exc}")
    else:
        result["device"] = "cpu"
        b = bench_steps(torch.device("cpu"), args.cpu_size, 4, 3)
        result[f"steps_{args.cpu_size}_b4_cpu"] = {k: round(v, 4) for k, v in b.items()}
        print(f"(b) step on the CPU, {args.cpu_size} px, batch 4: frozen until layer3.18 {b['frozen_layer3.18']:.2f} s, "
              f"full fine-tune {b['full']:.2f} s, {b['speedup']:.2f}x")
    line = json.dumps(result)
    print(line)
    if args.out:
        Path(args.out).write_text(line + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
