"""`paths:` of datacurate.yaml: its options model (the section belongs to the workspace, not to a stage)."""

from __future__ import annotations

from datacurate.core.options import StageOptions, opt
from datacurate.core.workspace import DEFAULT_PATHS

FOLDER = "a folder (a string)"


class PathsOptions(StageOptions):
    """`paths:` moves a layout folder (relative to the workspace, or absolute)."""

    SECTION = "paths"
    original: str | None = opt(None, "labeled images you bring: <class>/<image>", min_length=1, rule=FOLDER)
    scraped: str | None = opt(None, "what `datacurate scrape` downloads", min_length=1, rule=FOLDER)
    test: str | None = opt(None, "held-out images: never modified, used for leak checks", min_length=1, rule=FOLDER)
    quarantine: str | None = opt(None, "what clean and vet set aside", min_length=1, rule=FOLDER)
    split: str | None = opt(None, "what split builds", min_length=1, rule=FOLDER)
    runs: str | None = opt(None, "training runs", min_length=1, rule=FOLDER)
    reports: str | None = opt(None, "HTML and CSV reports", min_length=1, rule=FOLDER)

    @classmethod
    def label(cls, name: str) -> str:
        return f"paths.{name}"

    @classmethod
    def unknown(cls, name: str) -> str:
        return f"unknown path paths.{name}; known: {', '.join(DEFAULT_PATHS)}"
