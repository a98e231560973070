"""`datacurate keep` and `datacurate reason`: a person overrules clean and vet, and asks them why.

keep PATH...                 restore PATH from quarantine if it is there, and remember (by content
                             hash) that no clean or vet sets this content aside again: for every
                             reason, or for the `reasons` named.
keep A B --not-duplicates    remember that these contents are not duplicates (the exact, near-duplicate
                             and leak searches never pair them); whichever was set aside as a copy of
                             the other comes back.
reason PATH                  why a file was set aside (stage, reason, score, when) and what it was
                             compared with.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Sequence

from datacurate.clean.locate import NO_LEAK_OVERRIDE, check_no_leak, check_present, gone, locate
from datacurate.clean.reasons import UNKEEPABLE
from datacurate.clean.restore import RestoreResult, restore_row
from datacurate.core import overrides
from datacurate.core.catalog import Catalog, open_catalog
from datacurate.core.errors import UserError
from datacurate.core.fsutil import shown
from datacurate.core.workspace import Workspace

VET_REASONS = ("off-topic", "wrong-class")
COPY_REASONS = ("duplicate", "near-duplicate", "label-conflict", "test-leak")


@dataclass
class KeepResult:
    """What keep did (or, with dry_run, would do)."""

    dry_run: bool
    kept: list[str] = field(default_factory=list)                       # paths whose content is now kept
    apart: list[tuple[str, str]] = field(default_factory=list)          # pairs said not to be duplicates
    restored: RestoreResult = field(default_factory=lambda: RestoreResult(False))

    def summary(self) -> dict:
        return {"dry_run": self.dry_run, "kept": self.kept, "not_duplicates": [list(p) for p in self.apart],
                "restored": [{"from": a, "to": b, "reason": r} for a, b, r in self.restored.moves]}


def keep(ws: Workspace, paths: Sequence[str | os.PathLike], *, reasons: Sequence[str] = (),
         not_duplicates: bool = False, dry_run: bool = False) -> KeepResult:
    """Overrule clean and vet for the files at `paths` (see the module docstring); remembered by content."""
    if not paths:
        raise UserError("name the files to keep")
    if not_duplicates and len(paths) < 2:
        raise UserError("--not-duplicates needs two or more files: the ones that are not copies of each other")
    if "test-leak" in reasons:
        raise UserError(f"--reason test-leak: {NO_LEAK_OVERRIDE}")
    result = KeepResult(dry_run, restored=RestoreResult(dry_run))
    with open_catalog(ws) as cat:
        rows = [locate(ws, cat, p) for p in paths]
        for raw, row in zip(paths, rows):
            _check_keepable(ws, raw, row)
        unique = list({r["path"]: r for r in rows}.values())
        if not_duplicates:
            _check_apart(unique)
            _not_duplicates(ws, cat, unique, result)
        else:
            for row in unique:
                _keep_one(ws, cat, row, tuple(reasons), result)
    return result


READ_WAIT = 5.0  # seconds `reason` waits for a writer holding the catalog


def _check_keepable(ws: Workspace, raw, row) -> None:
    """One clear UserError for a file keep has nothing to do with, or must not bring back."""
    check_present(ws, raw, row)
    why = row["reason"] if row["reason"] in UNKEEPABLE else row["problem"]
    if why in UNKEEPABLE or not row["sha256"]:
        raise UserError(f"{raw} cannot be kept: it is {why or 'unreadable'} (training could not read it); "
                        f"`datacurate restore {raw}` brings it back to look at")
    found = ws.source_of(ws.abs(row["origin"] or row["home"] or row["path"]))
    if found and found[0] == "test":
        raise UserError(f"{raw} is a test image: test images are never set aside, so there is nothing to keep "
                        f"(and {NO_LEAK_OVERRIDE})")
    check_no_leak(raw, row)
    if row["status"] == "quarantined" and row["reason"] == "duplicate":
        raise UserError(f"{raw} has the same bytes as a file clean kept in its class: identical bytes are one "
                        f"picture, and one copy per class stays (`datacurate reason {raw}` names it)")


def _check_apart(rows) -> None:
    """--not-duplicates needs two different files, and files with identical bytes are one picture."""
    if len(rows) < 2:
        raise UserError("--not-duplicates needs two or more different files: the ones that are not copies of each other")
    seen: dict[str, str] = {}
    for row in rows:
        if row["sha256"] in seen:
            raise UserError(f"--not-duplicates: {shown(seen[row['sha256']])} and {shown(row['path'])} have identical bytes: "
                            f"they are one picture, and one copy per class stays")
        seen[row["sha256"]] = row["path"]


def _keep_one(ws: Workspace, cat: Catalog, row, reasons: tuple[str, ...], result: KeepResult) -> None:
    result.kept.append(row["path"])
    wanted = row["status"] == "quarantined" and (not reasons or row["reason"] in reasons)
    # first the move (it can fail), then the override: never an override for a file left behind
    now = restore_row(ws, cat, row, result.restored) if wanted else row["path"]
    if result.dry_run:
        return
    with cat.transaction():
        overrides.add_keep(cat, row["sha256"], reasons, row["origin"] or row["home"])
        cat.log("keep", now, None, ",".join(reasons) or overrides.EVERY, "a person said keep")  # where it is now


def _not_duplicates(ws: Workspace, cat: Catalog, rows, result: KeepResult) -> None:
    shas = {r["sha256"] for r in rows}
    names = {r["path"] for r in rows} | {r["home"] for r in rows}
    for a, b in combinations(rows, 2):
        result.apart.append((a["path"], b["path"]))
    if not result.dry_run:
        with cat.transaction():
            for a, b in combinations(rows, 2):
                overrides.add_apart(cat, a["sha256"], b["sha256"], a["home"], b["home"])
                cat.log("not-duplicates", a["path"], b["path"], None, "a person said these are not duplicates")
            for a, b in combinations(names, 2):
                cat.db.execute("DELETE FROM pairs WHERE (a=? AND b=?) OR (a=? AND b=?)", (a, b, b, a))
    for row in rows:
        if row["status"] != "quarantined" or row["reason"] not in COPY_REASONS:
            continue
        of = _copy_of(cat, row)
        if of is None or of in shas:
            restore_row(ws, cat, row, result.restored)


def _copy_of(cat: Catalog, row) -> str | None:
    """The content a quarantined copy was judged a copy of (from the pairs clean stored), if known."""
    found = cat.db.execute("SELECT a FROM pairs WHERE b=? ORDER BY distance LIMIT 1", (row["path"],)).fetchone()
    if not found:
        return None
    keeper = cat.db.execute("SELECT sha256 FROM files WHERE path=? OR home=? LIMIT 1", (found[0], found[0])).fetchone()
    return keeper[0] if keeper else None


# -- reason ---------------------------------------------------------------------------------------
@dataclass
class Reason:
    """Why a file is where it is: what `datacurate reason PATH` prints."""

    path: str                      # where it is now
    home: str                      # where it belongs
    status: str                    # ok | quarantined | missing (set aside, then deleted by hand)
    stage: str | None = None       # clean | vet (None: not set aside)
    reason: str | None = None
    detail: str | None = None
    when: float | None = None      # when it was set aside (Unix time)
    distance: float | None = None  # clean: bits to the file it copies; vet: cosine distance to its class
    threshold: float | None = None
    looks_like: str | None = None
    compared_with: list[dict] = field(default_factory=list)  # {"path", "kind", "distance"}
    kept_by_you: list[str] = field(default_factory=list)     # reasons a person said keep against ('*': all)
    not_duplicates_of: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The fields, paths as people read them (undecodable bytes as \\xNN, as everywhere else)."""
        out = asdict(self)
        for key in ("path", "home"):
            out[key] = shown(out[key])
        out["not_duplicates_of"] = [shown(p) for p in out["not_duplicates_of"]]
        out["compared_with"] = [{**c, "path": shown(c["path"])} for c in out["compared_with"]]
        return out

    def lines(self) -> list[str]:
        import time

        if self.status == "missing":
            head = (f"{self.home}: set aside by {self.stage} as {self.reason} to {self.path}, but that file is no longer "
                    f"there (deleted by hand?)")
        elif self.status == "quarantined":
            head = f"{self.home}: set aside by {self.stage} as {self.reason}, now at {self.path}"
        else:
            head = f"{self.path}: in place (not set aside)"
        out = [head]
        if self.when:
            out.append(f"  when: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.when))}")
        if self.detail:
            out.append(f"  why: {self.detail}")
        if self.distance is not None:
            unit = "bits" if self.stage == "clean" else "cosine distance"
            out.append(f"  score: {unit} {self.distance:g}" + (f" (threshold {self.threshold:g})" if self.threshold is not None else ""))
        if self.looks_like:
            out.append(f"  looks like: {self.looks_like}")
        out += [f"  compared with: {c['path']}  [{c['kind']}" + (f", distance {c['distance']:g}" if c.get('distance') is not None else "") + "]"
                for c in self.compared_with]
        if self.kept_by_you:
            out.append("  kept by you against: " + ", ".join("every reason" if r == overrides.EVERY else r for r in self.kept_by_you))
        out += [f"  not a duplicate of (you said): {p}" for p in self.not_duplicates_of]
        return out


