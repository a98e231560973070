"""The duplicates gallery (HTML, self-contained) and the CSV of pairs that clean found.

The gallery shows, side by side with thumbnails: clusters whose members span classes (label
conflicts and conflicts left for a person), plain near-duplicate clusters, exact-duplicate
groups, and test-set leaks (the test image first). Each card names the class, the source, the
distance to the keeper (or test image) and what happened to the file.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

from datacurate.clean.model import Item, Pair
from datacurate.fsutil import atomic_write_text
from datacurate.report.html import card, esc, table, write_page
from datacurate.workspace import Workspace

MAX_GROUPS_PER_SECTION = 300
PAIR_COLUMNS = ["a", "b", "kind", "distance", "hash"]
OUTCOME = {
    "duplicate": "set aside: duplicate",
    "near-duplicate": "set aside: near-duplicate",
    "label-conflict": "set aside: label-conflict",
    "conflict-reported": "stays: conflict for a person to decide",
    "test-leak": "set aside: test-leak",
}


def write_pairs_csv(pairs: list[Pair], out: Path) -> Path:
    """One row per pair (a = keeper or test image, b = the other file), written atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(PAIR_COLUMNS)
    for p in pairs:
        writer.writerow([p.a, p.b, p.kind, p.distance, p.hash])
    atomic_write_text(out, buf.getvalue())
    return Path(out)


def write_duplicates_report(ws: Workspace, pairs: list[Pair], items_by_path: dict[str, Item], out: Path) -> Path:
    """Write the gallery to `out` atomically and return it.

    `items_by_path` maps a path to an Item whose `.path` is where the file is now; it may be keyed
    by the path named in the pairs or by the file's current path (quarantined files are then
    matched to the pair's path through their home in the quarantine layout).
    """
    find = _Locator(ws, items_by_path)
    groups = _groups(pairs)
    sections = [
        ("Label conflicts", "clusters whose members are filed under different classes", groups["conflict"]),
        ("Near-duplicate clusters", "the keeper (green) and the copies set aside", groups["near"]),
        ("Exact duplicates", "byte-identical copies (sha256)", groups["exact"]),
        ("Test-set leaks", "a test image (first, never moved) and the training images that copy it", groups["leak"]),
    ]
    counts = defaultdict(int)
    for p in pairs:
        counts[p.kind] += 1
    body = [table([{"kind": k, "pairs": n} for k, n in sorted(counts.items())], ["kind", "pairs"]) if pairs
            else "<p>No duplicates, conflicts or leaks found.</p>"]
    for title, blurb, rows in sections:
        if rows:
            body.append(_section(title, blurb, rows, find))
    return write_page(Path(out), "Duplicates, conflicts and leaks", "".join(body))


def _groups(pairs: list[Pair]) -> dict[str, list[tuple[str, list[Pair]]]]:
    """Pairs grouped by their `a` (keeper or test image), sorted into the gallery's sections."""
    by_a: dict[tuple[str, bool], list[Pair]] = defaultdict(list)
    for p in pairs:
        by_a[(p.a, p.kind == "test-leak")].append(p)
    out: dict[str, list] = {"conflict": [], "near": [], "exact": [], "leak": []}
    for (a, leak), members in sorted(by_a.items()):
        kinds = {m.kind for m in members}
        if leak:
            key = "leak"
        elif kinds & {"label-conflict", "conflict-reported"}:
            key = "conflict"
        elif "near-duplicate" in kinds:
            key = "near"
        else:
            key = "exact"
        out[key].append((a, sorted(members, key=lambda m: (m.distance, m.b))))
    return out


def _section(title: str, blurb: str, rows: list[tuple[str, list[Pair]]], find: "_Locator") -> str:
    shown = rows[:MAX_GROUPS_PER_SECTION]
    parts = [f"<h2>{esc(title)} ({len(rows)})</h2><p class='muted'>{esc(blurb)}</p>"]
    for a, members in shown:
        leak = members[0].kind == "test-leak"
        head = find.card(a, ["test image" if leak else "kept"], kept=not leak)
        cards = [find.card(m.b, [f"distance {m.distance} ({m.hash})", OUTCOME.get(m.kind, m.kind)], reason=m.kind)
                 for m in members]
        parts.append(f'<div class="row">{head}{"".join(cards)}</div>')
    if len(rows) > len(shown):
        parts.append(f"<p class='muted'>{len(rows) - len(shown)} more in clean-pairs.csv</p>")
    return "".join(parts)


class _Locator:
    """Finds where a file named in a pair is now, and its class and source."""

    def __init__(self, ws: Workspace, items_by_path: dict[str, Item]):
        self.ws = ws
        self.items = dict(items_by_path)
        for item in items_by_path.values():
            home = self._home(item.path)
            if home and home not in self.items:
                self.items[home] = item

    def _home(self, path: str) -> str | None:
        from datacurate.clean.scan import place

        try:
            found = place(self.ws, self.ws.abs(path))
        except Exception:  # noqa: BLE001 - a path outside the workspace (--against DIR) has no home
            return None
        return found["home"] if found else None

    def _quarantined(self, path: str, reason: str | None) -> str:
        """Where a file not in the items would be if clean set it aside for `reason`."""
        from datacurate.clean.scan import quarantine_path

        if not reason or self.ws.abs(path).exists():
            return path
        try:
            moved = quarantine_path(self.ws, path, reason)
        except (AssertionError, ValueError):
            return path
        return self.ws.rel(moved) if moved.exists() else path

    def card(self, path: str, lines: list[str], *, kept: bool = False, reason: str | None = None) -> str:
        item = self.items.get(path)
        now = item.path if item else self._quarantined(path, reason)
        info = [path]
        if item:
            info.append(f"{item.klass or '-'} · {item.source} · {item.width}x{item.height}")
        if now != path:
            info.append(f"now at {now}")
        return card(self.ws.abs(now), info + lines, kept=kept)
