"""The review queue: every decision that needs a person, from the catalog, closest call first.

The cards are the ones the static review pages show (clean's and vet's, built by the same code):
what clean holds in quarantine (near-duplicates, label conflicts, quality flags, size limits; not
files that do not decode, test leaks or same-class byte-identical copies, which no override brings
back: clean.reasons.NO_OVERRIDE), images clean flagged but kept, label conflicts it
only reported (the same picture among two classes' originals), what vet set aside
as off-topic or wrong-class, and the originals vet lists as label issues. A card leaves the queue
when a person decided it: kept (`datacurate keep`, by content), relabelled, restored, or when the
review app holds a standing decision on its content (the reviews table; one decision settles every
card of a content: a file set aside for a quality flag does not come back as clean's card).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datacurate.core.catalog import Catalog
from datacurate.report.review import Card
from datacurate.core.workspace import Workspace

VET = ("off-topic", "wrong-class")
PAIRED = ("duplicate", "near-duplicate", "label-conflict", "test-leak")


@dataclass
class Item:
    """One card of the app, JSON-able."""

    id: str                 # sha256:reason
    stage: str              # clean | vet
    reason: str
    klass: str
    source: str
    path: str               # where the file is now
    sha256: str
    lines: list[str]
    need: float
    status: str             # ok | quarantined
    compared: list[dict] = field(default_factory=list)  # {"path", "sha256", "label"}
    pairable: bool = False  # a copy of another file: "not duplicates" applies


def card_id(sha256: str, reason: str) -> str:
    return f"{sha256}:{reason}"


def items(ws: Workspace, cat: Catalog) -> list[Item]:
    """Every undecided card, closest call first (then reason, path)."""
    from datacurate.core.overrides import load

    said = load(cat)
    status = {r[0]: r[1] for r in cat.db.execute("SELECT path, status FROM files")}
    decided = {r[0] for r in cat.db.execute("SELECT sha256 FROM reviews WHERE undone IS NULL")}
    out: dict[str, Item] = {}
    for stage, card in _cards(ws, cat):
        sha = card.pic.sha256
        reason = _reason(card.reason, card.lines)
        if not sha or card.pic.path not in status or sha in decided or said.keeps(sha, reason):
            continue
        compared = [{"path": p.path, "sha256": p.sha256, "label": p.label} for p in card.compared]
        item = Item(card_id(sha, reason), stage, reason, card.klass, card.pic.label,
                    card.pic.path, sha, card.lines, card.need, status[card.pic.path], compared,
                    pairable=reason in PAIRED and any(c["sha256"] != sha for c in compared))  # identical bytes: one picture
        out.setdefault(item.id, item)
    return sorted(out.values(), key=lambda i: (i.need, i.reason, i.path))


def _reason(reason: str, lines: list[str]) -> str:
    """The card's reason as keep and the reviews table know it (clean's kept-with-flags cards: 'quality')."""
    from datacurate.clean.report import KEPT_FLAGGED

    return "quality" if reason == KEPT_FLAGGED else reason


def _cards(ws: Workspace, cat: Catalog) -> list[tuple[str, Card]]:
    from datacurate.clean.reasons import NO_OVERRIDE
    from datacurate.clean.report import KEPT_FLAGGED, card, catalog_view
    from datacurate.report.review import Pic
    from datacurate.vet.report import catalog_cards

    view = catalog_view(ws, cat, None)
    info = {r[0]: (r[1], r[2]) for r in cat.db.execute("SELECT path, source, class FROM files")}
    out = [("clean", card(e)) for e in view.entries if e.reason not in NO_OVERRIDE]
    for pic, flags, klass in view.kept_flagged:
        out.append(("clean", Card(Pic(pic.path, pic.sha256, info.get(pic.path, ("", ""))[0]), klass, KEPT_FLAGGED,
                                  [pic.path, f"quality flags: {flags}", "kept by clean"], 3.0)))
    for a, b, bits in view.conflicts:  # the same picture in two classes, both originals: clean kept both
        (source, klass), other = info.get(b.path, ("", "")), info.get(a.path, ("", ""))[1]
        out.append(("clean", Card(Pic(b.path, b.sha256, source), klass, "label-conflict",
                                  [b.path, f"the same picture as {a.path} (class {other}), {bits} bits apart; "
                                           "clean kept both: relabel one, set it aside, or keep both"], 0.5,
                                  [Pic(a.path, a.sha256, f"in class {other}: {a.path}")])))
    out += [("vet", c) for c in catalog_cards(cat)[0]]
    return out


def page(all_items: list[Item], *, stage: str = "", reason: str = "", klass: str = "", offset: int = 0,
         limit: int = 100) -> dict:
    """One page of the filtered queue, with the filters' choices and counts."""
    chosen = [i for i in all_items if (not stage or i.stage == stage) and (not reason or i.reason == reason)
              and (not klass or i.klass == klass)]
    return {"total": len(chosen), "offset": offset, "cards": [vars(i) for i in chosen[offset:offset + limit]],
            "stages": sorted({i.stage for i in all_items}), "reasons": sorted({i.reason for i in all_items}),
            "classes": sorted({i.klass for i in all_items})}