def reason(ws: Workspace, path: str | os.PathLike) -> Reason:
    """Why the file at `path` was set aside (or that it was not), and what it was compared with.

    Read only: it writes nothing to the catalog, so it needs no workspace lock and waits little on a writer.
    """
    with open_catalog(ws, timeout=READ_WAIT) as cat:
        row = locate(ws, cat, path, index=False)
        if isinstance(row, str):  # in a data folder, seen by no command yet: in place
            return Reason(row, row, "ok")
        out = Reason(row["path"], row["origin"] or row["home"], row["status"])
        if row["status"] == "quarantined":
            out.reason, out.detail = row["reason"], row["detail"]
            out.stage = "vet" if row["reason"] in VET_REASONS else "clean"
            event = cat.db.execute("SELECT time, detail FROM events WHERE action='quarantine' AND dst=? ORDER BY id DESC "
                                   "LIMIT 1", (row["path"],)).fetchone()
            out.when = event["time"] if event else None
            if gone(ws, row):
                out.status = "missing"
        _compared(cat, row, out)
        said = overrides.load(cat)
        out.kept_by_you = sorted(said.kept.get(row["sha256"], ()))
        for pair in said.pairs:
            if row["sha256"] in pair:
                other = next(iter(pair - {row["sha256"]}), row["sha256"])
                found = cat.db.execute("SELECT path FROM files WHERE sha256=? ORDER BY path LIMIT 1", (other,)).fetchone()
                out.not_duplicates_of.append(found[0] if found else other)
    return out


