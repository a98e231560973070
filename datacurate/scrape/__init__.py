"""Scrape: more images per class from image search (engines on icrawler, polite downloader).

    from datacurate.scrape import scrape, check_options, DEFAULTS
    result = scrape(ws, check_options({**DEFAULTS, "suffix": "shirt doll"}))
"""

from datacurate.scrape.options import DEFAULTS, ScrapeOptions, check_options
from datacurate.scrape.result import ScrapeResult, Tally

__all__ = ["DEFAULTS", "ScrapeOptions", "ScrapeResult", "Tally", "check_options", "scrape"]


def scrape(*args, **kwargs) -> ScrapeResult:
    """See datacurate.scrape.run.scrape (imported on first use: icrawler is slow to import)."""
    from datacurate.scrape.run import scrape as _scrape

    return _scrape(*args, **kwargs)

from datacurate.api import callable_package  # noqa: E402 - last: `datacurate.scrape(ws, ...)` runs the stage

callable_package(__name__)
