"""What vetting is worth downstream, on real photographs: clean, vet, split, train, evaluate, for real.

Per task (pets: cats vs dogs; breeds: five cat breeds with noisy shelter labels), per number of
originals per class and per seed, four workspaces are built from the same draw and run through the
real stages (the Python API, the CLI's code path):

    originals      data/original only                           clean, split, train, evaluate
    noisy          + every scraped photo (good, wrong, off)     clean, split, train, evaluate
    vetted         + every scraped photo                        clean, vet, split, train, evaluate
    good only      + only the good scraped photos               clean, split, train, evaluate

The scraped folder holds real photos of the class, real photos of another class filed under it,
and off-topic pictures (scikit-image / scikit-learn sample photographs, charts, banners, drawings,
and for breeds real dog photos). Held-out test photos of every class stay outside every workspace
and are what `evaluate` scores. Printed: vet's recall and precision per kind, the share of good
scraped photos it set aside, held-out accuracy of the four workspaces (mean ± spread over seeds),
and the recovery (vetted - noisy) / (good only - noisy).

    python benchmarks/bench_value.py --data ../shared/realdata \
        --weights ../shared/realdata/mnv2_imagenet_float.pth [--seeds 3] [--originals 10 40]
    python benchmarks/bench_value.py --smoke      # generated pictures, a tiny random model: the wiring only
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import realdata  # noqa: E402

VARIANTS = ("originals", "noisy", "vetted", "good only")


def recipes(weights: Path | None, smoke: bool) -> tuple[dict, dict]:
    """(vet options, train recipe): real ImageNet mobilenet_v2 features, or a tiny random model for --smoke."""
    if smoke:
        vet = {"backbone": "resnet18", "weights": "none", "img_size": 64, "workers": 0}
        train = {"arch": "resnet18", "weights": "none", "freeze_until": "fc", "img_size": 32, "head_epochs": 1,
                 "epochs": 0, "milestones": [], "gamma": [], "batch_size": 8, "workers": 0, "augment": "none"}
        return vet, train
    vet = {"backbone": "mobilenet_v2", "weights": str(weights), "img_size": 224, "workers": 0}
    train = {"arch": "mobilenet_v2", "weights": str(weights), "freeze_until": "classifier.1", "img_size": 96,
             "head_epochs": 5, "epochs": 0, "milestones": [], "gamma": [], "batch_size": 16, "workers": 0,
             "augment": "none"}
    return vet, train


def build(root: Path, d: realdata.Draw, variant: str) -> dict[str, str]:
    """Workspace `root` for one variant; returns {relative path of a scraped file: its truth}."""
    truth = {}
    for klass, files in d.originals.items():
        for f in files:
            _copy(f, root / "data" / "original" / klass / f.name)
    if variant == "originals":
        return truth
    for klass, items in d.scraped.items():
        for n, (f, kind) in enumerate(items):
            if variant == "good only" and kind != "good":
                continue
            rel = f"data/scraped/{klass}/web{n:03d}{f.suffix.lower()}"
            _copy(f, root / rel)
            truth[rel] = kind
    return truth


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def one_workspace(root: Path, d: realdata.Draw, variant: str, test_dir: Path, vet_opts: dict, recipe: dict,
                  seed: int) -> tuple[float, dict]:
    """Held-out accuracy of the variant, and (vetted) vet's flags {path: reason} with their truth."""
    import yaml

    from datacurate import api

    truth = build(root, d, variant)
    (root / "datacurate.yaml").write_text(yaml.safe_dump(
        {"vet": vet_opts, "train": {**recipe, "seed": seed, "name": "model"}, "split": {"valid": 0.2, "seed": seed}},
        allow_unicode=True), encoding="utf-8")
    api.clean(root, keep_flags=True)  # quality flags are not what is measured here
    flags = {}
    if variant == "vetted":
        result = api.vet(root)
        flags = {f.path: f.reason for f in result.raw.flags if f.move}
    api.split(root)
    api.train(root)
    accuracy = api.evaluate(root, "model", str(test_dir)).raw.accuracy
    return accuracy, {"flags": flags, "truth": truth}


def flag_figures(flags: dict[str, str], truth: dict[str, str]) -> dict[str, float]:
    """Recall per planted kind (set aside for any reason), precision per flag, share of good set aside."""
    out = {}
    for kind in ("off-topic", "wrong-class"):
        planted = {p for p, t in truth.items() if t == kind}
        flagged = {p for p, r in flags.items() if r == kind}
        out[f"{kind} recall"] = len(planted & set(flags)) / max(1, len(planted))
        out[f"{kind} precision"] = len(flagged & planted) / max(1, len(flagged))
    good = {p for p, t in truth.items() if t == "good"}
    out["good set aside"] = len(good & set(flags)) / max(1, len(good))
    return out


