"""`--ray` on clean, vet and scrape against a real Ray cluster on this machine (a head and a second node,
1 CPU each): the same catalog rows and folders as a local run on an identical copy of the files, a
worker killed with SIGKILL mid-run loses and doubles nothing, and bad addresses, a node that cannot see
the workspace and a missing Ray are one line and exit code 2."""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, photo, run_process as run_cli, write
from raycluster import LocalCluster, free_port

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason='ray is not installed (pip install "datacurate[ray]"; the test extra has it)')
# Columns that say when, not what: a run at another moment writes other values.
WHEN = {"files": ("checked", "mtime_ns"), "events": ("id", "time"), "provenance": ("id", "time")}
TABLES = ("files", "hashes", "quality", "pairs", "events", "provenance", "embeddings")


@pytest.fixture(scope="module")
def cluster():
    if not HAVE_RAY:
        pytest.skip('ray is not installed (pip install "datacurate[ray]"; the test extra has it)')
    with LocalCluster(nodes=2, cpus=1) as c:
        yield c


def catalog(ws: Path) -> dict[str, list[tuple]]:
    """Every row of the catalog's tables, without the columns that only say when, sorted."""
    con = sqlite3.connect(ws / ".datacurate" / "catalog.sqlite")
    out = {}
    for table in TABLES:
        cur = con.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cur.description]
        keep = [i for i, n in enumerate(names) if n not in WHEN.get(table, ())]
        out[table] = sorted((tuple(row[i] for i in keep) for row in cur), key=repr)
    con.close()
    return out


def folders(ws: Path) -> dict[str, bytes]:
    return {p.relative_to(ws).as_posix(): p.read_bytes() for p in sorted((ws / "data").rglob("*")) if p.is_file()}


def twins(tmp_path: Path, make) -> tuple[Path, Path]:
    """A workspace made by `make(root)` and an identical copy (file times included)."""
    a = tmp_path / "local"
    make(a)
    b = tmp_path / "ray"
    shutil.copytree(a, b, symlinks=True)
    return a, b


def assert_same(a: Path, b: Path) -> None:
    assert folders(a) == folders(b)
    ca, cb = catalog(a), catalog(b)
    for table in TABLES:
        assert ca[table] == cb[table], table


def demo_workspace(root: Path) -> None:
    run_cli("demo-data", str(root), check=True)