def _compared(cat: Catalog, row, out: Reason) -> None:
    """Clean's pairs naming the file, and vet's nearest originals."""
    names = (row["path"], row["home"])
    for p in cat.db.execute("SELECT a, b, kind, distance FROM pairs WHERE b IN (?,?) OR a IN (?,?) ORDER BY distance",
                            (*names, *names)):
        other = p["a"] if p["b"] in names else p["b"]
        now = cat.db.execute("SELECT path FROM files WHERE path=? OR home=? LIMIT 1", (other, other)).fetchone()
        role = "the copy kept" if p["b"] in names and p["kind"] != "test-leak" else (
            "test image" if p["kind"] == "test-leak" and p["b"] in names else "its copy")
        out.compared_with.append({"path": now[0] if now else other, "kind": f"{p['kind']}: {role}",
                                  "distance": p["distance"]})
        if out.stage == "clean" and p["b"] in names and out.distance is None:
            out.distance = p["distance"]
    score = cat.db.execute("SELECT * FROM vet_scores WHERE sha256=?", (row["sha256"],)).fetchone()
    if score is None:
        return
    if out.stage == "vet":
        out.distance, out.threshold, out.looks_like = score["distance"], score["threshold"], score["looks_like"]
    elif out.stage is None and score["detail"]:
        out.detail = f"vet {score['detail']}"  # kept: its score, the threshold and how that was set
    near = json.loads(score["neighbours"] or "{}")
    for kind, label in (("own", f"nearest {score['class']} originals"), ("other", f"nearest {score['looks_like']} originals")):
        for path, _sha in near.get(kind, []):
            out.compared_with.append({"path": path, "kind": f"vet: {label}", "distance": None})
