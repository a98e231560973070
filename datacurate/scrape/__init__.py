"""Scrape: more images per class from image search (engines on icrawler, polite downloader).

    from datacurate.scrape import scrape, check_options, DEFAULTS
    result = scrape(ws, check_options({**DEFAULTS, "suffix": "shirt doll"}))

The package called, `datacurate.scrape(ws, ...)`, is the Python API's function (datacurate/api.py makes it
so). The names here load on first use, so importing the package stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datacurate.scrape.options import DEFAULTS, ScrapeOptions, check_options
    from datacurate.scrape.result import ScrapeResult, Tally

__all__ = ["DEFAULTS", "ScrapeOptions", "ScrapeResult", "Tally", "check_options", "scrape"]


def scrape(*args, **kwargs) -> ScrapeResult:
    """See datacurate.scrape.run.scrape (imported on first use: icrawler is slow to import)."""
    from datacurate.scrape.run import scrape as _scrape

    return _scrape(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name in ("DEFAULTS", "ScrapeOptions", "check_options"):
        from datacurate.scrape import options

        return getattr(options, name)
    if name in ("ScrapeResult", "Tally"):
        from datacurate.scrape import result

        return getattr(result, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
