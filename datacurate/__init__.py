"""datacurate: grow, clean, split a labeled image collection and fine-tune a classifier on it."""

__version__ = "0.1.0"
