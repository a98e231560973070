"""`datacurate restore`: put the user's folders back as they were before clean.

Quarantined files move back to where they came from (under the name the user gave them, when
clean renamed or shortened it). Renames clean made to kept files are undone. When a converted
GIF (or other converted file) comes back, the PNG clean made from it goes away: deleted when
it is still byte for byte what clean wrote (it is clean's own output and can be made again
from the file now restored), moved to quarantine/derived/ when someone changed it since.
A file a person relabelled (`datacurate relabel`), named by its path, goes back where the relabel
took it from: its old class folder, or the quarantine it was in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

from datacurate.clean.locate import check_present, follow_pairs, locate
from datacurate.clean.reasons import DERIVED, RENAMED
from datacurate.clean.relabel import last_relabel, undo_relabel
from datacurate.core.catalog import Catalog, open_catalog
from datacurate.core.index import index_files, quarantine_dir, sha256_file
from datacurate.core.errors import UserError
from datacurate.core.fsutil import free_path
from datacurate.core.quarantine import moved_together
from datacurate.core.workspace import Workspace

RELABELLED = "relabel"  # a file a person relabelled, put back in its old place (asked for by name)


@dataclass
class RestoreResult:
    dry_run: bool
    moves: list[tuple[str, str, str]] = field(default_factory=list)  # (from, to, reason)
    removed: list[str] = field(default_factory=list)                 # PNGs clean had made, now gone

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, _, reason in self.moves:
            out[reason] = out.get(reason, 0) + 1
        return dict(sorted(out.items()))


def restore(ws: Workspace, reasons: tuple[str, ...] = (), *, paths: Sequence[str | os.PathLike] = (),
            dry_run: bool = False) -> RestoreResult:
    """Move quarantined files back and undo renames: every file (of the given reasons, default all but
    `derived`), or only the files named in `paths` (in quarantine, or by the path they had)."""
    result = RestoreResult(dry_run)
    with open_catalog(ws) as cat:
        if paths:
            rows = [locate(ws, cat, p) for p in paths]
            relabelled = {r["path"]: last_relabel(cat, r["path"]) for r in rows if r["status"] != "quarantined"}
            for raw, row in zip(paths, rows):
                if row["status"] != "quarantined" and relabelled[row["path"]] is None:
                    raise UserError(f"{raw} is not in quarantine (it is at {row['path']}); nothing to restore")
                check_present(ws, raw, row)
            for row in {r["path"]: r for r in rows}.values():
                event = relabelled.get(row["path"])
                if event is None:
                    restore_row(ws, cat, row, result)
                elif dry_run:
                    result.moves.append((row["path"], event["src"], RELABELLED))
                else:
                    result.moves.append((row["path"], undo_relabel(ws, cat, row, event), RELABELLED))
            return result
        rows = index_files(ws, cat, ("quarantine",))
        for row in rows:
            if (row["reason"] not in reasons) if reasons else row["reason"] == DERIVED:
                continue
            restore_row(ws, cat, row, result)
        if not reasons or RENAMED in reasons:
            _undo_renames(ws, cat, result)
    return result


def restore_row(ws: Workspace, cat: Catalog, row, result: RestoreResult) -> str:
    """Move one quarantined file back where it came from (a dry run only notes it); return where it goes."""
    dst = free_path(ws.abs(row["origin"] or row["home"]))
    result.moves.append((row["path"], ws.rel(dst), row["reason"]))
    if result.dry_run:
        return ws.rel(dst)
    if row["reason"] == "converted":
        _drop_derived(ws, cat, row, result)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with moved_together(cat, ws.abs(row["path"]), dst):
        cat.db.execute("DELETE FROM files WHERE path=?", (ws.rel(dst),))
        cat.update_file(row["path"], path=ws.rel(dst), home=ws.rel(dst), status="ok", reason=None, origin=None)
        follow_pairs(cat, row["path"], ws.rel(dst))
        cat.log("restore", row["path"], ws.rel(dst), row["reason"])
    return ws.rel(dst)


def _undo_renames(ws: Workspace, cat: Catalog, result: RestoreResult) -> None:
    for row in cat.files("status='ok' AND origin IS NOT NULL"):
        src = ws.abs(row["path"])
        if not src.exists():
            continue
        dst = free_path(ws.abs(row["origin"]))
        result.moves.append((row["path"], ws.rel(dst), RENAMED))
        if result.dry_run:
            continue
        with moved_together(cat, src, dst):
            cat.db.execute("DELETE FROM files WHERE path=?", (ws.rel(dst),))
            cat.update_file(row["path"], path=ws.rel(dst), home=ws.rel(dst), origin=None)
            cat.log("restore", row["path"], ws.rel(dst), RENAMED)


def _drop_derived(ws: Workspace, cat: Catalog, source_row, result: RestoreResult) -> None:
    """The PNGs clean made from `source_row`'s file: deleted when unchanged, else set aside as derived."""
    for row in cat.files("made_from=?", (source_row["sha256"],)):
        path = ws.abs(row["path"])
        if not path.exists():
            continue
        if sha256_file(str(path)) == row["sha256"]:
            path.unlink()
            with cat.transaction():
                cat.delete_files([row["path"]])
                cat.log("remove-derived", row["path"], None, DERIVED, f"made by clean from {source_row['home']}; unchanged")
            result.removed.append(row["path"])
        elif row["status"] == "ok":
            dst = free_path(quarantine_dir(ws, cat, row["home"], DERIVED))
            with moved_together(cat, path, dst):
                cat.update_file(row["path"], path=ws.rel(dst), status="quarantined", reason=DERIVED)
                cat.log("quarantine", row["path"], ws.rel(dst), DERIVED, "changed since clean made it")
