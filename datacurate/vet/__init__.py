"""`datacurate vet`: find scraped images that do not belong, and labels that look wrong.

Library entry point: `vet(ws, **options)` returns a VetResult (torch is imported only when it runs).
The package called, `datacurate.vet(ws, ...)`, is the Python API's function (datacurate/api.py makes it
so). The names here load on first use, so importing the package stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datacurate.vet.options import VetOptions
    from datacurate.vet.records import VetResult

__all__ = ["vet", "VetOptions", "VetResult"]


def vet(ws, **kwargs) -> VetResult:
    """See datacurate.vet.run.vet."""
    from datacurate.vet.run import vet as _vet

    return _vet(ws, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "VetOptions":
        from datacurate.vet.options import VetOptions

        return VetOptions
    if name == "VetResult":
        from datacurate.vet.records import VetResult

        return VetResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
