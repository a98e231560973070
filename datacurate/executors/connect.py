"""Connecting to a Ray cluster: a quick answer or one clear line, and every node must see the workspace.

A cluster that does not answer would keep `ray.init` retrying for a minute or more while Ray's C++
client prints warnings; so the address is probed first, within `connect_timeout`: a TCP connection,
the HTTP/2 greeting every gRPC server answers, and for a head's address the cluster id its GCS gives.
Then a small task on every node (see_workspace) checks that it sees the workspace and runs the same
datacurate.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from datacurate.executors.options import AUTO, INSTALL, RayOptions, host_port
from datacurate.core.errors import UserError

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = 0x4


@dataclass
class Cluster:
    """A connected cluster and the options of the work sent to it."""

    opts: RayOptions
    address: str
    cpus: float
    gpus: float
    nodes: int
    scratch: Path | None = None   # a folder in the workspace every node sees (files the driver hands the workers)

    @property
    def in_flight(self) -> int:
        return self.opts.in_flight or max(2, int(2 * self.cpus / max(self.opts.num_cpus, 0.01)))

    @property
    def num_gpus(self) -> float:
        """GPUs per embedding actor: ray.num_gpus, else 1 when the cluster has GPUs."""
        if self.opts.num_gpus is not None:
            return self.opts.num_gpus
        return 1.0 if self.gpus >= 1 else 0.0

    @property
    def actors(self) -> int:
        if self.opts.actors:
            return self.opts.actors
        if self.num_gpus > 0:
            return max(1, int(self.gpus / self.num_gpus))
        return max(1, min(self.nodes, int(self.cpus / max(self.opts.num_cpus, 0.01))))


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(f"--ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


@contextmanager
def connected(opts: RayOptions, folders: Sequence[Path] = (), *, quiet: bool = True) -> Iterator[Cluster]:
    """Connect (or use the connection this process already has), check that every alive node sees
    `folders` (the first holds a marker file written for the check), yield, disconnect."""
    ray = import_ray()
    ours = not ray.is_initialized()
    address = _connect(ray, opts) if ours else "the cluster this process is connected to"
    restore = _cluster_messages_to_stderr()
    try:
        cluster = _describe(ray, opts, address)
        if folders:
            check_nodes(ray, cluster, folders)
            cluster.scratch = Path(folders[0])
        if not quiet:
            print(f"datacurate: on the Ray cluster at {cluster.address}: {cluster.nodes} nodes, "
                  f"{cluster.cpus:g} CPUs, {cluster.gpus:g} GPUs", file=sys.stderr)
        yield cluster
    finally:
        restore()
        if ours:
            ray.shutdown()


def _cluster_messages_to_stderr():
    """Ray's driver prints the cluster's messages ("A worker died or was killed while executing a task...")
    on stdout, where --json goes; send them to stderr. Returns the undo."""
    try:
        from ray._private import worker
    except ImportError:  # another layout: leave Ray as it is
        return lambda: None
    original = getattr(worker, "print_to_stdstream", None)
    if original is None:
        return lambda: None

    def to_stderr(data, *args, **kwargs):
        return original({**data, "is_err": True}, *args, **kwargs)

    worker.print_to_stdstream = to_stderr
    return lambda: setattr(worker, "print_to_stdstream", original)


def _connect(ray, opts: RayOptions) -> str:
    address = opts.address
    if address == AUTO:
        address = _auto_address(ray)
    if address != "local":
        probe(address, opts.connect_timeout)
    saved = os.environ.pop("RAY_ADDRESS", None) if opts.address != AUTO else None  # an explicit address wins
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, configure_logging=True,
                 include_dashboard=False if address == "local" else None)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UserError(f"cannot connect to the Ray cluster at {address}: {first_line(exc)}") from None
    finally:
        if saved is not None:
            os.environ["RAY_ADDRESS"] = saved
    return address


def _auto_address(ray) -> str:
    """$RAY_ADDRESS, else the cluster `ray start` last started on this machine."""
    env = os.environ.get("RAY_ADDRESS")
    if env:
        return env if env in (AUTO, "local") or host_port(env) else _bad_env(env)
    try:
        from ray._private.services import find_bootstrap_address

        found = find_bootstrap_address(None)
    except Exception:  # noqa: BLE001 - a private helper: without it, ray.init finds the cluster itself
        return AUTO
    if not found:
        raise UserError("--ray: no Ray cluster is running on this machine and RAY_ADDRESS is not set; "
                        "start one (`ray start --head`) or name it: --ray HOST:6379")
    return found


def _bad_env(value: str) -> str:
    raise UserError(f"RAY_ADDRESS={value!r} is not HOST:PORT or ray://HOST:PORT")


def probe(address: str, timeout: float) -> None:
    """Raise UserError unless Ray answers at `address` within `timeout`: the head's GCS (its cluster id), or
    for ray:// a gRPC server (Ray Client)."""
    found = host_port(address)
    if found is None:
        return
    host, port = found
    what = f"the Ray cluster at {address} does not answer"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(HTTP2_PREFACE)
            head = _read(sock, 9)
    except socket.gaierror as exc:
        raise UserError(f"{what}: cannot resolve {host} ({exc.strerror})") from None
    except socket.timeout:
        raise UserError(f"{what} within {timeout:g} s (ray.connect_timeout); is `ray start --head --port {port}` "
                        f"running there, and the port open?") from None
    except OSError as exc:
        raise UserError(f"{what}: {(exc.strerror or str(exc)).lower()}; start the head there with "
                        f"`ray start --head --port {port}`") from None
    unlike = (f"{what} like Ray: something else listens on port {port} (the head's port is the one "
              f"`ray start --head` printed, 6379 by default; Ray Client's is 10001)")
    if len(head) < 9 or head[3] != SETTINGS:
        raise UserError(unlike)
    if not address.startswith("ray://") and not _gcs_answers(host, port, timeout):
        raise UserError(unlike)


