"""The `ray:` section of datacurate.yaml and `--ray [ADDRESS]`: which cluster, and what the work asks of it.

Ray is not imported here: checking a config or running without a cluster costs nothing.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any, Mapping

from pydantic import field_validator

from datacurate.core.errors import UserError
from datacurate.core.options import StageOptions, opt

SECTION = "ray"
INSTALL = 'pip install "datacurate[ray]"'
AUTO = "auto"   # `--ray` without a value: ray.address of datacurate.yaml, else $RAY_ADDRESS, else this machine's cluster
ADDRESS = re.compile(r"^(ray://)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


class RayOptions(StageOptions):
    """Validated `ray:` options; `address` is the cluster to connect to (auto when none is named)."""

    SECTION = SECTION
    address: str | None = opt(None, "the cluster clean, vet and scrape use (HOST:PORT, ray://HOST:PORT, auto); none: no cluster")
    batch_size: int = opt(32, "files per decoding task (clean)", ge=1)
    num_cpus: float = opt(1.0, "CPUs each task and embedding actor asks for", ge=0, le=1024)
    num_gpus: float | None = opt(None, "GPUs each embedding actor asks for (none: 1 when the cluster has GPUs, else 0)",
                                 ge=0, le=64)
    actors: int | None = opt(None, "embedding actors (none: one per GPU, else one per node)", ge=1)
    in_flight: int | None = opt(None, "tasks submitted at once (none: twice the cluster's CPUs)", ge=1)
    max_retries: int = opt(3, "a task whose worker died (or that raised) runs again, this many times at most", ge=0)
    connect_timeout: float = opt(10.0, "seconds the cluster has to answer", ge=0.1, le=600)

    @field_validator("address")
    @classmethod
    def _address(cls, value: Any) -> Any:
        return None if value is None else check_address(value, "ray.address")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], address: str | None = None) -> "RayOptions":
        """The section's options with the address to use: `address` (the --ray flag), else ray.address, else auto."""
        opts = cls.resolve(values)
        chosen = check_address(address, "--ray") if address is not None else (opts.address or AUTO)
        return opts.model_copy(update={"address": chosen})


DEFAULTS: dict[str, Any] = RayOptions.defaults()


def check_section(section: Mapping[str, Any]) -> None:
    """The checker of datacurate.yaml's `ray:` section (stages.OTHER_SECTIONS)."""
    RayOptions.check(section)


def cluster_options(config: Mapping[str, Any], flag: str | bool | None) -> RayOptions | None:
    """What `--ray` (a value, `auto`, False for `--no-ray`, None when not given) and `ray:` ask for; None: run locally.

    Without the flag, `ray.address` in datacurate.yaml turns the cluster on; `--ray` alone uses that
    address when there is one, else `auto`.
    """
    values = RayOptions.resolve(config.get(SECTION) or {}).as_dict()
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
