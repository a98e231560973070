"""`datacurate vet` as a library call: embed, score, judge, move, report."""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Callable

import numpy as np

from datacurate.core.catalog import Catalog, open_catalog
from datacurate.core.terminal import phase
from datacurate.core.errors import UserError
from datacurate.vet.options import VetOptions
from datacurate.vet.records import REASONS, Flag, Score, VetResult
from datacurate.core.workspace import Workspace

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
    from datacurate.core.index import index_files
    from datacurate.executors.base import executor_for
    from datacurate.vet.remote import embedder_for
    from datacurate.vet.embed import embed_with_cache, load_backbone

    opts = options or resolve(ws, flags)
    start = time.perf_counter()
    result = VetResult(dry_run=dry_run)
    with open_catalog(ws) as cat, \
            executor_for(ws, ray, folders=[ws.state_dir, *(ws.path(s) for s in SOURCES)], quiet=quiet) as executor:
        rows = [r for r in index_files(ws, cat, SOURCES, quiet=quiet) if _usable(r)]
        kept = _restored_by_user(cat)
        classes = _vetted_classes(rows, result)
        rows = [r for r in rows if r["class"] in classes]
        if opts.train_first:
            from datacurate.vet.trust import ensure_trusted_run, needs_training

            if dry_run and needs_training(ws, opts):
                echo(f"dry run: run {opts.run} does not exist, so it is trained on the originals now (the model vet "
                     "judges with; a dry run moves no image, but the run is kept)")
            ensure_trusted_run(ws, opts, [r for r in rows if r["source"] == "original"], quiet=quiet, echo=echo)
        with phase("vet: loading the model", quiet=quiet):
            backbone = load_backbone(ws, opts, quiet=quiet)
        result.model = backbone.description
        vectors, result.embedded, result.undecodable = embed_with_cache(
            cat, backbone, [(str(ws.abs(r["path"])), r["sha256"]) for r in rows], opts, quiet=quiet,
            embed=embedder_for(executor))
        rows = [r for r in rows if r["sha256"] in vectors]
        result.cached = len({r["sha256"] for r in rows}) - result.embedded
        with phase(f"vet: judging {len(rows)} images (neighbours, {opts.folds}-fold classifier)", quiet=quiet):
            _judge(rows, np.stack([vectors[r["sha256"]] for r in rows]), classes, kept, opts, result,
                   _held_pool(cat, backbone.key))
        _check_judge(result, opts)
        if not dry_run:
            with phase(f"vet: setting aside {len(result.moved)} files", quiet=quiet):
                _move(ws, cat, result)
            _store_scores(cat, result)
        from datacurate.vet.report import write_reports

        with phase("vet: writing reports", quiet=quiet):
            result.reports = write_reports(ws, result, cat=None if dry_run else cat, quiet=quiet)
    result.seconds = time.perf_counter() - start
    return result


def _held_pool(cat: Catalog, key: str) -> list[tuple[str, np.ndarray]]:
    """(class, vector) of the scraped images vet holds in quarantine, embedded by this model."""
    from datacurate.vet.embed import cached

    held = cat.db.execute("SELECT class, sha256 FROM files WHERE status='quarantined' AND source='scraped' AND "
                          "reason IN (?,?) AND sha256 IS NOT NULL AND class IS NOT NULL ORDER BY sha256",
                          REASONS).fetchall()
    vectors = cached(cat, key, [r["sha256"] for r in held])
    return [(r["class"], vectors[r["sha256"]]) for r in held if r["sha256"] in vectors]


def _check_judge(result: VetResult, opts: VetOptions) -> None:
    """Refuse to move anything when the model cannot tell the classes apart (out of fold, on the originals)."""
    judge = result.judge
    if not judge or judge["trusted"]:
        return
    model = f"run {opts.run}" if opts.run else f"{opts.backbone} with weights {opts.weights}"
    raise UserError(f"vet: the model judges no better than chance ({judge['about']}), so nothing was set aside; "
                    f"judge with better features ({model} now: ImageNet weights, a longer-trained run) or add originals")


def _usable(row: sqlite3.Row) -> bool:
    return row["status"] == "ok" and bool(row["class"]) and bool(row["sha256"]) and row["problem"] is None


def _restored_by_user(cat: Catalog) -> Callable[[str, str], bool]:
    """(sha256, reason) -> True for contents a person brought back from a vet quarantine or said to keep
    (`datacurate keep`): their judgement stands."""
    from datacurate.core.overrides import load

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


