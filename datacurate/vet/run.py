"""`datacurate vet` as a library call: embed, score, judge, move, report."""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Callable

import numpy as np

from datacurate.catalog import Catalog, open_catalog
from datacurate.clicommon import phase
from datacurate.errors import UserError
from datacurate.vet.options import VetOptions
from datacurate.vet.records import REASONS, Flag, Score, VetResult
from datacurate.workspace import Workspace

SOURCES = ("original", "scraped", "test")


def resolve(ws: Workspace, flags: dict[str, Any]) -> VetOptions:
    """Options: flag > datacurate.yaml `vet:` > DEFAULTS, validated."""
    return ws.options(VetOptions, flags)


def vet(ws: Workspace, *, dry_run: bool = False, quiet: bool = True, options: VetOptions | None = None,
        echo: Callable[[str], None] = lambda s: None, ray: str | bool | None = None, **flags) -> VetResult:
    """Flag scraped images that are off-topic or look like another class; move them to quarantine.

    `options` (a VetOptions) or keyword flags named like the CLI's (backbone=, weights=, run=, ...),
    laid over datacurate.yaml's `vet:` section. Originals are listed, never moved, unless
    move_originals. With dry_run nothing moves (the embeddings cache and the reports are written).
    `ray`: embed on a Ray cluster's actors (an address, "auto"; False: here; None: datacurate.yaml's
    `ray.address`).
    """
    from datacurate.clean.scan import index_files
    from datacurate.cluster.use import cluster_for
    from datacurate.vet.embed import embed_with_cache, load_backbone

    opts = options or resolve(ws, flags)
    start = time.perf_counter()
    result = VetResult(dry_run=dry_run)
    with open_catalog(ws) as cat, \
            cluster_for(ws, ray, [ws.state_dir, *(ws.path(s) for s in SOURCES)], quiet=quiet) as cluster:
        rows = [r for r in index_files(ws, cat, SOURCES, quiet=quiet) if _usable(r)]
        kept = _restored_by_user(cat)
        classes = _vetted_classes(rows, result)
        rows = [r for r in rows if r["class"] in classes]
        if opts.train_first:
            from datacurate.vet.trust import ensure_trusted_run

            ensure_trusted_run(ws, opts, [r for r in rows if r["source"] == "original"], quiet=quiet, echo=echo)
        with phase("vet: loading the model", quiet=quiet):
            backbone = load_backbone(ws, opts, quiet=quiet)
        result.model = backbone.description
        vectors, result.embedded, result.undecodable = embed_with_cache(
            cat, backbone, [(str(ws.abs(r["path"])), r["sha256"]) for r in rows], opts, quiet=quiet, cluster=cluster)
        rows = [r for r in rows if r["sha256"] in vectors]
        result.cached = len({r["sha256"] for r in rows}) - result.embedded
        with phase(f"vet: judging {len(rows)} images (neighbours, {opts.folds}-fold classifier)", quiet=quiet):
            _judge(rows, np.stack([vectors[r["sha256"]] for r in rows]), classes, kept, opts, result)
        if not dry_run:
            with phase(f"vet: setting aside {len(result.moved)} files", quiet=quiet):
                _move(ws, cat, result)
            _store_scores(cat, result)
        from datacurate.vet.report import write_reports

        with phase("vet: writing reports", quiet=quiet):
            result.reports = write_reports(ws, result, cat=None if dry_run else cat, quiet=quiet)
    result.seconds = time.perf_counter() - start
    return result


def _usable(row: sqlite3.Row) -> bool:
    return row["status"] == "ok" and bool(row["class"]) and bool(row["sha256"]) and row["problem"] is None


def _restored_by_user(cat: Catalog) -> Callable[[str, str], bool]:
    """(sha256, reason) -> True for contents a person brought back from a vet quarantine or said to keep
    (`datacurate keep`): their judgement stands."""
    from datacurate.overrides import load

    found = cat.db.execute(
        "SELECT f.sha256 FROM events e JOIN files f ON f.path = e.dst WHERE e.action='restore' AND e.reason IN (?,?)",
        REASONS).fetchall()
    restored = {r[0] for r in found if r[0]}
    said = load(cat)
    return lambda sha, reason: sha in restored or said.keeps(sha, reason)


