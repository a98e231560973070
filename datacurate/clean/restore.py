"""`datacurate restore`: move quarantined files back where they came from."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from datacurate.catalog import open_catalog
from datacurate.clean.scan import index_files
from datacurate.fsutil import deferred_signals, free_path
from datacurate.workspace import Workspace


@dataclass
class RestoreResult:
    dry_run: bool
    moves: list[tuple[str, str, str]] = field(default_factory=list)  # (from, to, reason)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, _, reason in self.moves:
            out[reason] = out.get(reason, 0) + 1
        return dict(sorted(out.items()))


def restore(ws: Workspace, reasons: tuple[str, ...] = (), *, dry_run: bool = False) -> RestoreResult:
    """Move every quarantined file (of the given reasons, default all) back to its home."""
    result = RestoreResult(dry_run)
    with open_catalog(ws) as cat:
        rows = index_files(ws, cat, ("quarantine",))
        for row in rows:
            if reasons and row["reason"] not in reasons:
                continue
            dst = free_path(ws.abs(row["home"]))
            result.moves.append((row["path"], ws.rel(dst), row["reason"]))
            if dry_run:
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            with deferred_signals():
                os.replace(ws.abs(row["path"]), dst)
                with cat.transaction():
                    cat.db.execute("DELETE FROM files WHERE path=?", (ws.rel(dst),))
                    cat.update_file(row["path"], path=ws.rel(dst), home=ws.rel(dst), status="ok", reason=None)
                    cat.log("restore", row["path"], ws.rel(dst), row["reason"])
    return result
