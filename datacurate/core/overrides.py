"""A person's word on clean's and vet's decisions, remembered by content (sha256) in the catalog.

Three kinds (table `overrides`): *keep* (this content is never set aside again, for every reason or
for the reasons named; never as a test leak, nor as a byte-identical copy in its own class), *apart*
(these two contents are not duplicates: the duplicate, leak and label-conflict searches never pair
them; identical bytes never are) and *label* (a person relabelled this content: it is kept against
vet's off-topic and wrong-class and clean's label-conflict; its class is its folder's).
Because all are keyed by content, they follow a file that is renamed, moved, or scraped again
under another name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from datacurate.core.catalog import Catalog

EVERY = "*"
LABEL_REASONS = ("off-topic", "wrong-class", "label-conflict")  # what a person's label overrules


@dataclass
class Overrides:
    """What the catalog holds: kept contents (sha256 -> reasons, '*' for every one) and apart pairs."""

    kept: dict[str, set[str]] = field(default_factory=dict)
    pairs: set[frozenset] = field(default_factory=set)
    labels: dict[str, str] = field(default_factory=dict)  # sha256 -> the class a person gave it

    def keeps(self, sha256: str | None, reason: str) -> bool:
        """True when the person said to keep this content against `reason` (or relabelled it, for LABEL_REASONS)."""
        if reason in LABEL_REASONS and (sha256 or "") in self.labels:
            return True
        reasons = self.kept.get(sha256 or "")
        return bool(reasons) and (EVERY in reasons or reason in reasons)

    def apart(self, a: str | None, b: str | None) -> bool:
        """True when the person said these two contents are not duplicates (identical bytes never are: one picture)."""
        return bool(self.pairs) and a != b and frozenset((a or "", b or "")) in self.pairs


def load(cat: Catalog) -> Overrides:
    """Every override the catalog holds."""
    out = Overrides()
    for kind, a, b, reason in cat.db.execute("SELECT kind, a, b, reason FROM overrides"):
        if kind == "keep":
            out.kept.setdefault(a, set()).add(reason)
        elif kind == "apart":
            out.pairs.add(frozenset((a, b)))
        elif kind == "label":
            out.labels[a] = reason
    return out


def add_keep(cat: Catalog, sha256: str, reasons: tuple[str, ...], path: str) -> None:
    """Remember: keep this content against `reasons` (empty: every reason)."""
    cat.db.executemany("INSERT OR REPLACE INTO overrides (kind, a, b, reason, time, path) VALUES ('keep',?,'',?,?,?)",
                       [(sha256, r, time.time(), path) for r in (reasons or (EVERY,))])


def add_apart(cat: Catalog, sha_a: str, sha_b: str, path_a: str, path_b: str) -> None:
    """Remember: these two contents are not duplicates (stored once, a <= b)."""
    if sha_b < sha_a:
        sha_a, sha_b, path_a, path_b = sha_b, sha_a, path_b, path_a
    cat.db.execute("INSERT OR REPLACE INTO overrides (kind, a, b, reason, time, path, other) VALUES ('apart',?,?,'*',?,?,?)",
                   (sha_a, sha_b, time.time(), path_a, path_b))


def add_label(cat: Catalog, sha256: str, klass: str, path: str) -> None:
    """Remember: a person labelled this content `klass` (one label per content: the latest wins)."""
    cat.db.execute("DELETE FROM overrides WHERE kind='label' AND a=?", (sha256,))
    cat.db.execute("INSERT INTO overrides (kind, a, b, reason, time, path) VALUES ('label',?,'',?,?,?)",
                   (sha256, klass, time.time(), path))


def drop_label(cat: Catalog, sha256: str) -> None:
    """Forget a person's label of this content (the relabel was undone)."""
    cat.db.execute("DELETE FROM overrides WHERE kind='label' AND a=?", (sha256,))