def _gcs_answers(host: str, port: int, timeout: float) -> bool:
    """Ray's GCS gives its cluster id (what ray.init asks first, retrying for a minute when it cannot)."""
    try:
        import grpc
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:  # Ray's generated stubs moved: ray.init will say it
        return True
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with grpc.insecure_channel(target) as channel:
        try:
            gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
    return True


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _describe(ray, opts: RayOptions, address: str) -> Cluster:
    resources = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return Cluster(opts, address, float(resources.get("CPU", 0)), float(resources.get("GPU", 0)), len(nodes))


def check_nodes(ray, cluster: Cluster, folders: Sequence[Path]) -> None:
    """A small task on every alive node reads a marker file written in folders[0] and looks for the
    other folders; the first node that cannot is named in one line."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from datacurate.core.version import __version__

    marker = Path(folders[0]) / f".ray-check-{uuid.uuid4().hex}"
    token = uuid.uuid4().hex
    marker.write_text(token)
    try:
        remote = ray.remote(see_workspace)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = {remote.options(num_cpus=0, max_retries=1, scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(str(marker), token, [str(f) for f in folders[1:]]): n for n in nodes}
        timeout = max(30.0, 3 * cluster.opts.connect_timeout)
        ready, late = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
        for ref in late:
            raise UserError(f"Ray node {_node_name(refs[ref])} did not run a check within {timeout:g} s "
                            f"(is it overloaded, or without the Python environment datacurate runs in?)")
        for ref in ready:
            node = refs[ref]
            try:
                problem, version = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a node that cannot even import datacurate
                raise UserError(f"Ray node {_node_name(node)} cannot run datacurate's check: {first_line(exc)} "
                                f"(install the same datacurate and Python packages on every node)") from None
            if problem:
                raise UserError(f"Ray node {_node_name(node)} cannot see the workspace: {problem}; every node "
                                f"must reach it at the same path through a shared file system (NFS, CephFS, "
                                f"Lustre...), see docs/scale.md")
            if version != __version__:
                raise UserError(f"Ray node {_node_name(node)} has datacurate {version}, this machine {__version__}: "
                                f"install the same version on every node")
    finally:
        marker.unlink(missing_ok=True)


def _node_name(node: dict) -> str:
    host = node.get("NodeManagerHostname") or "?"
    return f"{host} ({node.get('NodeManagerAddress', '?')}, id {node.get('NodeID', '?')[:12]})"


def first_line(exc: BaseException) -> str:
    """The last non-blank line of an exception's message (Ray's hold a remote traceback), at most 300 characters."""
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


def see_workspace(marker: str, token: str, folders: Sequence[str]) -> tuple[str | None, str]:
    """On a node (a Ray task): (what this node cannot see, or None; its datacurate version)."""
    from datacurate.core.version import __version__

    try:
        with open(marker, encoding="utf-8") as fh:
            found = fh.read()
    except OSError as exc:
        return f"{marker}: {(exc.strerror or str(exc)).lower()} on {socket.gethostname()}", __version__
    if found != token:
        return f"{marker} holds other bytes on {socket.gethostname()} (another file system at that path)", __version__
    for folder in folders:
        if not os.path.isdir(folder):
            return f"{folder}: no such folder on {socket.gethostname()}", __version__
    return None, __version__
