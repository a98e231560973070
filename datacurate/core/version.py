"""The package version (pyproject.toml reads it; datacurate.__version__ re-exports it)."""

__version__ = "0.1.0"