def _vetted_classes(rows: list[sqlite3.Row], result: VetResult) -> list[str]:
    """Classes with at least two originals; the others are named in result.skipped_classes."""
    originals: dict[str, int] = {}
    for r in rows:
        if r["source"] == "original":
            originals[r["class"]] = originals.get(r["class"], 0) + 1
    for r in rows:
        if r["source"] == "scraped" and originals.get(r["class"], 0) < 2 and r["class"] not in result.skipped_classes:
            n = originals.get(r["class"], 0)
            result.skipped_classes[r["class"]] = ("no originals: nothing to compare its scraped images with" if n == 0
                                                  else "only 1 original: too few to calibrate a threshold")
    classes = sorted(c for c, n in originals.items() if n >= 2)
    if not classes:
        raise UserError("no class has two or more usable originals in data/original to compare scraped images with; "
                        "put labeled images there (and run `datacurate clean`)")
    return classes


def _judge(rows, raw: np.ndarray, classes: list[str], kept: Callable[[str, str], bool], opts: VetOptions, result: VetResult) -> None:
    from datacurate.vet.scoring import nearest_other, neighbourhood, normalise
    from datacurate.vet.wrongclass import class_probabilities, looks_like

    x = normalise(raw)
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[r["class"]] for r in rows])
    is_original = np.array([r["source"] == "original" for r in rows])
    near = neighbourhood(x, labels, is_original, len(classes), opts.neighbours, opts.offtopic_quantile,
                         opts.offtopic_threshold)
    cp = class_probabilities(x, labels, is_original, len(classes), opts.folds, opts.seed) if len(classes) > 1 else None
    if cp is None:
        result.notes.append("one class only: wrong-class needs two or more classes with originals")
    for c, name in enumerate(classes):
        result.classes[name] = {"originals": int(((labels == c) & is_original).sum()),
                                "scraped": sum(1 for r, l in zip(rows, labels) if l == c and r["source"] == "scraped"),
                                "threshold": round(float(near.threshold[c]), 4), "off-topic": 0, "wrong-class": 0}
    paths = [r["path"] for r in rows]
    for i, r in enumerate(rows):
        own = labels[i]
        score = Score(r["path"], r["class"], r["source"], r["sha256"], float(near.distance[i, own]),
                      float(near.threshold[own]), None if cp is None else float(cp.quality[i]), None, None,
                      own_neighbours=[paths[j] for j in near.neighbours[own][i] if j >= 0])
        if cp is not None:
            best = int(np.argmax(cp.probs[i]))
            score.likeliest, score.likeliest_prob = classes[best], float(cp.probs[i, best])
        flag = _verdict(i, r, own, near, cp, classes, opts, nearest_other, looks_like)
        if flag and kept(r["sha256"], flag.reason):
            result.kept_by_user.append(r["path"])
            flag = None
        if flag:
            score.flag, score.looks_like = flag.reason, flag.looks_like
            if flag.looks_like:
                other = index[flag.looks_like]
                score.other_neighbours = [paths[j] for j in near.neighbours[other][i] if j >= 0]
            result.flags.append(flag)
            if flag.move:
                result.classes[r["class"]][flag.reason] += 1
        result.scores.append(score)
    result.flags.sort(key=lambda f: (f.klass, f.reason, -f.score, f.path))