def run_task(task: realdata.Task, n_orig: int, seeds: int, work: Path, vet_opts: dict, recipe: dict, **draw_kw) -> dict:
    acc = {v: [] for v in VARIANTS}
    figs = []
    for seed in range(seeds):
        d = realdata.draw(task, n_orig, seed, **draw_kw)
        test_dir = work / f"{task.name}-{n_orig}-{seed}-test"
        shutil.rmtree(test_dir, ignore_errors=True)
        for klass, files in d.test.items():
            for f in files:
                _copy(f, test_dir / klass / f.name)
        for variant in VARIANTS:
            root = work / f"{task.name}-{n_orig}-{seed}-{variant.replace(' ', '-')}"
            shutil.rmtree(root, ignore_errors=True)
            a, seen = one_workspace(root, d, variant, test_dir, vet_opts, recipe, seed)
            acc[variant].append(a)
            if variant == "vetted":
                figs.append(flag_figures(seen["flags"], seen["truth"]))
            print(f"  {task.name} {n_orig}/class seed {seed} {variant:10s} accuracy {a:.3f}", flush=True)
    mean = {v: float(np.mean(a)) for v, a in acc.items()}
    gap = mean["good only"] - mean["noisy"]
    return {"task": task.name, "originals": n_orig, "seeds": seeds,
            "accuracy": {v: [float(np.mean(a)), float(np.std(a))] for v, a in acc.items()},
            "recovery": (mean["vetted"] - mean["noisy"]) / gap if abs(gap) > 1e-9 else None,
            "flags": {k: [float(np.mean([f[k] for f in figs])), float(np.std([f[k] for f in figs]))] for k in figs[0]}}


def table(rows: list[dict]) -> str:
    out = ["| task | originals/class | off-topic recall | wrong-class recall | good set aside | originals only | "
           "+ noisy scraped | + vetted | + good scraped only | recovery |", "|" + "---|" * 10]
    for r in rows:
        f, a = r["flags"], r["accuracy"]
        rec = "n/a" if r["recovery"] is None else f"{100 * r['recovery']:.0f}%"
        out.append(f"| {r['task']} | {r['originals']} | " + " | ".join(
            f"{f[k][0]:.2f} ± {f[k][1]:.2f}" for k in ("off-topic recall", "wrong-class recall", "good set aside"))
            + " | " + " | ".join(f"{a[v][0]:.3f} ± {a[v][1]:.3f}" for v in VARIANTS) + f" | {rec} |")
    return "\n".join(out)


def smoke_task(folder: Path) -> realdata.Task:
    """Two classes of generated colour pictures and generated off-topic pictures (no real photo needed)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    classes = {}
    for name, colour in (("red", (200, 40, 40)), ("blue", (40, 60, 200))):
        files = []
        for n in range(40):
            arr = np.clip(np.array(colour) + rng.normal(0, 30, (48, 64, 3)), 0, 255).astype(np.uint8)
            path = folder / name / f"{n:03d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(path, quality=90)
            files.append(path)
        classes[name] = files
    off = [p for p in realdata.offtopic_pool(folder / "off", photos=False)]
    return realdata.Task("smoke", classes, off)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="a folder laid out like ../shared/realdata")
    ap.add_argument("--weights", type=Path, help="mobilenet_v2 ImageNet state dict")
    ap.add_argument("--work", type=Path, default=Path("/tmp/datacurate-bench-value"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--originals", type=int, nargs="+", default=[10, 40])
    ap.add_argument("--tasks", nargs="+", default=["pets", "breeds"])
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--smoke", action="store_true", help="generated pictures and a tiny random model: the wiring only")
    args = ap.parse_args(argv)
    if not args.smoke and (args.data is None or args.weights is None):
        ap.error("--data and --weights are needed (or --smoke)")
    args.work.mkdir(parents=True, exist_ok=True)
    vet_opts, recipe = recipes(args.weights, args.smoke)
    if args.smoke:
        tasks, originals, seeds = [smoke_task(args.work / "smoke-data")], [6], 1
        draw_kw = {"n_test": 6, "n_good": 10, "n_wrong": 2, "n_off": 2}
    else:
        tasks = [t for t in realdata.tasks(args.data, args.work / "offtopic") if t.name in args.tasks]
        originals, seeds, draw_kw = args.originals, args.seeds, {}
    start = time.perf_counter()
    rows = []
    for n in originals:
        for t in tasks:
            rows.append(run_task(t, n, seeds, args.work, vet_opts, recipe, **draw_kw))
            print(table(rows[-1:]), flush=True)
    print(table(rows))
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
