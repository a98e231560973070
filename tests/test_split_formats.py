"""`split --convert jpeg|png` (formats timm and fastai skip, placed converted) and `split --manifest csv|jsonl`
(what was placed where, with Hugging Face imagefolder metadata per split)."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import run_cli
from datacurate.demo.data import draw

TIMM = (".jpg", ".jpeg", ".png")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def odd_formats(tmp_path_factory) -> Path:
    """A demo workspace with a WebP (EXIF-rotated), a CMYK TIFF, a 16-bit TIFF, a palette BMP and a scraped WebP
    whose provenance names a licence; cleaned."""
    ws = tmp_path_factory.mktemp("formats") / "ws"
    run_cli("demo-data", str(ws), "--per-class", "8", check=True)
    rng = random.Random(11)
    circle = ws / "data" / "original" / "circle"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to show: the 160x120 picture is 120x160 upright
    draw("circle", rng).save(circle / "rotated.webp", "WEBP", exif=exif)
    draw("circle", rng).convert("CMYK").save(circle / "cmyk.tif", "TIFF")
    gray = np.asarray(draw("circle", rng).convert("L"), dtype=np.uint16) * 257
    Image.frombytes("I;16", (gray.shape[1], gray.shape[0]), gray.astype("<u2").tobytes()).save(circle / "deep.tif")
    draw("circle", rng).quantize(16).save(circle / "palette.bmp")
    scraped = ws / "data" / "scraped" / "circle"
    scraped.mkdir(parents=True)
    draw("circle", rng).save(scraped / "web.webp", "WEBP")
    run_cli("-C", str(ws), "clean", check=True)
    from datacurate.core.catalog import Catalog

    with Catalog(ws / ".datacurate" / "catalog.sqlite") as cat:
        cat.add_provenance(**{"class": "circle", "engine": "wikimedia", "query": "circle", "image_url": "https://x.test/web.webp",
                              "page_url": "https://x.test/File:web", "sha256": _sha(scraped / "web.webp"),
                              "path": "data/scraped/circle/web.webp", "license": "by-sa", "license_version": "4.0"})
    return ws


def _placed(ws: Path) -> list[Path]:
    return sorted(p for s in ("train", "valid") for p in (ws / "data" / "split" / s).rglob("*")
                  if p.is_file() and not p.name.startswith("metadata."))


def test_convert_jpeg_with_csv_manifest_then_again_then_jsonl(odd_formats: Path):
    ws = odd_formats
    originals = {p: _sha(p) for p in (ws / "data").rglob("*") if p.is_file() and "/split/" not in p.as_posix()}
    dry = run_cli("-C", str(ws), "split", "--convert", "jpeg", "--manifest", "csv", "--dry-run", check=True)
    assert "would convert 5 file(s) to JPEG" in dry.stdout and not (ws / "data" / "split").exists()

    first = run_cli("-C", str(ws), "split", "--convert", "jpeg", "--manifest", "csv", check=True)
    assert "converted 5 file(s) to JPEG (5 converted now" in first.stdout
    placed = _placed(ws)
    assert placed and all(p.suffix in TIMM for p in placed)  # nothing timm's reader would skip
    made = {p.name: p for p in placed if p.stem in ("rotated", "cmyk", "deep", "palette", "web")}
    assert sorted(made) == ["cmyk.jpg", "deep.jpg", "palette.jpg", "rotated.jpg", "web.jpg"]
    for p in made.values():
        assert not p.is_symlink()
        with Image.open(p) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
    with Image.open(made["rotated.jpg"]) as im:
        assert im.size == (120, 160)  # EXIF orientation applied
    with Image.open(made["deep.jpg"]) as im:
        assert 30 < np.asarray(im).mean() < 250  # 16-bit scaled, not clipped to white
    assert {p: _sha(p) for p in originals} == originals  # the originals are untouched

    table = pd.read_csv(ws / "data" / "split" / "manifest.csv", keep_default_na=False)
    assert list(table.columns) == ["path", "label", "split", "sha256", "source", "licence"]
    assert len(table) == len(placed) and set(table["split"]) == {"train", "valid"}
    for row in table.itertuples():
        assert _sha(ws / "data" / "split" / row.path) == row.sha256
    web = table[table["path"].str.endswith("/web.jpg")].iloc[0]
    assert (web["source"], web["licence"], web["label"]) == ("https://x.test/File:web", "by-sa 4.0", "circle")
    assert set(table[~table["path"].str.endswith("/web.jpg")]["source"]) == {"original"}
    for split in ("train", "valid"):  # Hugging Face imagefolder: file_name relative to the split folder
        meta = pd.read_json(ws / "data" / "split" / split / "metadata.jsonl", lines=True, dtype=False)
        assert list(meta.columns) == ["file_name", "label", "sha256", "source", "licence"]
        assert not (ws / "data" / "split" / split / "metadata.csv").exists()
        assert all((ws / "data" / "split" / split / f).is_file() for f in meta["file_name"])
        assert len(meta) == (table["split"] == split).sum()

    cache = {p: p.stat().st_mtime_ns for p in (ws / "data" / "split" / ".converted").rglob("*.jpg")}
    inodes = {p.name: p.stat().st_ino for p in made.values()}
    again = run_cli("-C", str(ws), "split", "--convert", "jpeg", "--manifest", "csv", check=True)
    assert "converted 5 file(s) to JPEG (0 converted now" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in cache} == cache  # not converted again
    assert {p.name: p.stat().st_ino for p in _placed(ws) if p.name in inodes} == inodes

    jsonl = run_cli("-C", str(ws), "split", "--convert", "png", "--manifest", "jsonl", "--link", "symlink", check=True)
    assert "converted 5 file(s) to PNG (5 converted now" in jsonl.stdout
    assert not (ws / "data" / "split" / "manifest.csv").exists()
    lines = [json.loads(x) for x in (ws / "data" / "split" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {x["path"].rsplit("/", 1)[-1] for x in lines} >= {"cmyk.png", "deep.png", "palette.png", "rotated.png", "web.png"}
    for x in lines:
        p = ws / "data" / "split" / x["path"]
        assert p.is_symlink() != x["path"].endswith(("cmyk.png", "deep.png", "palette.png", "rotated.png", "web.png"))
    meta = [json.loads(x) for x in (ws / "data" / "split" / "train" / "metadata.jsonl").read_text(encoding="utf-8").splitlines()]
    assert meta and all((ws / "data" / "split" / "train" / m["file_name"]).exists() for m in meta)
    assert not list((ws / "data" / "split" / ".converted").rglob("*.jpg"))  # the JPEGs no split uses went

    plain = run_cli("-C", str(ws), "split", check=True)
    assert "convert" not in plain.stdout and not (ws / "data" / "split" / "manifest.jsonl").exists()
    assert {p.suffix for p in _placed(ws)} >= {".webp", ".tif", ".bmp"}


def test_python_function_and_bad_values(odd_formats: Path, tmp_path: Path):
    from datacurate.split import SplitOptions, split_dataset
    from datacurate.core.workspace import Workspace

    ws = Workspace.open(odd_formats)
    res = split_dataset(ws, SplitOptions.from_mapping({"convert": "png", "manifest": "csv"}))
    assert res.converted == 5 and res.manifest == ws.split_dir / "manifest.csv"
    assert res.summary()["convert"] == "png"
    for args, message in ((["--jpeg-quality", "0"], "split: jpeg_quality must be a whole number from 1 to 100"),
                          (["--convert", "gif"], "Invalid value for '--convert'")):
        proc = run_cli("-C", str(odd_formats), "split", *args)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    (tmp_path / "datacurate.yaml").write_text("split:\n  manifest: parquet\n", encoding="utf-8")
    (tmp_path / "data" / "original").mkdir(parents=True)
    proc = run_cli("-C", str(tmp_path), "split")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "split: manifest must be one of csv, jsonl, none, got 'parquet'" in lines[0]


def test_hugging_face_imagefolder_loads_the_split(odd_formats: Path, tmp_path: Path, monkeypatch):
    """`datasets.load_dataset("imagefolder")` reads what `split --manifest csv` wrote: every file, its class name
    as written (also 007 and Chinese), the scraped image's licence, whichever split holds it."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets", reason="optional: `pip install datasets` to load the split with Hugging Face")
    ws = tmp_path / "ws"
    import shutil

    shutil.copytree(odd_formats, ws, symlinks=True, ignore=shutil.ignore_patterns("split"))
    numbered = ws / "data" / "original" / "007"
    numbered.mkdir()
    for i in range(6):
        Image.fromarray(np.full((40, 48, 3), 20 + 35 * i, np.uint8)).save(numbered / f"{i}.png")
    run_cli("-C", str(ws), "clean", check=True)
    run_cli("-C", str(ws), "split", "--manifest", "csv", "--convert", "jpeg", check=True)
    table = pd.read_csv(ws / "data" / "split" / "manifest.csv", keep_default_na=False, dtype=str)
    ds = datasets.load_dataset("imagefolder", data_dir=str(ws / "data" / "split"), cache_dir=str(tmp_path / "hf-cache"))
    assert sorted(ds) == ["train", "validation"]
    for name, split in (("train", "train"), ("validation", "valid")):
        part = ds[name]
        assert part.features["label"].dtype in ("string", "large_string")
        assert part.features["licence"].dtype in ("string", "large_string")
        want = table[table["split"] == split]
        assert sorted(zip(part["label"], part["sha256"])) == sorted(zip(want["label"], want["sha256"]))
    rows = [r for name in ds for r in ds[name].select_columns(["label", "licence", "source"])]
    assert {r["label"] for r in rows} == set(table["label"]) >= {"007", "条纹_stripes"}
    assert [r["licence"] for r in rows if r["source"] != "original"] == ["by-sa 4.0"]
    assert ds["train"][0]["image"].size[0] > 0
