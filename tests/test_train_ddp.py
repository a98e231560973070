"""Training on several processes on the CPU (gloo): torchrun and `train --processes N` against one process,
a kill -9 of the whole launch resumed, only rank 0 writing, the sharded sampler, and bad launches (issue 14)."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from datacurate.vision import checkpoint
from datacurate.vision.augment import parse_policy
from datacurate.vision.data import EpochBatches, ImageSet, Preprocess, scan_folder
from datacurate.vision.models import create_model
from datacurate.train.run import train
from datacurate.core.workspace import Workspace
from test_train_run import ROOT, _threads, cli, make_split  # noqa: F401 (_threads: autouse)

# GroupNorm: no statistic depends on how the batch is cut, so 2 x 4 images must train like 1 x 8 (BatchNorm
# would normalise each process's 4 images on their own; --sync-bn fixes that, but PyTorch runs it on CUDA only).
# 9 train images, global batch 8: steps of 8 (4 + 4) and 1 (rank 0 gets none and steps with a zero-weight stand-in).
FLAGS = {"arch": "resnet18", "weights": "none", "img_size": 32, "workers": 0, "device": "cpu", "freeze_until": "layer4.1",
         "head_epochs": 1, "epochs": 2, "norm": "group", "augment": "garbage", "seed": 3, "ema": 0.5}
RUN_FILES = {"best.pt", "last.pt", "history.csv", "history.png", "metrics.json", "config.yaml", "plan.txt", "report.html", "history.svg"}


def env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8", OMP_NUM_THREADS="1")


def run_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "datacurate", *args], capture_output=True, text=True, env=env, timeout=300)


def argv(flags: dict) -> list[str]:
    out = []
    for k, v in flags.items():
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]


def history(run: Path) -> list[dict]:
    with open(run / "history.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def close(a: str, b: str, tol: float = 1e-5) -> bool:
    return abs(float(a) - float(b)) <= tol * max(1.0, abs(float(a)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process with batch 8 (in-process) and torchrun with 2 processes of batch 4, same workspace."""
    root = make_split(tmp_path_factory.mktemp("ddp"), n_train=3, n_valid=2)
    train(Workspace.open(root), {**FLAGS, "batch_size": 8, "name": "one"}, quiet=True)
    proc = subprocess.run(torchrun("-m", "datacurate", "-C", str(root), "train", *argv({**FLAGS, "batch_size": 4, "name": "two"})),
                          capture_output=True, text=True, env=env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return root, proc


def test_two_processes_train_like_one_with_the_same_global_batch(runs):
    root, proc = runs
    one, two = root / "runs" / "one", root / "runs" / "two"
    h1, h2 = history(one), history(two)
    assert len(h1) == len(h2) == 3 and [r["stage"] for r in h2] == ["head", "finetune", "finetune"]
    for a, b in zip(h1, h2):  # each epoch's mean train loss, accuracy and the validation metrics, reduced over ranks
        for key in ("train_loss", "train_acc", "valid_loss", "valid_acc", "valid_loss_ema", "lr_body", "lr_head"):
            assert close(a[key], b[key]), (key, a, b)
    c1, c2 = checkpoint.load(one / "last.pt"), checkpoint.load(two / "last.pt")
    w1, w2 = c1["model"], c2["model"]
    assert w1.keys() == w2.keys()  # no "module." prefix from DDP
    diff = max((w1[k].double() - w2[k].double()).abs().max().item() for k in w1)
    assert diff < 1e-5, diff
    e1, e2 = c1["ema"], c2["ema"]  # the weight EMA too
    assert max((e1[k].double() - e2[k].double()).abs().max().item() for k in e1 if e1[k].is_floating_point()) < 1e-5
    # the stage change unfroze layer4.1 under DDP (re-wrapped): it moved; layer4.0, frozen throughout, did not
    torch.manual_seed(FLAGS["seed"])
    init = create_model("resnet18", 3, "none", options={"norm": "group"}).state_dict()
    assert not torch.equal(w2["layer4.1.conv2.weight"], init["layer4.1.conv2.weight"])
    assert torch.equal(w2["layer4.0.conv2.weight"], init["layer4.0.conv2.weight"])
    metrics = json.loads((two / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["processes"] == 2 and metrics["global_batch"] == 8
    assert "run two: 9 train / 6 valid images, 3 classes, 3 epochs, 6 optimizer steps on cpu x 2 processes (gloo), global batch 8" in proc.stderr
    assert "batch: 4 per process x 2 processes = global batch 8" in (two / "plan.txt").read_text(encoding="utf-8")


def test_only_rank0_writes_and_prints(runs):
    root, proc = runs
    assert {p.name for p in (root / "runs" / "two").iterdir()} == RUN_FILES
    assert {p.name for p in (root / "runs").iterdir()} <= {"one", "two", "killed"}  # no second run folder from rank 1
    assert not list((root / ".datacurate").glob("dist-check-*"))  # the shared-workspace token is gone
    for line in ("run two: 9 train", "epoch 1 head 1:", "epoch 3 finetune 2:", "wrote runs/two/"):
        assert (proc.stdout + proc.stderr).count(line) == 1, line
    assert len(history(root / "runs" / "two")) == 3  # one row per epoch: no rank appended its own


KILL = """
import json, os, signal, sys, time
from pathlib import Path
from datacurate.train.run import train
from datacurate.core.workspace import Workspace
def kill(step):  # rank 0, mid-epoch: kill -9 of the launcher's process group (torchrun keeps its workers in their own)
    if step == int(sys.argv[3]) and os.environ["RANK"] == "0":
        os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)
        time.sleep(60)  # the death signal ends this worker here
Path(sys.argv[4], os.environ["RANK"]).write_text(str(os.getpid()))
train(Workspace.open(sys.argv[1]), json.loads(sys.argv[2]), quiet=True, on_step=kill)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").is_file() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_killed_distributed_run_resumes_with_the_launcher(runs, tmp_path):
    root, _ = runs
    script = tmp_path / "killed.py"
    script.write_text(KILL, encoding="utf-8")
    flags = {**FLAGS, "batch_size": 4, "name": "killed"}
    pids = tmp_path / "pids"
    pids.mkdir()
    proc = subprocess.Popen(torchrun(str(script), str(root), json.dumps(flags), "3", str(pids)), env=env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    workers = [int(p.read_text()) for p in pids.iterdir()]
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(workers) == 2 and not any(_alive(p) for p in workers)  # the workers died with the launcher
    killed = root / "runs" / "killed"
    assert checkpoint.load(killed / "last.pt")["state"]["epoch"] == 1  # step 3 is the first of epoch 2 (2 steps per epoch)
    res = run_cli("-C", str(root), "train", "--resume", "--name", "killed", "--processes", "2", "--device", "cpu", env=env())
    assert res.returncode == 0, res.stderr
    assert "resuming killed at epoch 2 (stage finetune)" in res.stderr and res.stderr.count("resuming killed") == 1
    assert "run killed: 3 epochs on cpu; best epoch" in res.stdout
    h, ref = history(killed), history(root / "runs" / "two")
    assert [r["epoch"] for r in h] == ["1", "2", "3"]
    for a, b in zip(h, ref):
        for key in ("train_loss", "train_acc", "valid_loss", "valid_acc"):
            assert close(a[key], b[key], 1e-6), (key, a, b)
    wa, wb = checkpoint.load(killed / "last.pt")["model"], checkpoint.load(root / "runs" / "two" / "last.pt")["model"]
    assert max((wa[k].double() - wb[k].double()).abs().max().item() for k in wa) < 1e-6
    assert {p.name for p in killed.iterdir()} == RUN_FILES


def test_sampler_shares_each_global_batch_and_keeps_the_augmentation(tmp_path):
    for n, bs, world in ((9, 4, 2), (16, 4, 2), (3, 4, 2), (1, 2, 2), (23, 3, 3)):
        one = EpochBatches(n, bs * world, seed=5, shuffle=True, endless=False)
        ranks = [EpochBatches(n, bs, seed=5, shuffle=True, endless=False, rank=r, world=world) for r in range(world)]
        assert all(len(r) == len(one) for r in ranks)
        for epoch in (0, 1, 7):
            single = one.epoch_batches(epoch)
            shares = [r.epoch_batches(epoch) for r in ranks]
            for k, batch in enumerate(single):  # step k: the ranks' shares, in rank order, are the one-process batch
                assert [key for s in shares for key in s[k]] == batch
                assert max(len(s[k]) for s in shares) - min(len(s[k]) for s in shares) <= 1
                assert all(len(s[k]) <= bs for s in shares)
            seen = [i for s in shares for b in s for i, _ in b]
            assert sorted(seen) == list(range(n))  # each image exactly once per epoch across ranks
    # the same image gets the same augmentation whichever rank (process, dataset copy) loads it
    make_split(tmp_path, n_train=2, n_valid=1)
    _, samples = scan_folder(tmp_path / "data" / "split" / "train")
    pre = Preprocess(40, 32)
    a, b = (ImageSet(samples, pre, policy=parse_policy("strong"), seed=5) for _ in range(2))
    for i in range(len(samples)):
        for epoch in (0, 3):
            assert torch.equal(a[(i, epoch)][0], b[(i, epoch)][0])
        assert not torch.equal(a[(i, 0)][0], a[(i, 3)][0])  # and it changes with the epoch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_line(res: subprocess.CompletedProcess) -> str:
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("datacurate: error: "), res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


def test_bad_launches_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    make_split(tmp_path, n_train=1, n_valid=1)
    base = ["-C", str(tmp_path), "train", *argv({k: v for k, v in FLAGS.items() if k != "device"})]
    gpus = torch.cuda.device_count() + 2
    line = _one_line(run_cli(*base, "--gpus", str(gpus), env=env()))
    assert f"--gpus {gpus}: PyTorch sees" in line
    # RANK/WORLD_SIZE without a rendezvous address, then an address nobody answers at: no hang
    no_master = {k: v for k, v in env().items() if k not in ("MASTER_ADDR", "MASTER_PORT")}
    line = _one_line(run_cli(*base, env={**no_master, "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}))
    assert "MASTER_ADDR and MASTER_PORT are not" in line and "torchrun" in line
    t0 = time.monotonic()
    line = _one_line(run_cli(*base, "--dist-timeout", "1", env={**no_master, "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1",
                                                                "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}))
    assert "rank 1 of 2 found no rendezvous answering at 127.0.0.1:" in line and time.monotonic() - t0 < 60
    assert not (tmp_path / "runs").exists()
    for extra, words in ((["--gpus", "1", "--processes", "1"], "pick one"), (["--processes", "0"], "at least 1"),
                         (["--gpus", "1", "--device", "cpu"], "--processes N --device cpu"),
                         (["--dist-timeout", "0"], "dist_timeout")):
        code, _, err = cli([*base, *extra], capsys, monkeypatch)
        assert code == 2 and words in err, (extra, err)
    from datacurate.core.errors import UserError
    from datacurate.train.distributed import Dist, sync_batchnorm
    from datacurate.vision.models import create_model

    with pytest.raises(UserError, match="--sync-bn needs CUDA"):
        sync_batchnorm(create_model("resnet18", 3), Dist(0, 2, 0, "gloo"), "cpu")
    code, out, err = cli([*base, "--plan", "--processes", "2", "--batch-size", "16", "--device", "cpu"], capsys, monkeypatch)
    assert code == 0 and "batch: 16 per process x 2 processes = global batch 32" in out


@pytest.mark.slow
def test_gpu_checks_script_runs_its_code_paths_on_the_cpu(tmp_path):
    script = [sys.executable, str(ROOT / "benchmarks" / "gpu_checks.py")]
    if not torch.cuda.is_available():
        res = subprocess.run(script, capture_output=True, text=True, env=env(), timeout=120)
        assert res.returncode == 2 and "CUDA is not available" in res.stderr and "--cpu-smoke" in res.stderr
    out = tmp_path / "smoke.json"
    res = subprocess.run([*script, "--cpu-smoke", "--data", str(tmp_path / "data"), "--out", str(out)], capture_output=True,
                         text=True, env=env(), timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "    python benchmarks/gpu_checks.py --cpu-smoke" in res.stdout and "| part | figure |" in res.stdout
    for row in ("| (c) train images/s, resnet18", "| (v) vet embedding images/s", "| (ddp) `datacurate train --arch resnet18"):
        assert row in res.stdout, row
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["train"]["synthetic_img_s"] > 0 and figures["vet"]["mean_cosine_ours_vs_plain"] > 0.999
    assert figures["ddp"]["gpus_1"]["processes"] == 1 and "error" not in figures["ddp"]["gpus_1"]
