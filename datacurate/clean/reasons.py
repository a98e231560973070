"""The reasons a file can be set aside for, and those `keep` can overrule (read by the CLI and the review app)."""

from __future__ import annotations

from datacurate.clean.quality import FLAGS
from datacurate.core.imageio import REASONS

RENAMED = "renamed"   # pseudo-reason: undo clean's renames of kept files
DERIVED = "derived"   # changed PNGs clean had made; restored only when asked for by name

# Reasons a person cannot overrule with `datacurate keep`: the file does not decode (training would fail on it).
UNKEEPABLE = frozenset({"empty", "unreadable", "not-an-image", "unsupported", "too-large", "truncated", "corrupt"})
NO_OVERRIDE = UNKEEPABLE | {"test-leak", "duplicate"}  # `keep` never overrules these (duplicate: identical bytes, same class)

KEEPABLE = ("too-small", "odd-aspect", "near-duplicate", "label-conflict") + FLAGS + ("off-topic", "wrong-class")
SET_ASIDE = REASONS + ("duplicate", "near-duplicate", "label-conflict", "test-leak", "converted") + FLAGS + (RENAMED, DERIVED) + ("off-topic", "wrong-class")