def _judge(rows, raw: np.ndarray, classes: list[str], kept: Callable[[str, str], bool], opts: VetOptions,
           result: VetResult, pool: list[tuple[str, np.ndarray]] = ()) -> None:
    """Verdicts for `rows` (vectors `raw`); `pool` ((class, vector) of the scraped images vet holds in
    quarantine) joins the calibration so that a second run judges the rest the same way."""
    from datacurate.vet.judge import judge_all
    from datacurate.vet.scoring import normalise

    index = {c: i for i, c in enumerate(classes)}
    pool = [(c, v) for c, v in pool if c in index]
    x = normalise(np.concatenate([raw, np.stack([v for _, v in pool])]) if pool else raw)
    labels = np.array([index[r["class"]] for r in rows] + [index[c] for c, _ in pool])
    source = np.array([r["source"] for r in rows] + ["scraped"] * len(pool))
    judged = np.arange(len(x)) < len(rows)
    j = judge_all(x, labels, source, len(classes), opts, judged=judged)
    result.judge = {"trusted": j.judge.trusted, "accuracy": j.judge.accuracy, "chance": j.judge.chance,
                    "p_value": j.judge.p_value, "originals": j.judge.originals, "about": j.judge.describe()}
    if j.probs is None:
        result.notes.append("one class only: wrong-class needs two or more classes with originals")
    for c, name in enumerate(classes):
        result.classes[name] = {"originals": int(((labels == c) & (source == "original")).sum()),
                                "scraped": sum(1 for r, l in zip(rows, labels) if l == c and r["source"] == "scraped"),
                                "threshold": round(float(j.near.threshold[c]), 4), "off-topic": 0, "wrong-class": 0,
                                "calibration": j.calibration[c]}
    paths = [r["path"] for r in rows]
    for i, r in enumerate(rows):
        score, flag = _score_and_flag(i, r, labels[i], j, classes, paths, opts)
        if flag and kept(r["sha256"], flag.reason):
            result.kept_by_user.append(r["path"])
            flag = None
        if flag:
            score.flag, score.looks_like = flag.reason, flag.looks_like
            if flag.looks_like:
                score.other_neighbours = [paths[k] for k in j.near.neighbours[index[flag.looks_like]][i] if k >= 0]
            result.flags.append(flag)
            if flag.move:
                result.classes[r["class"]][flag.reason] += 1
        result.scores.append(score)
    result.flags.sort(key=lambda f: (f.klass, f.reason, -f.score, f.path))


def _score_and_flag(i: int, r, own: int, j, classes: list[str], paths: list[str], opts: VetOptions):
    """The Score of row i, and its Flag (None: kept), each saying how it was decided."""
    dist, thr = float(j.near.distance[i, own]), float(j.near.threshold[own])
    score = Score(r["path"], r["class"], r["source"], r["sha256"], dist, thr, None, None, None,
                  own_neighbours=[paths[k] for k in j.near.neighbours[own][i] if k >= 0])
    if j.probs is not None:
        best = int(np.argmax(j.probs[i]))
        score.likeliest, score.likeliest_prob = classes[best], float(j.probs[i, best])
        score.quality = float(j.probs[i, own])
    v = j.verdicts.get(i)
    calibration = j.calibration[own]
    if v is None:
        score.detail = (f"kept: cosine distance {dist:.3f} <= threshold {thr:.3f} (threshold from the {calibration})"
                        if r["source"] != "test" else "test image: never judged")
        return score, None
    if v.reason == "off-topic":
        detail = f"cosine distance {dist:.3f} > threshold {thr:.3f} (threshold from the {calibration}; rule: {v.rule})"
    else:
        other = classes[v.looks_like]
        detail = (f"looks like {other} (p={v.score:.2f} >= bar {v.threshold:.2f}; {r['class']} "
                  f"p={float(j.probs[i, own]):.2f}; rule: {v.rule})")
    score.detail = detail
    move = r["source"] == "scraped" or opts.move_originals
    return score, Flag(r["path"], r["class"], r["source"], v.reason, v.score, v.threshold,
                       None if v.looks_like is None else classes[v.looks_like], detail, move)


def _move(ws: Workspace, cat: Catalog, result: VetResult) -> None:
    """Carry out the plan with the quarantine move every stage uses (catalog row updated, event logged)."""
    from datacurate.core.quarantine import quarantine

    for flag in result.moved:
        flag.dst = quarantine(ws, cat, flag.path, flag.reason, flag.detail)


def _store_scores(cat: Catalog, result: VetResult) -> None:
    """This run's scores (vet.csv, vet.html and `datacurate reason` read them back); the scores of files
    vet holds in quarantine from earlier runs stay."""
    import json

    moved = {f.path: f.dst for f in result.flags if f.dst}
    shas = {s.path: s.sha256 for s in result.scores}
    now = time.time()
    rows = [(s.sha256, moved.get(s.path, s.path), s.klass, s.source, s.distance, s.threshold, s.quality, s.likeliest,
             s.likeliest_prob, s.flag, s.looks_like, s.detail,
             json.dumps({"own": [[p, shas.get(p)] for p in s.own_neighbours],
                         "other": [[p, shas.get(p)] for p in s.other_neighbours]}, ensure_ascii=False),
             result.model, now) for s in result.scores]
    with cat.transaction():
        cat.db.execute("DELETE FROM vet_scores WHERE sha256 NOT IN (SELECT sha256 FROM files WHERE status='quarantined' "
                       "AND reason IN (?,?) AND sha256 IS NOT NULL)", REASONS)
        cat.db.executemany(f"INSERT OR REPLACE INTO vet_scores VALUES ({','.join('?' * 15)})", rows)
