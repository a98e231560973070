"""The `ray:` section of datacurate.yaml and `--ray [ADDRESS]`: which cluster, and what the work asks of it.

Ray is not imported here: checking a config or running without a cluster costs nothing.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from typing import Any, Mapping

from datacurate.errors import UserError

SECTION = "ray"
INSTALL = 'pip install "datacurate[ray]"'
AUTO = "auto"   # `--ray` without a value: ray.address of datacurate.yaml, else $RAY_ADDRESS, else this machine's cluster
DEFAULTS: dict[str, Any] = {
    "address": None,          # the cluster clean, vet and scrape use (HOST:PORT, ray://HOST:PORT, auto); null: none
    "batch_size": 32,         # files per decoding task (clean)
    "num_cpus": 1.0,          # CPUs each task and embedding actor asks for
    "num_gpus": None,         # GPUs each embedding actor asks for (null: 1 when the cluster has GPUs, else 0)
    "actors": None,           # embedding actors (null: one per GPU, else one per node)
    "in_flight": None,        # tasks submitted at once (null: twice the cluster's CPUs)
    "max_retries": 3,         # a task whose worker died (or that raised) runs again, this many times at most
    "connect_timeout": 10.0,  # seconds the cluster has to answer
}
ADDRESS = re.compile(r"^(ray://)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


@dataclass(frozen=True)
class RayOptions:
    """Validated `ray:` options, with the address to connect to."""

    address: str = AUTO
    batch_size: int = 32
    num_cpus: float = 1.0
    num_gpus: float | None = None
    actors: int | None = None
    in_flight: int | None = None
    max_retries: int = 3
    connect_timeout: float = 10.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], address: str | None = None) -> "RayOptions":
        v = dict(DEFAULTS, **values)
        chosen = address if address is not None else (v["address"] or AUTO)
        return cls(
            address=check_address(chosen, "--ray" if address is not None else "ray.address"),
            batch_size=_whole("batch_size", v["batch_size"], 1),
            num_cpus=_number("num_cpus", v["num_cpus"], 0.0, 1024.0),
            num_gpus=None if v["num_gpus"] is None else _number("num_gpus", v["num_gpus"], 0.0, 64.0),
            actors=None if v["actors"] is None else _whole("actors", v["actors"], 1),
            in_flight=None if v["in_flight"] is None else _whole("in_flight", v["in_flight"], 1),
            max_retries=_whole("max_retries", v["max_retries"], 0),
            connect_timeout=_number("connect_timeout", v["connect_timeout"], 0.1, 600.0),
        )


def check_section(section: Mapping[str, Any]) -> None:
    """The checker of datacurate.yaml's `ray:` section (stages.OTHER_SECTIONS)."""
    from datacurate.workspace import resolve_options

    values = resolve_options(section, {}, DEFAULTS, SECTION)
    RayOptions.from_mapping(values)


def cluster_options(config: Mapping[str, Any], flag: str | bool | None) -> RayOptions | None:
    """What `--ray` (a value, `auto`, False for `--no-ray`, None when not given) and `ray:` ask for; None: run locally.

    Without the flag, `ray.address` in datacurate.yaml turns the cluster on; `--ray` alone uses that
    address when there is one, else `auto`.
    """
    from datacurate.workspace import resolve_options

    values = resolve_options(config.get(SECTION) or {}, {}, DEFAULTS, SECTION)
    if flag is False or (flag is None and values["address"] is None):
        return None
    if flag is None or (flag == AUTO and values["address"] is not None):
        opts = RayOptions.from_mapping(values)
    else:
        opts = RayOptions.from_mapping(values, address=flag)
    if importlib.util.find_spec("ray") is None:  # looked up, not imported
        raise UserError(f"--ray needs Ray, which is not installed: {INSTALL}")
    return opts


def check_address(value: Any, name: str = "--ray") -> str:
    if value in (AUTO, "local"):
        return value
    if not isinstance(value, str) or not ADDRESS.match(value.strip()) or not 0 < int(ADDRESS.match(value.strip())[3]) < 65536:
        raise UserError(f"{name} {value!r} is not an address of a Ray cluster: HOST:PORT (the head's GCS, "
                        f"e.g. 10.0.0.5:6379), ray://HOST:PORT (Ray Client) or auto")
    return value.strip()


def host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of HOST:PORT or ray://HOST:PORT; None for auto and local."""
    found = ADDRESS.match(address)
    return (found[2].strip("[]"), int(found[3])) if found else None


def _flag(name: str) -> str:
    return f"ray.{name}"


def _whole(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{_flag(name)} must be a whole number of at least {low}, got {value!r}")
    return value


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise UserError(f"{_flag(name)} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)
