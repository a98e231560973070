"""Class balance: counts per class x split x source, and what follows (shares, imbalance, classes under a minimum)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

SPLITS = ("train", "valid", "test")
SOURCES = ("original", "scraped")


@dataclass
class Balance:
    """Counts per (class, split, source) and what follows from them."""

    counts: Counter = field(default_factory=Counter)   # (class, split, source) -> images
    min_per_class: int = 10
    final: bool = False

    @property
    def classes(self) -> list[str]:
        return sorted({c for c, _, _ in self.counts})

    @property
    def splits(self) -> list[str]:
        present = {s for _, s, _ in self.counts}
        return [s for s in SPLITS if s in present or s in ("train", "valid")]

    def n(self, klass: str | None = None, split: str | None = None, source: str | None = None) -> int:
        return sum(v for (c, s, o), v in self.counts.items()
                   if (klass is None or c == klass) and (split is None or s == split) and (source is None or o == source))

    @property
    def imbalance(self) -> float:
        """Largest class / smallest class, by train images (inf when a class has none)."""
        sizes = [self.n(c, "train") for c in self.classes]
        if not sizes:
            return 0.0
        return max(sizes) / min(sizes) if min(sizes) else float("inf")

    @property
    def under(self) -> list[str]:
        """Classes with fewer than min_per_class train images."""
        return [c for c in self.classes if self.n(c, "train") < self.min_per_class]

    def rows(self) -> list[dict]:
        """One row per class (the CSV): counts by split and source, totals and shares."""
        out = []
        all_train = self.n(split="train") or 1
        for c in self.classes:
            row: dict = {"class": c}
            for s in self.splits:
                for o in SOURCES:
                    row[f"{s}_{o}"] = self.n(c, s, o)
            for s in self.splits:
                row[s] = self.n(c, s)
            total = self.n(c)
            row["total"] = total
            row["train_share"] = round(row["train"] / all_train, 4)
            row["valid_share"] = round(row["valid"] / total, 4) if total else 0.0
            row["under_min"] = int(row["train"] < self.min_per_class)
            out.append(row)
        return out

    def table(self) -> tuple[list[dict], list[str]]:
        """Rows and columns for the printed table (a TOTAL row last)."""
        cols = ["class", "train", "original", "scraped"] + [s for s in self.splits if s != "train"] + ["total", "train%", "flag"]
        rows = []
        for r in self.rows():
            rows.append({"class": r["class"], "train": r["train"], "original": r["train_original"],
                         "scraped": r["train_scraped"], **{s: r[s] for s in self.splits if s != "train"},
                         "total": r["total"], "train%": f"{100 * r['train_share']:.1f}%",
                         "flag": f"under {self.min_per_class}" if r["under_min"] else ""})
        if rows:
            rows.append({"class": "TOTAL", "train": self.n(split="train"), "original": self.n(split="train", source="original"),
                         "scraped": self.n(split="train", source="scraped"),
                         **{s: self.n(split=s) for s in self.splits if s != "train"}, "total": self.n(),
                         "train%": "100.0%" if self.n(split="train") else "0.0%", "flag": ""})
        return rows, cols

    def summary(self) -> str:
        ratio = "inf" if self.imbalance == float("inf") else f"{self.imbalance:.2f}"
        under = f"{len(self.under)} class(es) under {self.min_per_class} train images" + (
            f": {', '.join(self.under[:8])}{' ...' if len(self.under) > 8 else ''}" if self.under else "")
        return f"{len(self.classes)} classes, imbalance {ratio} (largest/smallest train class), {under}"
