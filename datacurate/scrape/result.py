"""What a scrape did: per class and engine, pages, candidates, saved, rejected by reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from datacurate.scrape.refusals import ADVICE, Refusal, advice

# Exit codes when no class got a single image, by what stopped the engines (the first that applies).
EXIT_CODES = {"bad-key": 4, "blocked": 3, "format-changed": 5}


@dataclass
class Tally:
    """Counts for one (class, engine)."""

    pages: int = 0
    empty_pages: int = 0           # well-formed pages with no results
    unrecognised_pages: int = 0    # pages the parser did not recognise (markup changed?)
    page_errors: Counter = field(default_factory=Counter)
    candidates: int = 0
    saved: int = 0
    rejected: Counter = field(default_factory=Counter)


@dataclass
class ScrapeResult:
    """The outcome of `scrape()` (with dry_run, only the plan: queries and page URLs)."""

    dry_run: bool
    queries: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)         # classes the queries file skips
    had: dict[str, int] = field(default_factory=dict)        # class -> scraped images before the run
    need: dict[str, int] = field(default_factory=dict)       # class -> images wanted in this run
    tallies: dict[tuple[str, str], Tally] = field(default_factory=dict)
    refused: dict[str, Refusal] = field(default_factory=dict)  # engine -> why it was given up (first refusal)
    fallback: bool = False                                    # engines after the first only stand in
    planned: list[tuple[str, str, str, str]] = field(default_factory=list)  # (class, engine, query, page URL)
    seconds: float = 0.0
    download_seconds: float = 0.0  # first image request to last image answer
    downloads: int = 0             # image requests answered (saved or not)
    reports: dict = field(default_factory=dict)  # name -> path of what the run wrote (attribution.csv, scrape.html)

    def tally(self, klass: str, engine: str) -> Tally:
        return self.tallies.setdefault((klass, engine), Tally())

    def saved(self, klass: str | None = None) -> int:
        return sum(t.saved for (c, _), t in self.tallies.items() if klass is None or c == klass)

    @property
    def images_per_second(self) -> float:
        return self.saved() / self.download_seconds if self.download_seconds > 0 else 0.0

    def refusal_lines(self) -> list[str]:
        """One line per engine that refused or whose pages were not recognised, in its own words."""
        lines = []
        for engine, r in self.refusals_in_order():
            lines.append(f"{engine}: {r.text()}")
        return lines

    def refusals_in_order(self) -> list[tuple[str, Refusal]]:
        engines = list(dict.fromkeys(e for _, e in self.tallies))
        return [(e, self.refused[e]) for e in engines if e in self.refused] + \
               [(e, r) for e, r in self.refused.items() if e not in engines]

    def failure(self) -> tuple[str, int] | None:
        """(why no class got a single image, the exit code) when images were wanted and none came."""
        if self.dry_run or not any(self.need.values()) or self.saved() > 0:
            return None
        parts, kinds = [], []
        engines = list(dict.fromkeys(e for _, e in self.tallies))
        for engine in engines:
            rows = [t for (_, e), t in self.tallies.items() if e == engine]
            if engine in self.refused:
                r = self.refused[engine]
                kinds.append(r.kind)
                parts.append(f"{engine}: {r.text()}")
                continue
            pages = sum(t.pages for t in rows)
            cands = sum(t.candidates for t in rows)
            errors = sum((t.page_errors for t in rows), Counter())
            rejected = sum((t.rejected for t in rows), Counter())
            if errors and not cands:
                parts.append(f"{engine}: result pages failed ({_counts(errors)})")
            elif not cands:
                parts.append(f"{engine}: {pages} result pages held no images (no results for these queries?)")
            else:
                used = rejected["seen-before"] + rejected["repeat-url"] + rejected["duplicate"]
                hint = ("; the results for these queries are used up: add queries (--queries), another --engine "
                        "or more --max-pages") if used * 2 >= cands else ""
                parts.append(f"{engine}: {cands} candidates, all rejected ({_counts(rejected)}){hint}")
        hints = [advice(k, list(self.refused)) for k in dict.fromkeys(kinds) if k in ADVICE]
        code = next((EXIT_CODES[k] for k in EXIT_CODES if k in kinds), 1)
        text = "no class got a single image: " + ("; ".join(parts) or "no engine produced anything")
        return text + (f" ({'; '.join(hints)})" if hints else ""), code


def _counts(c: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.most_common())


def rejected_text(c: Counter) -> str:
    return ", ".join(f"{k}:{v}" for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) or "-"
