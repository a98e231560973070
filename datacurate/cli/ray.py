"""`--ray [ADDRESS]` and `--no-ray`, the same on clean, vet and scrape."""

from __future__ import annotations

import click

from datacurate.executors.options import AUTO


def ray_options(func):
    """Add --ray [ADDRESS] and --no-ray; the command gets one `ray` argument (see ray_flag)."""
    func = click.option("--no-ray", is_flag=True, default=False,
                        help="Run on this machine even when datacurate.yaml names a cluster (ray.address).")(func)
    return click.option("--ray", "ray", is_flag=False, flag_value=AUTO, default=None, metavar="[ADDRESS]",
                        help="Run the per-image work on a Ray cluster: HOST:PORT of its head (e.g. 10.0.0.5:6379), "
                             "ray://HOST:10001, or nothing for ray.address of datacurate.yaml, $RAY_ADDRESS or this "
                             "machine's cluster. The workspace must be at the same path on every node (docs/scale.md). "
                             "Needs pip install \"datacurate[ray]\".")(func)


def ray_flag(ray: str | None, no_ray: bool) -> str | bool | None:
    """What the stage functions take as `ray=`: False for --no-ray, the address, or None (datacurate.yaml decides)."""
    if no_ray and ray is not None:
        raise click.UsageError("--ray and --no-ray contradict each other")
    return False if no_ray else ray
