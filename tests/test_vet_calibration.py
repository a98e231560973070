"""vet's judge on vectors where the answer is known: the scraped-pool calibration with few originals,
its fallback, wrong-class before off-topic, the same verdicts on a second run, the judge's check."""

from __future__ import annotations

import numpy as np
import pytest

from datacurate.core.errors import UserError
from datacurate.vet.judge import MIN_POOL, judge_all
from datacurate.vet.options import VetOptions
from datacurate.vet.records import VetResult
from datacurate.vet.run import _check_judge, _judge
from datacurate.vet.scoring import leave_one_out_threshold, neighbourhood, normalise

DIM = 32


def _cloud(rng, centre: np.ndarray, n: int, spread: float = 0.35) -> np.ndarray:
    return centre + rng.normal(0, spread / np.sqrt(DIM), (n, DIM))


def _task(n_orig: int, n_good: int, n_far: int, seed: int = 0):
    """Two classes around two directions; `n_far` scraped vectors per class far from both (off-topic)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(DIM)[:2]
    x, labels, source, truth = [], [], [], []
    for c in range(2):
        for part, n, kind in (("original", n_orig, "original"), ("scraped", n_good, "good")):
            x.append(_cloud(rng, centres[c], n))
            labels += [c] * n
            source += [part] * n
            truth += [kind] * n
        far = np.eye(DIM)[2 + c * n_far:2 + (c + 1) * n_far]
        x.append(far + rng.normal(0, 0.05, far.shape))
        labels += [c] * n_far
        source += ["scraped"] * n_far
        truth += ["off-topic"] * n_far
    return normalise(np.concatenate(x)), np.array(labels), np.array(source), np.array(truth)


def test_ten_originals_calibrate_on_the_scraped_pool():
    """With 10 originals a leave-one-out threshold is about the largest of 10 numbers; the pool places it better."""
    x, labels, source, truth = _task(10, 60, 4)
    j = judge_all(x, labels, source, 2, VetOptions())
    flagged = {i for i, v in j.verdicts.items() if source[i] == "scraped"}
    good = set(np.flatnonzero(truth == "good"))
    assert set(np.flatnonzero(truth == "off-topic")) <= flagged
    assert len(flagged & good) <= 0.05 * len(good)
    assert all(j.verdicts[i].reason == "off-topic" for i in np.flatnonzero(truth == "off-topic"))
    assert all(note.startswith("scraped pool: median") for note in j.calibration)
    # the originals' own rule flags more of the same good images: the reason for the change
    near = neighbourhood(x, labels, source == "original", 2, 5)
    old = leave_one_out_threshold(near.loo, 0.98)
    own = near.distance[np.arange(len(x)), labels]
    assert sum(own[i] > old[labels[i]] for i in good) > len(flagged & good)


def test_a_class_with_few_scraped_images_falls_back_to_its_originals():
    x, labels, source, _ = _task(10, MIN_POOL - 3, 1)
    j = judge_all(x, labels, source, 2, VetOptions())
    assert all(note.startswith("originals: quantile 0.98") for note in j.calibration)
    fixed = judge_all(x, labels, source, 2, VetOptions(offtopic_threshold=0.5))
    assert list(fixed.near.threshold) == [0.5, 0.5] and "fixed" in fixed.calibration[0]


def test_another_class_s_picture_is_wrong_class_not_off_topic():
    x, labels, source, truth = _task(10, 40, 2)
    rng = np.random.default_rng(5)
    stray = normalise(_cloud(rng, np.eye(DIM)[1], 3))  # class 1's pictures filed under class 0
    x = np.concatenate([x, stray])
    labels = np.concatenate([labels, [0, 0, 0]])
    source = np.concatenate([source, ["scraped"] * 3])
    j = judge_all(x, labels, source, 2, VetOptions())
    for i in range(len(x) - 3, len(x)):
        v = j.verdicts[i]
        assert v.reason == "wrong-class" and v.looks_like == 1 and v.score >= v.threshold >= 0.5


def test_a_second_run_after_the_moves_judges_the_rest_the_same_way():
    """The images vet holds in quarantine stay in the calibration pool: no new flags on the second run."""
    x, labels, source, truth = _task(10, 40, 3, seed=2)
    rows = [{"path": f"p{i}", "class": "ab"[labels[i]], "source": source[i], "sha256": f"s{i}"} for i in range(len(x))]
    first = VetResult(dry_run=True)
    _judge(rows, x, ["a", "b"], lambda sha, reason: False, VetOptions(), first)
    moved = {f.path for f in first.flags if f.move}
    assert moved
    keep = [i for i, r in enumerate(rows) if r["path"] not in moved]
    held = [("ab"[labels[i]], x[i]) for i, r in enumerate(rows) if r["path"] in moved]
    second = VetResult(dry_run=True)
    _judge([rows[i] for i in keep], x[keep], ["a", "b"], lambda sha, reason: False, VetOptions(), second, held)
    assert not [f for f in second.flags if f.move]
    assert [c["threshold"] for c in second.classes.values()] == [c["threshold"] for c in first.classes.values()]


def test_every_score_says_how_it_was_decided():
    x, labels, source, truth = _task(10, 30, 2)
    rows = [{"path": f"p{i}", "class": "ab"[labels[i]], "source": source[i], "sha256": f"s{i}"} for i in range(len(x))]
    result = VetResult(dry_run=True)
    _judge(rows, x, ["a", "b"], lambda sha, reason: False, VetOptions(), result)
    assert result.judge["trusted"] and result.judge["accuracy"] >= 0.9
    assert "calibration" in result.classes["a"]
    off = next(f for f in result.flags if f.reason == "off-topic")
    assert "threshold from the scraped pool: median" in off.detail and "rule: distance" in off.detail
    kept = next(s for s in result.scores if not s.flag and s.source == "scraped")
    assert kept.detail.startswith("kept: cosine distance") and "scraped pool" in kept.detail


def test_a_judge_at_chance_is_refused():
    rng = np.random.default_rng(1)
    x = normalise(rng.normal(size=(60, DIM)))
    labels = np.array([0, 1] * 30)
    source = np.array(["original"] * 40 + ["scraped"] * 20)
    j = judge_all(x, labels, source, 2, VetOptions())
    assert not j.judge.trusted and j.judge.chance == 0.5
    result = VetResult(dry_run=True, judge={"trusted": False, "about": j.judge.describe()})
    with pytest.raises(UserError, match="no better than chance"):
        _check_judge(result, VetOptions())


def test_bench_value_smoke_runs_the_real_stages(tmp_path, capsys):
    """benchmarks/bench_value.py --smoke: clean, vet, split, train and evaluate on four generated workspaces."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_value.py"
    spec = importlib.util.spec_from_file_location("bench_value", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--smoke", "--work", str(tmp_path), "--json", str(tmp_path / "out.json")]) == 0
    rows = json.loads((tmp_path / "out.json").read_text())
    assert [r["task"] for r in rows] == ["smoke"] and set(rows[0]["accuracy"]) == set(bench.VARIANTS)
    assert rows[0]["flags"]["off-topic recall"][0] == 1.0
    assert "| smoke | 6 |" in capsys.readouterr().out
    assert not any((tmp_path / f"smoke-6-0-{v}" / "data" / "test").exists() for v in ("originals", "noisy"))
    with pytest.raises(SystemExit):
        bench.main(["--work", str(tmp_path)])  # neither --data/--weights nor --smoke
