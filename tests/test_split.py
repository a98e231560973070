"""datacurate split: counts, determinism, stickiness, clusters, honest valid, link modes, dry-run, final."""

from __future__ import annotations

import csv
import hashlib
import os
import random
import sqlite3
import sys
from pathlib import Path

import pytest
from PIL import Image

from datacurate.cli.main import run
from datacurate.split import SplitOptions, split_dataset
from datacurate.core.workspace import Workspace

CAN = "可回收物_易拉罐"


def make_image(path, n: int, size=(8, 8), color=None):
    """A tiny PNG whose content is unique to `n`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, color or (n % 251, (n // 251) % 251, 7))
    im.putpixel((0, 0), (n % 256, (n >> 8) % 256, (n >> 16) % 256))
    im.save(path)
    return path


_counter = iter(range(1, 10**9))


def populate(root, classes: dict[str, int], source="original", names=None, start=None):
    """Write classes[c] images under data/<source>/<c>/; returns the paths."""
    out = []
    for ci, (c, n) in enumerate(classes.items()):
        for i in range(n):
            k = next(_counter) if start is None else start + 1000 * ci + i
            name = names(c, i) if names else f"{c}_{i:03d}.png"
            out.append(make_image(root / "data" / source / c / name, k))
    return out


def do_split(root, **opts):
    fresh = opts.pop("fresh", False)
    dry = opts.pop("dry_run", False)
    return split_dataset(Workspace.open(root), SplitOptions.from_mapping(opts), fresh=fresh, dry_run=dry)


def tree(root, split):
    """{class: sorted file names} in data/split/<split>."""
    base = root / "data" / "split" / split
    if not base.is_dir():
        return {}
    return {c: sorted(os.listdir(base / c)) for c in sorted(os.listdir(base))}


def by_content(root, split):
    """sha256 of every file in data/split/<split>."""
    base = root / "data" / "split" / split
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in base.rglob("*") if p.is_file()} if base.is_dir() else set()


def cli(args, capsys):
    old = sys.argv
    sys.argv = ["datacurate", *args]
    try:
        with pytest.raises(SystemExit) as exc:
            run()
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_counts_per_class_including_tiny_classes(tmp_path):
    populate(tmp_path, {"one": 1, "two": 2, "three": 3, "ten": 10, "eleven": 11, "thirteen": 13})
    res = do_split(tmp_path, valid=0.2)
    valid = {c: len(v) for c, v in tree(tmp_path, "valid").items()}
    train = {c: len(v) for c, v in tree(tmp_path, "train").items()}
    # round(0.2 n) with at least one when n >= 2, none when n == 1, train keeps at least one
    assert valid == {"two": 1, "three": 1, "ten": 2, "eleven": 2, "thirteen": 3}
    assert train == {"one": 1, "two": 1, "three": 2, "ten": 8, "eleven": 9, "thirteen": 10}
    assert any("class one" in w and "none goes to valid" in w for w in res.assignment.warnings)


def test_half_rounds_up_and_min_valid(tmp_path):
    populate(tmp_path, {"a": 2, "b": 6, "c": 4})
    do_split(tmp_path, valid=0.25, min_valid=0)
    # 0.25*2 = 0.5 -> 1, 0.25*6 = 1.5 -> 2, 0.25*4 = 1
    assert {c: len(v) for c, v in tree(tmp_path, "valid").items()} == {"a": 1, "b": 2, "c": 1}
    do_split(tmp_path, valid=0.1, min_valid=0, fresh=True)  # 0.2, 0.6, 0.4 -> 0, 1, 0
    assert {c: len(v) for c, v in tree(tmp_path, "valid").items() if v} == {"b": 1}


def test_test_split_leaves_train_one(tmp_path):
    populate(tmp_path, {"two": 2, "three": 3, "twenty": 20})
    do_split(tmp_path, valid=0.2, test=0.1)
    count = lambda s: {c: len(v) for c, v in tree(tmp_path, s).items()}  # noqa: E731
    assert count("valid") == {"two": 1, "three": 1, "twenty": 4}
    assert count("test") == {"three": 1, "twenty": 2}
    assert count("train") == {"two": 1, "three": 1, "twenty": 14}
    do_split(tmp_path, valid=0.2)  # test no longer asked for: its folder goes, its images return to train
    assert not (tmp_path / "data/split/test").exists()
    assert count("valid") == {"two": 1, "three": 1, "twenty": 4}
    assert sum(count("train").values()) == 25 - 6


def test_same_split_whatever_the_names_and_listing_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    populate(a, {"x": 30, CAN: 17}, start=1000)
    rng = random.Random(5)
    perm = {c: rng.sample(range(100), 30) for c in ("x", CAN)}
    populate(b, {"x": 30, CAN: 17}, start=1000, names=lambda c, i: f"img_{perm[c][i]:03d}.png")
    for root in (a, b):
        do_split(root, valid=0.3, seed=7)
    assert by_content(a, "valid") == by_content(b, "valid") and len(by_content(a, "valid")) == 9 + 5
    assert by_content(a, "train") == by_content(b, "train")
    do_split(a, valid=0.3, seed=8, fresh=True)
    assert by_content(a, "valid") != by_content(b, "valid")  # the seed matters


def test_sticky_when_images_are_added(tmp_path):
    populate(tmp_path, {"x": 20, "y": 10})
    do_split(tmp_path, valid=0.2)
    valid1, train1 = by_content(tmp_path, "valid"), by_content(tmp_path, "train")
    populate(tmp_path, {"x": 20, "y": 5}, names=lambda c, i: f"new_{i}.png")  # more originals
    populate(tmp_path, {"x": 15, "y": 15}, source="scraped")  # a scrape
    res = do_split(tmp_path, valid=0.2)
    valid2, train2 = by_content(tmp_path, "valid"), by_content(tmp_path, "train")
    assert valid1 <= valid2 and train1 <= train2 and not res.assignment.moved
    # new originals fill valid toward 20% of each class's originals: x 40 -> 8, y 15 -> 3
    assert {c: len(v) for c, v in tree(tmp_path, "valid").items()} == {"x": 8, "y": 3}


def _add_pair(root, a, b, kind):
    db = sqlite3.connect(root / ".datacurate" / "catalog.sqlite")
    db.execute("INSERT INTO pairs VALUES (?,?,?,?,?)", (a, b, kind, 3, "phash"))
    db.commit()
    db.close()


def test_clusters_never_straddle(tmp_path):
    paths = populate(tmp_path, {"x": 12, "y": 12})
    do_split(tmp_path, valid=0.5, dry_run=True)  # makes the catalog
    rel = [p.relative_to(tmp_path).as_posix() for p in paths]
    chain = [(rel[0], rel[1]), (rel[1], rel[2]), (rel[2], rel[13])]  # x0-x1-x2-y1: one cluster over two classes
    for a, b in chain:
        _add_pair(tmp_path, a, b, "near-duplicate")
    _add_pair(tmp_path, rel[5], rel[20], "conflict-reported")
    # a pair recorded before clean renamed one of its files still links
    db = sqlite3.connect(tmp_path / ".datacurate" / "catalog.sqlite")
    db.execute("INSERT INTO events (time, action, src, dst) VALUES (0, 'rename', ?, ?)", ("data/original/y/old.jpg", rel[23]))
    db.commit()
    db.close()
    _add_pair(tmp_path, rel[6], "data/original/y/old.jpg", "near-duplicate")
    clusters = [{0, 1, 2, 13}, {5, 20}, {6, 23}]
    for seed in range(8):
        res = do_split(tmp_path, valid=0.5, seed=seed, fresh=True)
        where = {p: s for p, s in res.assignment.split.items()}
        for cl in clusters:
            assert len({where[rel[i]] for i in cl}) == 1, (seed, cl)
    # an identical copy (same content, other name) is a cluster too
    (tmp_path / "data/original/y/copy_of_x3.png").write_bytes(paths[3].read_bytes())
    for seed in range(4):
        res = do_split(tmp_path, valid=0.5, seed=seed, fresh=True)
        assert res.assignment.split[rel[3]] == res.assignment.split["data/original/y/copy_of_x3.png"]


def test_scraped_stay_out_of_valid(tmp_path):
    populate(tmp_path, {"x": 10, "y": 3})
    scraped = populate(tmp_path, {"x": 30, "y": 30, "only_scraped": 5}, source="scraped")
    res = do_split(tmp_path, valid=0.3, test=0.2)
    assert all(res.assignment.split[p] == "train" for p in res.assignment.split if "/scraped/" in p)
    assert {c: len(v) for c, v in tree(tmp_path, "valid").items()} == {"x": 3, "y": 1}
    assert len(tree(tmp_path, "train")["only_scraped"]) == 5
    # a scraped near-duplicate of an original: the pair goes to train together
    rel = lambda p: p.relative_to(tmp_path).as_posix()  # noqa: E731
    valid_original = next(p for p, s in res.assignment.split.items() if s == "valid")
    _add_pair(tmp_path, valid_original, rel(scraped[0]), "near-duplicate")
    res = do_split(tmp_path, valid=0.3, test=0.2)  # sticky: the original stays in valid, the scraped twin is left out
    assert res.assignment.split[valid_original] == "valid" and rel(scraped[0]) in res.assignment.left_out
    rows = list(csv.DictReader(open(tmp_path / "data/split/split.csv", encoding="utf-8")))
    assert next(r for r in rows if r["path"] == rel(scraped[0]))["note"].startswith("linked to a valid image")
    res = do_split(tmp_path, valid=0.3, scraped_in_valid=True, fresh=True)
    assert any(s == "valid" for p, s in res.assignment.split.items() if "/scraped/" in p)


@pytest.mark.parametrize("mode", ["hardlink", "symlink", "copy"])
def test_link_modes_and_rerun_drops_what_left(tmp_path, mode):
    paths = populate(tmp_path, {CAN: 6, "b": 4})
    do_split(tmp_path, link=mode)
    files = [p for p in (tmp_path / "data/split").rglob("*.png")]
    assert len(files) == 10
    for f in files:
        src = tmp_path / "data/original" / f.parent.name / f.name
        assert f.read_bytes() == src.read_bytes()
        if mode == "hardlink":
            assert os.path.samefile(f, src) and not f.is_symlink()
        elif mode == "symlink":
            assert f.is_symlink() and not os.path.isabs(os.readlink(f)) and os.path.samefile(f, src)
        else:
            assert not os.path.samefile(f, src) and not f.is_symlink()
    # clean sets a file aside: the re-run drops it from the split, the other files stay put
    gone = paths[0]
    q = tmp_path / "data/quarantine/near-duplicate/original" / CAN / gone.name
    q.parent.mkdir(parents=True)
    os.rename(gone, q)
    do_split(tmp_path, link=mode)
    names = [n for v in tree(tmp_path, "train").values() for n in v] + [n for v in tree(tmp_path, "valid").values() for n in v]
    assert len(names) == 9 and gone.name not in names
    assert q.exists() and all(p.exists() for p in paths[1:])
    assert not [e for e in os.listdir(tmp_path / "data/split") if e.startswith(".tmp")]


def test_dry_run_writes_nothing(tmp_path, capsys):
    populate(tmp_path, {"a": 5, CAN: 5})
    code, out, _ = cli(["-C", str(tmp_path), "-q", "split", "--dry-run"], capsys)
    assert code == 0 and "would place 8 train, 2 valid" in out and "nothing written" in out
    assert not (tmp_path / "data/split").exists() and not (tmp_path / "reports").exists()


def test_final_puts_everything_in_train_and_remembers_valid(tmp_path):
    populate(tmp_path, {"a": 10, "b": 5})
    populate(tmp_path, {"a": 4}, source="scraped")
    do_split(tmp_path)
    valid = by_content(tmp_path, "valid")
    res = do_split(tmp_path, final=True)
    assert tree(tmp_path, "valid") == {} and (tmp_path / "data/split/valid").is_dir()
    assert sum(len(v) for v in tree(tmp_path, "train").values()) == 19 and set(res.assignment.split.values()) == {"train"}
    do_split(tmp_path)
    assert by_content(tmp_path, "valid") == valid


def test_name_clash_between_sources_and_non_images(tmp_path):
    make_image(tmp_path / "data/original/a/same.png", 1)
    make_image(tmp_path / "data/scraped/a/same.png", 2)
    make_image(tmp_path / "data/original/a/other.png", 3)
    (tmp_path / "data/original/a/notes.txt").write_text("not an image")
    (tmp_path / "data/original/a/.tmp-partial.png").write_bytes(b"x")
    res = do_split(tmp_path, valid=0.0)
    assert len(tree(tmp_path, "train")["a"]) == 3 and "same.png" in tree(tmp_path, "train")["a"]
    assert res.skipped == {"data/original/a/notes.txt": "not an ImageFolder extension"}


def test_cli_unicode_end_to_end(tmp_path, capsys):
    populate(tmp_path, {CAN: 10, "其他垃圾_烟蒂": 3})
    code, out, err = cli(["-C", str(tmp_path), "-q", "split", "--valid", "0.2", "--link", "symlink"], capsys)
    assert code == 0, err
    assert f"{CAN}" in out and "placed 10 train, 3 valid" in out
    assert len(os.listdir(tmp_path / "data/split/valid" / CAN)) == 2
    rows = list(csv.DictReader(open(tmp_path / "data/split/split.csv", encoding="utf-8")))
    assert len(rows) == 13 and {r["class"] for r in rows} == {CAN, "其他垃圾_烟蒂"}
    assert all(r["file"].startswith(r["split"] + "/" + r["class"] + "/") for r in rows)
    assert CAN in (tmp_path / "reports/balance.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("args, message", [
    (["split", "--valid", "1.5"], "valid must be a fraction"),
    (["split", "--valid", "-0.1"], "valid must be a fraction"),
    (["split", "--valid", "abc"], "is not a valid float"),
    (["split", "--valid", "0.6", "--test", "0.5"], "must stay below 1"),
    (["split", "--min-valid", "-1"], "min_valid must be a whole number of at least 0"),
    (["split", "--link", "move"], "'move' is not one of"),
    (["split", "--min-per-class", "-3"], "min_per_class must be a whole number of at least 0"),
    (["stats", "--size", "2"], "stats_size must be a whole number of at least 8"),
])
def test_cli_bad_values_exit_2(tmp_path, capsys, args, message):
    populate(tmp_path, {"a": 3})
    code, out, err = cli(["-C", str(tmp_path), *args], capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "data/split").exists()


@pytest.mark.parametrize("yaml_text, message", [
    ("split:\n  valid: lots\n", "valid must be a fraction"),
    ("split:\n  link: move\n", "link must be one of"),
    ("split:\n  scraped_in_valid: maybe\n", "scraped_in_valid must be true or false"),
    ("split:\n  vaild: 0.2\n", "unknown option split.vaild"),
])
def test_bad_config_exit_2(tmp_path, capsys, yaml_text, message):
    populate(tmp_path, {"a": 3})
    (tmp_path / "datacurate.yaml").write_text(yaml_text)
    code, _, err = cli(["-C", str(tmp_path), "split"], capsys)
    assert code == 2 and message in err


def test_config_supplies_options_and_flags_win(tmp_path):
    populate(tmp_path, {"a": 10})
    (tmp_path / "datacurate.yaml").write_text("split:\n  valid: 0.5\n  link: copy\n")
    ws = Workspace.open(tmp_path)
    opts = ws.options(SplitOptions, {"valid": 0.3, "link": None})
    assert opts.valid == 0.3 and opts.link == "copy"


def test_nothing_to_split_exit_2(tmp_path, capsys):
    code, _, err = cli(["-C", str(tmp_path), "split"], capsys)
    assert code == 2 and "nothing to split" in err
    (tmp_path / "data/original/a").mkdir(parents=True)
    code, _, err = cli(["-C", str(tmp_path), "split"], capsys)
    assert code == 2 and "no images to split" in err


def test_hardlink_falls_back_to_copy_across_file_systems(tmp_path, capsys):
    other = "/dev/shm"
    if not os.path.isdir(other) or os.stat(other).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system at /dev/shm")
    import tempfile

    with tempfile.TemporaryDirectory(dir=other) as split_dir:
        populate(tmp_path, {"a": 5})
        (tmp_path / "datacurate.yaml").write_text(f"paths:\n  split: {split_dir}\n")
        code, out, err = cli(["-C", str(tmp_path), "-q", "split"], capsys)
        assert code == 0, err
        assert "copied 5 file(s) that could not be hardlinked" in out and f"in {split_dir}" in out
        files = list((tmp_path / "data/original/a").iterdir())
        placed = [p for s in ("train", "valid") for p in (Path(split_dir) / s / "a").iterdir()]
        assert sorted(p.read_bytes() for p in placed) == sorted(p.read_bytes() for p in files)
