"""Plain records of a vet: per-image scores, flags, and the result of a run."""

from __future__ import annotations

from dataclasses import dataclass, field

REASONS = ("off-topic", "wrong-class")


@dataclass
class Score:
    """What vet measured for one image (a row of reports/vet.csv)."""

    path: str
    klass: str
    source: str                 # original | scraped | test
    sha256: str
    distance: float             # mean cosine distance to the k nearest originals of its class
    threshold: float            # its class's off-topic threshold
    quality: float | None       # cleanlab label quality of its own class (None with one class)
    likeliest: str | None       # the class the logistic regression finds likeliest
    likeliest_prob: float | None
    flag: str = ""              # off-topic | wrong-class | "" (kept)
    looks_like: str | None = None
    detail: str = ""            # how it was decided: score, threshold, how the threshold was set, the rule
    own_neighbours: list[str] = field(default_factory=list)    # nearest originals of its own class
    other_neighbours: list[str] = field(default_factory=list)  # nearest originals of the class it looks like


@dataclass
class Flag:
    """An image set aside (or, for an original, listed): where it is, why, and where it goes."""

    path: str
    klass: str
    source: str
    reason: str                 # off-topic | wrong-class
    score: float                # off-topic: the distance; wrong-class: the probability of the class it looks like
    threshold: float            # off-topic: the class's threshold; wrong-class: that class's confident threshold
    looks_like: str | None
    detail: str
    move: bool                  # False: listed only (originals without --move-originals)
    dst: str | None = None      # where it went (after the move)


@dataclass
class VetResult:
    """What a vet did (or, with dry_run, would do)."""

    dry_run: bool
    model: str = ""
    classes: dict[str, dict] = field(default_factory=dict)     # per vetted class: counts and threshold
    skipped_classes: dict[str, str] = field(default_factory=dict)
    flags: list[Flag] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    embedded: int = 0           # images embedded now (the rest came from the cache)
    cached: int = 0
    undecodable: dict[str, str] = field(default_factory=dict)
    kept_by_user: list[str] = field(default_factory=list)      # restored from a vet quarantine: not judged again
    notes: list[str] = field(default_factory=list)
    judge: dict = field(default_factory=dict)                   # the classifier's out-of-fold check on the originals
    reports: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def moved(self) -> list[Flag]:
        return [f for f in self.flags if f.move]

    @property
    def listed(self) -> list[Flag]:
        return [f for f in self.flags if not f.move]

    def counts(self) -> dict[str, int]:
        out = {reason: 0 for reason in REASONS}
        for f in self.moved:
            out[f.reason] += 1
        return out

    def summary(self) -> dict:
        return {
            "dry_run": self.dry_run, "model": self.model, "embedded": self.embedded, "cached": self.cached,
            "judge": self.judge, "classes": self.classes, "skipped_classes": self.skipped_classes,
            "set_aside" if not self.dry_run else "would_set_aside": self.counts(),
            "flags": [{"path": f.path, "class": f.klass, "source": f.source, "reason": f.reason,
                       "score": round(f.score, 4), "threshold": round(f.threshold, 4), "looks_like": f.looks_like,
                       "moved": f.move and not self.dry_run, "to": f.dst} for f in self.flags],
            "undecodable": self.undecodable, "kept_by_user": self.kept_by_user, "notes": self.notes,
            "reports": self.reports, "seconds": round(self.seconds, 3),
        }