def _verdict(i, row, own, near, cp, classes, opts: VetOptions, nearest_other, looks_like) -> Flag | None:
    """Off-topic, wrong-class or nothing, for image i (test images are never judged)."""
    source = row["source"]
    if source == "test":
        return None
    dist, thr = float(near.distance[i, own]), float(near.threshold[own])
    if source == "scraped" and dist > thr:
        other = nearest_other(near.distance[i].copy(), near.threshold, own)
        if other is not None and (cp is None or looks_like(cp.probs[i], cp.thresholds, own) != other):
            other = None  # near another class's originals, but the classifier does not see that class in it
        if other is None and not (opts.keep_recognised and dist <= opts.recognised_within * thr
                                  and _recognised(cp, i, own, opts.recognised_prob)):
            return Flag(row["path"], row["class"], source, "off-topic", dist, thr, None,
                        f"cosine distance {dist:.3f} to its class's originals is over the threshold {thr:.3f}", True)
        if other is not None:
            return Flag(row["path"], row["class"], source, "wrong-class", dist, thr, classes[other],
                        f"far from {row['class']} ({dist:.3f} > {thr:.3f}), close to {classes[other]}'s originals "
                        f"({near.distance[i, other]:.3f} <= {near.threshold[other]:.3f}) and classified as "
                        f"{classes[other]} (p={cp.probs[i, other]:.2f})", True)
        # recognised: an unusual but clear member of its class, a little beyond the threshold (far beyond it, a
        # classifier of the known classes is confident about anything); only the wrong-class test below applies
    if cp is None:
        return None
    if source == "original":
        if not cp.original_issues[i]:
            return None
        other = int(np.argmax(cp.probs[i]))
        if other == own:
            return None
        return Flag(row["path"], row["class"], source, "wrong-class", float(cp.probs[i, other]),
                    float(cp.thresholds[other]), classes[other],
                    f"looks like {classes[other]} (p={cp.probs[i, other]:.2f}; {row['class']} p={cp.probs[i, own]:.2f})",
                    opts.move_originals)
    other = looks_like(cp.probs[i], cp.thresholds, own)
    if other is None:
        return None
    return Flag(row["path"], row["class"], source, "wrong-class", float(cp.probs[i, other]), float(cp.thresholds[other]),
                classes[other], f"looks like {classes[other]} (p={cp.probs[i, other]:.2f} >= its confident threshold "
                f"{cp.thresholds[other]:.2f}; {row['class']} p={cp.probs[i, own]:.2f})", True)


def _recognised(cp, i: int, own: int, bar: float) -> bool:
    """The classifier is confident image i is its own class: its probability reaches the class's cleanlab
    confident threshold or `bar`, whichever is lower (a run's model makes those thresholds near 1)."""
    return cp is not None and bool(cp.probs[i, own] >= min(float(cp.thresholds[own]), bar))


def _move(ws: Workspace, cat: Catalog, result: VetResult) -> None:
    """Carry out the plan with clean's quarantine move (catalog row updated, event logged)."""
    from datacurate.clean.model import Decision
    from datacurate.clean.run import _quarantine

    for flag in result.moved:
        flag.dst = _quarantine(ws, cat, Decision(flag.path, flag.reason, detail=flag.detail))


def _store_scores(cat: Catalog, result: VetResult) -> None:
    """This run's scores (vet.csv, vet.html and `datacurate reason` read them back); the scores of files
    vet holds in quarantine from earlier runs stay."""
    import json

    moved = {f.path: f.dst for f in result.flags if f.dst}
    details = {f.path: f.detail for f in result.flags}
    shas = {s.path: s.sha256 for s in result.scores}
    now = time.time()
    rows = [(s.sha256, moved.get(s.path, s.path), s.klass, s.source, s.distance, s.threshold, s.quality, s.likeliest,
             s.likeliest_prob, s.flag, s.looks_like, details.get(s.path),
             json.dumps({"own": [[p, shas.get(p)] for p in s.own_neighbours],
                         "other": [[p, shas.get(p)] for p in s.other_neighbours]}, ensure_ascii=False),
             result.model, now) for s in result.scores]
    with cat.transaction():
        cat.db.execute("DELETE FROM vet_scores WHERE sha256 NOT IN (SELECT sha256 FROM files WHERE status='quarantined' "
                       "AND reason IN (?,?) AND sha256 IS NOT NULL)", REASONS)
        cat.db.executemany(f"INSERT OR REPLACE INTO vet_scores VALUES ({','.join('?' * 15)})", rows)
