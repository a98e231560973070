"""What the review app's keys do, through the same code as the commands, and their undo.

keep      clean.keep.keep (as `datacurate keep PATH`): back from quarantine, kept by content
aside     confirm the set-aside: nothing moves when the file is in quarantine; a file in place (an
          original vet lists, an image clean flagged but kept) moves there with clean's quarantine
          move, under the card's reason (its first quality flag for clean's kept-with-flags cards)
relabel   clean.relabel.relabel (as `datacurate relabel PATH CLASS`)
apart     clean.keep.keep(..., not_duplicates=True) with the file it was judged a copy of

Each takes the workspace lock only while it writes and is stored at once (the reviews table, one
row per card, a batch per request); undo reverses the latest batch still standing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Sequence

from datacurate.core.catalog import Catalog, open_catalog
from datacurate.core.errors import UserError
from datacurate.core.workspace import Workspace

ACTIONS = ("keep", "aside", "relabel", "apart")
WAIT = 5.0  # seconds an action waits for another command's workspace lock


class Stale(UserError):
    """The page shows a file that has moved since it was loaded."""


class BadRequest(UserError):
    """The request itself is wrong (an unknown action, no class to relabel to, a class that does not exist)."""


@dataclass
class Target:
    """A card the person acted on: its content, reason, and the path the page showed."""

    sha256: str
    reason: str
    path: str
    other: str | None = None   # apart: the file it was judged a copy of (its path on the page)


def act(ws: Workspace, action: str, targets: Sequence[Target], *, klass: str | None = None,
        new_class: bool = False) -> list[dict]:
    """Carry out `action` on every target (one batch); [{"id", "path": where the file is now}]."""
    from datacurate.core.lock import workspace_lock

    if action not in ACTIONS:
        raise BadRequest(f"unknown action {action!r}: choose among {', '.join(ACTIONS)}")
    if action == "relabel" and not klass:
        raise BadRequest("relabel needs a class")
    if not targets:
        raise BadRequest("no card chosen")
    done = []
    with workspace_lock(ws, "review", wait=WAIT):
        with open_catalog(ws) as cat:
            rows = [current(ws, cat, t) for t in targets]
            if action == "relabel":
                from datacurate.clean.relabel import check_class

                try:
                    check_class(ws, cat, klass, new_class)
                except UserError as exc:
                    raise BadRequest(str(exc)) from None
            batch = _next_batch(cat)
        for t, row in zip(targets, rows):
            dst, detail = DO[action](ws, t, row, klass=klass, new_class=new_class)
            with open_catalog(ws) as cat, cat.transaction():
                cat.db.execute("INSERT INTO reviews (batch, time, action, sha256, reason, src, dst, detail) "
                               "VALUES (?,?,?,?,?,?,?,?)", (batch, time.time(), action, t.sha256, t.reason,
                                                            row["path"], dst, json.dumps(detail, ensure_ascii=False)))
            done.append({"id": f"{t.sha256}:{t.reason}", "path": dst})
    return done


def current(ws: Workspace, cat: Catalog, t: Target):
    """The catalog row of the file the page showed; Stale when it moved or changed since."""
    row = cat.file(t.path)
    if row is not None and row["sha256"] == t.sha256 and ws.abs(t.path).is_file():
        return row
    now = cat.db.execute("SELECT path FROM files WHERE sha256=? ORDER BY status='ok' DESC, path LIMIT 1",
                         (t.sha256,)).fetchone()
    where = f"it is now at {now[0]}" if now and ws.abs(now[0]).is_file() else "it is no longer in the workspace"
    raise Stale(f"{t.path} has moved since this page was loaded ({where}); reload the page")


def _next_batch(cat: Catalog) -> int:
    return int(cat.db.execute("SELECT COALESCE(MAX(batch), 0) + 1 FROM reviews").fetchone()[0])


def _keep(ws: Workspace, t: Target, row, **_) -> tuple[str, dict]:
    from datacurate.clean.keep import keep

    result = keep(ws, [_abs(ws, row["path"])])
    dst = result.restored.moves[0][1] if result.restored.moves else row["path"]
    return dst, {"restored": bool(result.restored.moves), "origin": row["origin"], "detail": row["detail"]}


def _aside(ws: Workspace, t: Target, row, **_) -> tuple[str, dict]:
    from datacurate.clean.model import Decision
    from datacurate.clean.run import _quarantine

    if row["status"] == "quarantined":
        return row["path"], {"moved": False}
    reason = t.reason if t.reason in _reasons() else (row["flags"] or "").split(",")[0]
    if reason not in _reasons():
        raise UserError(f"{t.path}: no reason to set it aside under (its card's reason is {t.reason!r})")
    with open_catalog(ws) as cat:
        dst = _quarantine(ws, cat, Decision(row["path"], reason, detail="set aside by a person (review)"))
    return dst, {"moved": True}


def _reasons() -> tuple[str, ...]:
    from datacurate.clean.reasons import SET_ASIDE

    return SET_ASIDE


def _relabel(ws: Workspace, t: Target, row, *, klass: str, new_class: bool) -> tuple[str, dict]:
    from datacurate.clean.relabel import relabel

    result = relabel(ws, [_abs(ws, row["path"])], klass, new_class=new_class)
    return result.moves[0][1], {"class": row["class"], "to_class": klass}


def _apart(ws: Workspace, t: Target, row, **_) -> tuple[str, dict]:
    from datacurate.clean.keep import keep

    if not t.other:
        raise UserError(f"{t.path} was not judged a copy of another file; 'not duplicates' needs a pair")
    with open_catalog(ws) as cat:
        other = cat.file(t.other)
    if other is None or not ws.abs(t.other).is_file():
        raise Stale(f"{t.other} has moved since this page was loaded; reload the page")
    result = keep(ws, [_abs(ws, row["path"]), _abs(ws, t.other)], not_duplicates=True)
    moved = {a: b for a, b, _ in result.restored.moves}
    return moved.get(row["path"], row["path"]), {"pair": [row["sha256"], other["sha256"]],
                                                  "moves": result.restored.moves}


def _abs(ws: Workspace, path: str) -> str:
    """A catalog path as the commands' functions take it whatever the server's current folder is."""
    return str(ws.abs(path))


DO = {"keep": _keep, "aside": _aside, "relabel": _relabel, "apart": _apart}


# -- undo -----------------------------------------------------------------------------------------
def undo(ws: Workspace) -> list[dict]:
    """Reverse the latest batch still standing; [{"id", "path": where the file is now}]. UserError when none."""
    from datacurate.core.lock import workspace_lock

    with workspace_lock(ws, "review", wait=WAIT):
        with open_catalog(ws) as cat:
            last = cat.db.execute("SELECT MAX(batch) FROM reviews WHERE undone IS NULL").fetchone()[0]
            if last is None:
                raise UserError("nothing to undo: no decision of the review app stands")
            rows = cat.db.execute("SELECT * FROM reviews WHERE batch=? AND undone IS NULL ORDER BY id DESC",
                                  (last,)).fetchall()
            for r in rows:
                if not ws.abs(r["dst"]).is_file():
                    raise Stale(f"cannot undo: {r['dst']} has moved since it was decided; nothing undone")
        out = []
        for r in rows:
            path = UNDO[r["action"]](ws, r, json.loads(r["detail"] or "{}"))
            with open_catalog(ws) as cat, cat.transaction():
                cat.db.execute("UPDATE reviews SET undone=? WHERE id=?", (time.time(), r["id"]))
                cat.log("undo", r["dst"], path, r["action"], "undone in review")
            out.append({"id": f"{r['sha256']}:{r['reason']}", "path": path})
    return out


def _undo_keep(ws: Workspace, r, detail: dict) -> str:
    from datacurate.clean.relabel import move_back

    with open_catalog(ws) as cat:
        with cat.transaction():
            cat.db.execute("DELETE FROM overrides WHERE kind='keep' AND a=? AND reason='*'", (r["sha256"],))
        if not detail.get("restored"):
            return r["dst"]
        path = move_back(ws, cat, r["dst"], r["src"], origin=detail.get("origin"), detail=detail.get("detail"))
        with cat.transaction():
            cat.log("quarantine", r["dst"], path, r["reason"], "a keep undone in review")
    return path


def _undo_aside(ws: Workspace, r, detail: dict) -> str:
    from datacurate.clean.restore import RestoreResult, restore_row

    if not detail.get("moved"):
        return r["dst"]
    with open_catalog(ws) as cat:
        return restore_row(ws, cat, cat.file(r["dst"]), RestoreResult(False))


def _undo_relabel(ws: Workspace, r, detail: dict) -> str:
    from datacurate.clean.restore import restore

    result = restore(ws, paths=[_abs(ws, r["dst"])])
    return result.moves[0][1]


def _undo_apart(ws: Workspace, r, detail: dict) -> str:
    from datacurate.clean.relabel import move_back

    a, b = sorted(detail.get("pair", ["", ""]))
    path = r["dst"]
    with open_catalog(ws) as cat:
        with cat.transaction():
            cat.db.execute("DELETE FROM overrides WHERE kind='apart' AND a=? AND b=?", (a, b))
        for src, dst, reason in detail.get("moves", []):
            if cat.file(dst) is not None and ws.abs(dst).is_file():
                back = move_back(ws, cat, dst, src)
                with cat.transaction():
                    cat.log("quarantine", dst, back, reason, "a 'not duplicates' undone in review")
                path = back if dst == r["dst"] else path
    return path


UNDO = {"keep": _undo_keep, "aside": _undo_aside, "relabel": _undo_relabel, "apart": _undo_apart}