# -- no cluster needed ---------------------------------------------------------------------------
def test_without_ray_nothing_imports_ray(ws: Path):
    """clean, vet's and scrape's command modules and a config with a `ray:` section load no Ray."""
    write(ws / "data" / "original" / "a" / "x.jpg", b"")
    (ws / "datacurate.yaml").write_text("ray:\n  batch_size: 8\n", encoding="utf-8")
    code = ("import sys\nfrom datacurate.cli.main import main\n"
            "import datacurate.cli.vet, datacurate.cli.scrape\n"
            "try:\n    main.main(['-C', sys.argv[1], '-q', 'clean', '--json'], standalone_mode=False)\n"
            "finally:\n    print('RAY' if 'ray' in sys.modules else 'NO-RAY')\n")
    proc = subprocess.run([sys.executable, "-c", code, str(ws)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("NO-RAY") and '"scanned": 1' in proc.stdout


def test_without_ray_installed_the_flag_is_one_line_naming_the_extra(ws: Path):
    write(ws / "data" / "original" / "a" / "x.jpg", b"")
    code = ("import sys\nsys.modules['ray'] = None  # as if it were not installed: import fails, find_spec is None\n"
            "sys.argv = ['datacurate'] + sys.argv[1:]\nfrom datacurate.cli.main import run\nrun()\n")
    for command in ("clean", "vet", "scrape"):
        proc = subprocess.run([sys.executable, "-c", code, "-C", str(ws), command, "--ray", "127.0.0.1:6379"],
                              capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert proc.returncode == 2, (command, proc.stderr)
        assert proc.stderr == 'datacurate: error: --ray needs Ray, which is not installed: pip install "datacurate[ray]"\n'


@pytest.mark.parametrize("config, message", [
    ({"batch_size": 0}, "ray: batch_size must be a whole number of at least 1"),
    ({"address": "nowhere"}, "ray.address 'nowhere' is not an address of a Ray cluster"),
    ({"bogus": 1}, "unknown option ray.bogus"),
])
def test_a_bad_ray_section_is_one_line(ws: Path, config, message):
    (ws / "datacurate.yaml").write_text(yaml.safe_dump({"ray": config}), encoding="utf-8")
    proc = run_cli("-C", str(ws), "clean", "--dry-run")
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# -- bad addresses (Ray installed, no cluster there) -----------------------------------------------
@needs_ray
def test_an_address_that_does_not_answer_is_one_line_and_exit_2_without_a_hang(ws: Path):
    write(ws / "data" / "original" / "a" / "x.jpg", photo_jpeg())
    closed = free_port()
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for args, message in [
            (["clean", "--ray", f"127.0.0.1:{closed}"], f"the Ray cluster at 127.0.0.1:{closed} does not answer: connection refused"),
            (["vet", "--ray", f"ray://127.0.0.1:{closed}"], "does not answer: connection refused"),
            (["clean", "--ray", f"127.0.0.1:{server.server_address[1]}"], "does not answer like Ray: something else listens"),
            (["clean", "--ray", "10.0.0.1"], "'10.0.0.1' is not an address of a Ray cluster: HOST:PORT"),
            (["clean", "--ray", "127.0.0.1:1", "--no-ray"], "--ray and --no-ray contradict each other"),
        ]:
            start = time.monotonic()
            proc = run_cli("-C", str(ws), "-q", *args, timeout=60)
            assert proc.returncode == 2, (args, proc.stderr)
            assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
            assert time.monotonic() - start < 30
    finally:
        server.shutdown()


def photo_jpeg(seed: int = 0, size=(96, 72)) -> bytes:
    from conftest import encode

    return encode(photo(*size, seed=seed), "JPEG", quality=90)


# -- on the cluster ---------------------------------------------------------------------------------
def test_clean_on_the_cluster_matches_a_local_run_and_a_second_run_changes_nothing(cluster, tmp_path):
    local, remote = twins(tmp_path, demo_workspace)
    a = run_cli("-C", str(local), "-q", "clean", "--json", check=True)
    b = run_cli("-C", str(remote), "clean", "--json", "--ray", cluster.address, check=True)
    sa, sb = json.loads(a.stdout), json.loads(b.stdout)
    sa.pop("seconds"), sb.pop("seconds")
    assert sa == sb and sb["set_aside"]["truncated"] == 1 and sb["fixed"] == 3
    assert_same(local, remote)
    again = json.loads(run_cli("-C", str(remote), "-q", "clean", "--json", "--ray", cluster.address, check=True).stdout)
    assert again["set_aside"] == {} and again["fixed"] == 0
    assert not list((remote / ".datacurate").glob(".ray-check-*"))  # the marker file is gone


def test_clean_with_ray_address_in_datacurate_yaml_and_no_ray(cluster, tmp_path):
    def make(root: Path) -> None:
        for i in range(6):
            write(root / "data" / "original" / "k" / f"{i}.jpg", photo_jpeg(i))
        (root / "datacurate.yaml").write_text(yaml.safe_dump({"ray": {"address": cluster.address, "batch_size": 2}}))

    local, remote = twins(tmp_path, make)
    a = run_cli("-C", str(local), "clean", "--no-ray", check=True)
    assert "Ray cluster" not in a.stderr
    b = run_cli("-C", str(remote), "clean", check=True)
    assert f"datacurate: on the Ray cluster at {cluster.address}: 2 nodes, 2 CPUs, 0 GPUs" in b.stderr
    assert_same(local, remote)


def run_killing(cluster: LocalCluster, title: str, *args: str) -> tuple[int, str, str, bool]:
    """`datacurate ARGS --ray` while the first cluster process seen at work under the process title
    `title` gets SIGKILL: (exit code, stdout, stderr, whether one was killed)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "datacurate", *args, "--ray", cluster.address],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    killed = False
    deadline = time.monotonic() + 180
    while not killed and proc.poll() is None and time.monotonic() < deadline:
        busy = cluster.pids(title)
        if busy:
            os.kill(busy[0], signal.SIGKILL)
            killed = True
        time.sleep(0.01)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err, killed


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(cluster, tmp_path):
    """SIGKILL to a Ray worker while it decodes a batch: the task runs again, every file is judged once."""
    def make(root: Path) -> None:
        for i in range(160):
            data = photo_jpeg(i, (640, 480)) if i % 16 else b"<html>not found</html>"
            write(root / "data" / "original" / f"c{i % 4}" / f"{i:03d}.jpg", data)
        write(root / "data" / "original" / "c1" / "copy.jpg", photo_jpeg(5, (640, 480)))
        (root / "datacurate.yaml").write_text(yaml.safe_dump({"ray": {"batch_size": 4}}))

    local, remote = twins(tmp_path, make)
    expected = json.loads(run_cli("-C", str(local), "-q", "clean", "--json", check=True).stdout)
    code, out, err, killed = run_killing(cluster, "ray::decode_batch", "-C", str(remote), "-q", "clean", "--json")
    assert killed, "no worker was caught decoding"
    assert code == 0, err
    summary = json.loads(out)
    expected.pop("seconds"), summary.pop("seconds")
    assert summary == expected and summary["scanned"] == 161
    assert summary["set_aside"]["not-an-image"] == 10 and summary["set_aside"]["duplicate"] >= 1
    assert_same(local, remote)


def test_vet_on_the_cluster_matches_a_local_run_with_an_actor_killed(cluster, tmp_path):
    """Embedding actors (CPU here: the cluster has no GPU) give the vectors a local run gives, also when one
    is killed mid-run and restarted."""
    from test_vet import _make

    def make(root: Path) -> None:
        _make(root)
        config = yaml.safe_load((root / "datacurate.yaml").read_text())
        config["vet"]["batch_size"] = 8
        (root / "datacurate.yaml").write_text(yaml.safe_dump(config))

    local, remote = twins(tmp_path, make)
    a = json.loads(run_cli("-C", str(local), "-q", "vet", "--json", check=True).stdout)
    code, out, err, killed = run_killing(cluster, "ray::Embedder.embed", "-C", str(remote), "-q", "vet", "--json")
    assert code == 0, err
    assert killed, "no embedding actor was caught at work"
    b = json.loads(out)
    a.pop("seconds"), b.pop("seconds")
    assert a == b and b["set_aside"] == {"off-topic": 3, "wrong-class": 3} and b["embedded"] == 72
    assert_same(local, remote)
    assert not list((remote / ".datacurate").glob("ray-model-*"))


def test_scrape_on_the_cluster_matches_a_local_run(cluster, tmp_path):
    from datacurate.demo.engine import FakeEngine, ImageSpec, make_image

    held = make_image(999)
    results = [make_image(1), make_image(2, fmt="PNG"), ImageSpec(make_image(3), fault="webp"),
               ImageSpec(make_image(7, fmt="GIF")), ImageSpec(make_image(10), fault="404"),
               ImageSpec(make_image(12), fault="html"), ImageSpec(make_image(13), fault="truncated"),
               ImageSpec(make_image(17), fault="robots"), ImageSpec(make_image(18), fault="noai"), held,
               make_image(22, size=(12, 12)), ImageSpec(make_image(15), fault="bomb")]

    def make(root: Path) -> None:
        write(root / "data" / "original" / "猫" / "mine.jpg", held)

    local, remote = twins(tmp_path, make)
    fast = ["--allow-private", "--delay", "0", "--timeout", "3", "--retries", "1"]
    with FakeEngine({"猫": results}) as fe:
        a = run_cli("-C", str(local), "-q", "scrape", *fast, "--base-url", f"bing={fe.base_url}", "--no-ray")
        b = run_cli("-C", str(remote), "-q", "scrape", *fast, "--base-url", f"bing={fe.base_url}", "--ray", cluster.address)
    assert a.returncode == b.returncode == 0, b.stderr
    table = [[line for line in p.stdout.splitlines() if not line.startswith("saved ")] for p in (a, b)]
    assert "saved 4 images" in b.stdout and table[0] == table[1]
    assert_same(local, remote)


def test_a_node_that_cannot_see_the_workspace_is_named_in_one_line(cluster, tmp_path):
    """A third node whose file system hides the workspace (a private mount namespace with an empty tmpfs
    over it). Last in this module: the node is gone afterwards."""
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("needs unshare(1) with mount namespaces (root) to give one node another view of the file system")
    ws = tmp_path / "ws"
    for i in range(4):
        write(ws / "data" / "original" / "k" / f"{i}.jpg", photo_jpeg(i))
    hide = f"mount -t tmpfs tmpfs {ws} && exec \"$@\""
    node = cluster.add_node("blind", ("unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "sh"))
    try:
        cluster.wait_for(3)
        proc = run_cli("-C", str(ws), "-q", "clean", "--ray", cluster.address, timeout=120)
        assert proc.returncode == 2, proc.stderr
        line = proc.stderr.strip()
        assert len(line.splitlines()) == 1 and "Traceback" not in line
        assert line.startswith("datacurate: error: Ray node ") and "cannot see the workspace" in line
        assert "no such file or directory" in line and "shared file system" in line
        assert not (ws / "data" / "quarantine").exists() and not list((ws / ".datacurate").glob(".ray-check-*"))
    finally:
        os.killpg(node.pid, signal.SIGKILL)
