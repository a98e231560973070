"""A real Ray cluster on this machine for tests and benchmarks: a head and more nodes (`ray start`),
each in its own process group, torn down by those groups and the pids under its own temp folder
(never `ray stop`, which ends every Ray process on the machine)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """`ray start --head` plus `nodes - 1` x `ray start --address`, `cpus` CPUs and a small object store each."""

    def __init__(self, nodes: int = 2, cpus: int = 1, object_store: int = 200_000_000):
        self.nodes, self.cpus, self.object_store = nodes, cpus, object_store
        self.temp = Path(tempfile.mkdtemp(prefix="dcray-", dir="/tmp"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0", PYTHONIOENCODING="utf-8")
        self.env.pop("RAY_ADDRESS", None)

    def _ports(self) -> list[str]:
        out = []
        for flag in ("--node-manager-port", "--object-manager-port", "--metrics-export-port",
                     "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port"):
            out += [flag, str(free_port())]
        return out

    def _common(self) -> list[str]:
        return ["--num-cpus", str(self.cpus), "--num-gpus", "0", "--object-store-memory", str(self.object_store),
                "--node-ip-address", "127.0.0.1", "--disable-usage-stats", "--block", *self._ports()]

    def start(self) -> "LocalCluster":
        self._spawn([RAY, "start", "--head", "--port", str(self.port), "--include-dashboard=false",
                     "--temp-dir", str(self.temp), "--ray-client-server-port", str(free_port()), *self._common()],
                    "head")
        for i in range(1, self.nodes):
            self.add_node(f"node{i}")
        self.wait_for(self.nodes)
        return self

    def add_node(self, name: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
        """Another node (its command run under `prefix`, e.g. a private mount namespace)."""
        return self._spawn([*prefix, RAY, "start", "--address", self.address, *self._common()], name)

    def _spawn(self, cmd: list[str], name: str) -> subprocess.Popen:
        log = open(self.temp / f"{name}.log", "wb")
        proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def wait_for(self, alive: int, timeout: float = 120.0) -> None:
        """Until `alive` nodes are up (asked in a child process: this one never imports Ray)."""
        code = ("import ray,sys,time,logging;ray.init(address=sys.argv[1],logging_level=logging.ERROR,log_to_driver=False)\n"
                "end=time.time()+float(sys.argv[3])\n"
                "while sum(n['Alive'] for n in ray.nodes())<int(sys.argv[2]) and time.time()<end: time.sleep(0.3)\n"
                "sys.exit(0 if sum(n['Alive'] for n in ray.nodes())>=int(sys.argv[2]) else 1)")
        end = time.time() + timeout
        while time.time() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                break
            except OSError:
                time.sleep(0.3)
        proc = subprocess.run([sys.executable, "-c", code, self.address, str(alive), str(timeout)], env=self.env,
                              capture_output=True, text=True, timeout=timeout + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"the local Ray cluster did not come up with {alive} nodes: {proc.stderr[-2000:]}\n"
                               + self.logs())

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in sorted(self.temp.glob("*.log")))

    def pids(self, title: str = "") -> list[int]:
        """Processes of this cluster (every one lives in the session of a `ray start` this object ran),
        optionally only those whose command line (a Ray worker's process title: ray::TASK) holds `title`."""
        sessions = {p.pid for p in self.procs}
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                stat = (entry / "stat").read_text()
                session = int(stat[stat.rindex(")") + 2:].split()[3])
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, ValueError, IndexError):
                continue
            if session in sessions and title in cmd:
                found.append(int(entry.name))
        return found

    def stop(self) -> None:
        for proc in self.procs:
            _signal_group(proc.pid, signal.SIGTERM)
        end = time.time() + 10
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, end - time.time()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        try:
            return self.start()
        except (RuntimeError, subprocess.TimeoutExpired):
            # Under pytest-xdist another worker's server can take a port between free_port() and Ray's
            # bind: stop what started (nothing is left running) and try once more on fresh ports.
            self.stop()
            self.__init__(self.nodes, self.cpus, self.object_store)
            try:
                return self.start()
            except BaseException:
                self.stop()
                raise

    def __exit__(self, *exc) -> None:
        self.stop()


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except OSError:
        pass
