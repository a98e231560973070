"""`datacurate vet`: find scraped images that do not belong, and labels that look wrong.

Library entry point: `vet(ws, **options)` returns a VetResult (torch is imported only when it runs).
"""

from datacurate.vet.options import VetOptions
from datacurate.vet.records import VetResult


def vet(ws, **kwargs) -> VetResult:
    """See datacurate.vet.run.vet."""
    from datacurate.vet.run import vet as _vet

    return _vet(ws, **kwargs)


__all__ = ["vet", "VetOptions", "VetResult"]

from datacurate.api import callable_package  # noqa: E402 - last: `datacurate.vet(ws, ...)` runs the stage

callable_package(__name__)
