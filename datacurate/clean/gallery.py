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
from datacurate.core.fsutil import atomic_write_text
from datacurate.report.review import PLAN, Pic, Pictures, environment
from datacurate.core.workspace import Workspace

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


def write_duplicates_report(ws: Workspace, pairs: list[Pair], items_by_path: dict[str, Item], out: Path, *,
                            pics: Pictures | None = None, plan: bool = False) -> Path:
    """Write the gallery to `out` atomically and return it (every group: thumbnails are files, loaded lazily).

    `items_by_path` maps a path to an Item whose `.path` is where the file is now; it may be keyed
    by the path named in the pairs or by the file's current path (quarantined files are then
    matched to the pair's path through their home in the quarantine layout).
    """
    pics = pics or Pictures(ws)
    find = _Locator(ws, items_by_path)
    groups = _groups(pairs)
    sections = []
    for key, title, blurb in SECTIONS:
        rows = []
        for a, members in groups[key]:
            leak = members[0].kind == "test-leak"
            head = find.shown(a, ["test image" if leak else "kept"], kept=not leak)
            rows.append([head] + [find.shown(m.b, [f"distance {m.distance} ({m.hash})", OUTCOME.get(m.kind, m.kind)],
                                             reason=m.kind)
                                  for m in members])
        sections.append({"title": title, "blurb": blurb, "rows": rows})
    pics.want(s["pic"] for sec in sections for row in sec["rows"] for s in row)
    pics.make()
    counts: dict[str, int] = defaultdict(int)
    for p in pairs:
        counts[p.kind] += 1
    html = environment().get_template("clean-duplicates.html.j2").render(
        sections=[s for s in sections if s["rows"]], counts=dict(sorted(counts.items())), pics=pics,
        plan=PLAN if plan else "")
    atomic_write_text(Path(out), html)
    return Path(out)


SECTIONS = [
    ("conflict", "Label conflicts", "clusters whose members are filed under different classes"),
    ("near", "Near-duplicate clusters", "the keeper (green) and the copies set aside"),
    ("exact", "Exact duplicates", "byte-identical copies (sha256)"),
    ("leak", "Test-set leaks", "a test image (first, never moved) and the training images that copy it"),
]


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


class _Locator:
    """Finds where a file named in a pair is now, and its class and source."""

    def __init__(self, ws: Workspace, items_by_path: dict[str, Item]):
        self.ws = ws
        self.items = dict(items_by_path)
        self.homed = False  # the items' homes are added at the first path not found (none when no pair names one)

    def _item(self, path: str) -> Item | None:
        if path not in self.items and not self.homed:
            self.homed = True
            for item in list(self.items.values()):
                home = self._home(item.path)
                if home and home not in self.items:
                    self.items[home] = item
        return self.items.get(path)

    def _home(self, path: str) -> str | None:
        from datacurate.core.index import place

        try:
            found = place(self.ws, self.ws.abs(path))
        except Exception:  # noqa: BLE001 - a path outside the workspace (--against DIR) has no home
            return None
        return found["home"] if found else None

    def _quarantined(self, path: str, reason: str | None) -> str:
        """Where a file not in the items would be if clean set it aside for `reason`."""
        from datacurate.core.index import quarantine_path

        if not reason or self.ws.abs(path).exists():
            return path
        try:
            moved = quarantine_path(self.ws, path, reason)
        except (AssertionError, ValueError):
            return path
        return self.ws.rel(moved) if moved.exists() else path

    def shown(self, path: str, lines: list[str], *, kept: bool = False, reason: str | None = None) -> dict:
        """A picture for the template: {"pic": Pic where it is now, "lines": caption, "kept": bool}."""
        item = self._item(path)
        now = item.path if item else self._quarantined(path, reason)
        info = [path]
        if item:
            info.append(f"{item.klass or '-'} · {item.source} · {item.width}x{item.height}")
        if now != path:
            info.append(f"now at {now}")
        return {"pic": Pic(now, item.sha256 if item else self._sha(now)), "lines": info + lines, "kept": kept}

    def _sha(self, path: str) -> str | None:
        from datacurate.core.index import sha256_file

        where = self.ws.abs(path)
        return sha256_file(str(where)) if where.is_file() else None
