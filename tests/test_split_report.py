"""The class-balance report (table, CSV, HTML, `report balance`) and `datacurate stats`."""

from __future__ import annotations

import csv
import json

import pytest
from PIL import Image

from test_split import CAN, cli, do_split, populate


def read_csv(path):
    return {r["class"]: r for r in csv.DictReader(open(path, encoding="utf-8"))}


def test_report_numbers(tmp_path, capsys):
    populate(tmp_path, {"big": 20, CAN: 5, "small": 2})
    populate(tmp_path, {"big": 10, "small": 1}, source="scraped")
    code, out, err = cli(["-C", str(tmp_path), "-q", "split", "--valid", "0.2", "--min-per-class", "5"], capsys)
    assert code == 0, err
    rows = read_csv(tmp_path / "reports/balance.csv")
    # big: 20 originals -> 4 valid, 16 + 10 scraped train; 可回收物: 5 -> 1 valid; small: 2 -> 1 valid, 1 + 1 train
    assert {c: (int(r["train_original"]), int(r["train_scraped"]), int(r["valid_original"]), int(r["valid_scraped"]))
            for c, r in rows.items()} == {"big": (16, 10, 4, 0), CAN: (4, 0, 1, 0), "small": (1, 1, 1, 0)}
    assert {c: int(r["total"]) for c, r in rows.items()} == {"big": 30, CAN: 5, "small": 3}
    assert float(rows["big"]["train_share"]) == round(26 / 32, 4)
    assert float(rows["small"]["valid_share"]) == round(1 / 3, 4)
    assert {c: r["under_min"] for c, r in rows.items()} == {"big": "0", CAN: "1", "small": "1"}
    assert "imbalance 13.00 (largest/smallest train class)" in out  # 26 / 2
    assert "2 class(es) under 5 train images" in out
    line = next(line for line in out.splitlines() if line.startswith("TOTAL"))
    assert line.split()[1:6] == ["32", "21", "11", "6", "38"]
    page = (tmp_path / "reports/balance.html").read_text(encoding="utf-8")
    assert "<svg" in page and CAN in page and "imbalance 13.00" in page
    # re-rendered from the catalog alone: same numbers, other minimum
    (tmp_path / "reports/balance.csv").unlink()
    code, out2, err = cli(["-C", str(tmp_path), "-q", "report", "balance", "--min-per-class", "3"], capsys)
    assert code == 0, err
    assert read_csv(tmp_path / "reports/balance.csv")[CAN]["under_min"] == "0"
    assert {c: r["total"] for c, r in read_csv(tmp_path / "reports/balance.csv").items()} == {c: r["total"] for c, r in rows.items()}
    assert "1 class(es) under 3 train images: small" in out2
    table = out2.splitlines()  # the class table first, as `split` prints it (docs/split.md shows it)
    assert table[0].split()[:3] == ["class", "train", "original"] and any(l.startswith("TOTAL") for l in table)
    assert any(l.startswith("small") and l.rstrip().endswith("under 3") for l in table)


def test_report_balance_without_split_exit_2(tmp_path, capsys):
    code, _, err = cli(["-C", str(tmp_path), "report", "balance"], capsys)
    assert code == 2 and "no catalog" in err
    populate(tmp_path, {"a": 3})
    do_split(tmp_path, dry_run=True)  # a catalog, but no split recorded
    code, _, err = cli(["-C", str(tmp_path), "report", "balance"], capsys)
    assert code == 2 and "no split" in err


def test_stats_of_train_split(tmp_path, capsys):
    # train: one solid red and one solid blue 20x20 image (valid 0 keeps both in train)
    for c in "rb":
        (tmp_path / "data/original" / c).mkdir(parents=True)
    Image.new("RGB", (20, 20), (255, 0, 0)).save(tmp_path / "data/original/r/red.png")
    Image.new("RGB", (20, 20), (0, 0, 255)).save(tmp_path / "data/original/b/blue.png")
    code, out, err = cli(["-C", str(tmp_path), "-q", "split", "--valid", "0"], capsys)
    assert code == 0, err
    code, out, err = cli(["-C", str(tmp_path), "-q", "stats"], capsys)
    assert code == 0, err
    stats = json.loads((tmp_path / "data/split/stats.json").read_text())
    assert set(stats) == {"mean", "std", "count"} and stats["count"] == 2
    assert stats["mean"] == pytest.approx([0.5, 0.0, 0.5], abs=1e-6)
    assert stats["std"] == pytest.approx([0.5, 0.0, 0.5], abs=1e-6)
    assert "over 2 train images" in out
    # a split that changes train drops the stale stats
    Image.new("RGB", (20, 20), (0, 255, 0)).save(tmp_path / "data/original/b/green.png")
    code, out, err = cli(["-C", str(tmp_path), "-q", "split", "--valid", "0"], capsys)
    assert code == 0 and "removed the stale stats.json" in out
    assert not (tmp_path / "data/split/stats.json").exists()


def test_stats_before_split_exit_2(tmp_path, capsys):
    code, _, err = cli(["-C", str(tmp_path), "stats"], capsys)
    assert code == 2 and "run `datacurate split` first" in err
