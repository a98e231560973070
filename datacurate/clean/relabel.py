"""`datacurate relabel PATH... CLASS`: a person moves pictures to the class folder they belong in.

The file moves to <its source folder>/<CLASS>/ (from its class folder, or out of quarantine when
clean or vet had set it aside), its catalog row takes the new class, the events table logs a
`relabel` and the overrides table remembers the label by content: later clean and vet runs keep it
against off-topic, wrong-class and label-conflict (the person's label wins), and split files it
under CLASS because that is its folder now. `datacurate restore PATH` (and the review app's undo)
puts it back where it was, in its old class folder or in quarantine.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from datacurate.clean.locate import check_no_leak, check_present, follow_pairs, locate
from datacurate.clean.reasons import UNKEEPABLE
from datacurate.core import overrides
from datacurate.core.catalog import Catalog, open_catalog
from datacurate.core.errors import UserError
from datacurate.core.fsutil import free_path, text_path
from datacurate.core.quarantine import moved_together
from datacurate.core.workspace import Workspace

RELABEL = "relabel"  # the events' action, and the reason restore reports when it undoes one


@dataclass
class RelabelResult:
    """What relabel did (or, with dry_run, would do): (from, to, old class) per file."""

    dry_run: bool
    klass: str
    moves: list[tuple[str, str, str]] = field(default_factory=list)
    new_class: bool = False  # CLASS had no folder before

    def summary(self) -> dict:
        return {"dry_run": self.dry_run, "class": self.klass, "new_class": self.new_class,
                "relabelled": [{"from": a, "to": b, "was": c} for a, b, c in self.moves]}


def classes(ws: Workspace, cat: Catalog) -> list[str]:
    """The workspace's classes: folders under original and scraped, and classes the catalog holds in place."""
    from datacurate.core.fsutil import path_text

    found = {r[0] for r in cat.db.execute("SELECT DISTINCT class FROM files WHERE status='ok' AND class != '' "
                                          "AND source IN ('original','scraped')")}
    for source in ("original", "scraped"):
        folder = ws.path(source)
        if folder.is_dir():
            found.update(path_text(p.name) for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    return sorted(found)


def check_class(ws: Workspace, cat: Catalog, klass: str, new_class: bool) -> bool:
    """UserError unless `klass` is a usable class name (an existing one, or any with new_class); True when new."""
    name = str(klass).strip()
    if not name or name != klass or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise UserError(f"{klass!r} is not a class name (a folder name: no slashes, not empty)")
    known = classes(ws, cat)
    if klass in known:
        return False
    if not new_class:
        shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
        raise UserError(f"class {klass!r} does not exist (classes: {shown or 'none'}); add --new-class to make it")
    return True


def relabel(ws: Workspace, paths: Sequence[str | os.PathLike], klass: str, *, new_class: bool = False,
            dry_run: bool = False) -> RelabelResult:
    """Move the files at `paths` to class `klass` (see the module docstring); remembered by content."""
    if not paths:
        raise UserError("name the files to relabel, then the class")
    with open_catalog(ws) as cat:
        result = RelabelResult(dry_run, klass, new_class=check_class(ws, cat, klass, new_class))
        rows = [locate(ws, cat, p) for p in paths]
        for raw, row in zip(paths, rows):
            check_present(ws, raw, row)
            check_no_leak(raw, row)  # no override exempts a test leak
            why = row["reason"] if row["reason"] in UNKEEPABLE else row["problem"]
            if why in UNKEEPABLE or not row["sha256"]:
                raise UserError(f"{raw} cannot be relabelled: it is {why or 'unreadable'} (training could not read it)")
            if row["status"] == "ok" and row["class"] == klass:
                raise UserError(f"{raw} is already in class {klass!r}")
            if row["status"] == "ok" and not row["class"]:
                raise UserError(f"{raw} lies in no class folder")
        for row in {r["path"]: r for r in rows}.values():
            relabel_row(ws, cat, row, klass, result)
    return result


def relabel_row(ws: Workspace, cat: Catalog, row, klass: str, result: RelabelResult) -> str:
    """Move one file into class `klass` of its source folder (a dry run only notes it); return where it goes."""
    name = Path(text_path(row["origin"] or row["home"])).name
    dst = free_path(ws.path(row["source"]) / text_path(klass) / name)
    new = ws.rel(dst)
    result.moves.append((row["path"], new, row["class"]))
    if result.dry_run:
        return new
    dst.parent.mkdir(parents=True, exist_ok=True)
    was = {"class": row["class"], "to_class": klass, "status": row["status"], "reason": row["reason"],
           "origin": row["origin"], "home": row["home"], "detail": row["detail"]}
    with moved_together(cat, ws.abs(row["path"]), dst):
        cat.db.execute("DELETE FROM files WHERE path=?", (new,))
        cat.update_file(row["path"], path=new, home=new, **{"class": klass}, status="ok", reason=None, origin=None)
        follow_pairs(cat, row["path"], new)
        overrides.add_label(cat, row["sha256"], klass, new)
        cat.log(RELABEL, row["path"], new, row["class"], was)
    return new


def last_relabel(cat: Catalog, path: str):
    """The latest relabel event that left a file at `path` (None when its last move was not a relabel)."""
    last = cat.db.execute("SELECT * FROM events WHERE dst=? ORDER BY id DESC LIMIT 1", (path,)).fetchone()
    return last if last is not None and last["action"] == RELABEL else None


def undo_relabel(ws: Workspace, cat: Catalog, row, event) -> str:
    """Put a relabelled file back where the relabel took it from (its old class folder, or quarantine)."""
    was = json.loads(event["detail"] or "{}")
    dst = move_back(ws, cat, row["path"], event["src"], origin=was.get("origin"), detail=was.get("detail"))
    with cat.transaction():
        overrides.drop_label(cat, row["sha256"])
        cat.log("restore", row["path"], dst, RELABEL, f"back to class {was.get('class')!r}")
    return dst


def move_back(ws: Workspace, cat: Catalog, now: str, to: str, *, origin: str | None = None,
              detail: str | None = None) -> str:
    """Move the file at `now` to the workspace path `to` (a class folder or a quarantine folder) and give its
    catalog row what that place says (home, class, status, reason); return where it went."""
    from datacurate.core.index import place

    dst = free_path(ws.abs(to))
    info = place(ws, str(dst))
    if info is None:
        raise UserError(f"{to} is not in the workspace's data folders any more; nothing moved")
    dst.parent.mkdir(parents=True, exist_ok=True)
    new = ws.rel(dst)
    values = {k: info[k] for k in ("home", "class", "source", "status", "reason")}
    with moved_together(cat, ws.abs(now), dst):
        cat.db.execute("DELETE FROM files WHERE path=?", (new,))
        cat.update_file(now, path=new, origin=origin if info["status"] == "quarantined" else None, **values,
                        **({"detail": detail} if detail else {}))
        follow_pairs(cat, now, new)
    return new
