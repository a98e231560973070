"""The reasons a file can be set aside for, and those `keep` can overrule (read by the CLI and the review app)."""

from __future__ import annotations

from datacurate.clean.quality import FLAGS
from datacurate.clean.restore import DERIVED, RENAMED
from datacurate.core.imageio import REASONS

KEEPABLE = ("too-small", "odd-aspect", "near-duplicate", "label-conflict") + FLAGS + ("off-topic", "wrong-class")
SET_ASIDE = REASONS + ("duplicate", "near-duplicate", "label-conflict", "test-leak", "converted") + FLAGS + (RENAMED, DERIVED) + ("off-topic", "wrong-class")
