"""Near-duplicate clusters, label conflicts and leaks on real image files (datacurate.clean.neardup)."""

from __future__ import annotations

import io
import random
from pathlib import Path

import imagehash
import numpy as np
import pytest
from conftest import encode, photo, write
from PIL import Image, ImageDraw, ImageEnhance

from datacurate.clean.model import Item
from datacurate.clean.neardup import DEFAULT_THRESHOLD, find_near_duplicates
from datacurate.core.errors import UserError
from datacurate.core.imageio import inspect_bytes, inspect_file

K = DEFAULT_THRESHOLD


def exif_rotated(im: Image.Image) -> bytes:
    """Pixels stored turned a quarter, with EXIF orientation 6 saying how to show them upright."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(im.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=92, exif=exif)


def watermarked(im: Image.Image) -> Image.Image:
    """A small semi-transparent text mark in the corner, as stock sites stamp."""
    im = im.convert("RGBA")
    over = Image.new("RGBA", im.size, (0, 0, 0, 0))
    ImageDraw.Draw(over).text((im.width - 70, im.height - 16), "© stock", fill=(255, 255, 255, 160))
    return Image.alpha_composite(im, over).convert("RGB")


VARIANTS = {
    "resized": lambda im: encode(im.resize((im.width // 2, im.height // 2), Image.LANCZOS), "PNG"),
    "recompressed": lambda im: encode(im, "JPEG", quality=40),
    "brighter": lambda im: encode(ImageEnhance.Brightness(im).enhance(1.15), "JPEG", quality=90),
    "watermarked": lambda im: encode(watermarked(im), "JPEG", quality=90),
    "exif-rotated": exif_rotated,
}


def item(root: Path, rel: str, data: bytes, kind: str = "phash") -> Item:
    """Write a real file and describe it as clean's scan would."""
    path = write(root / rel, data)
    found = inspect_file(path, hash_kinds=(kind,))
    assert found.ok, found.detail
    source = "test" if rel.startswith("test/") else rel.split("/")[0]
    klass = rel.split("/")[1] if source != "test" else ""
    return Item(rel, klass, source, found.width, found.height, found.size, found.sha256, found.hashes[kind])


def by_path(decisions):
    return {d.path: d for d in decisions}


def test_planted_groups_found_and_distinct_photos_kept(tmp_path: Path) -> None:
    items, planted = [], {}
    for g in range(4):
        im = photo(240, 180, seed=100 + g)
        keeper = f"original/cls{g % 2}/photo{g}.png"
        items.append(item(tmp_path, keeper, encode(im, "PNG")))
        for name, make in VARIANTS.items():
            rel = f"scraped/cls{g % 2}/photo{g}-{name}.jpg"
            items.append(item(tmp_path, rel, make(im)))
            planted[rel] = keeper
    for s in range(8):  # different photographs: nothing may pair them up
        items.append(item(tmp_path, f"original/cls{s % 2}/other{s}.png", encode(photo(240, 180, seed=200 + s), "PNG")))
    random.Random(0).shuffle(items)

    decisions, pairs = find_near_duplicates(items, [], K, "phash")

    found = by_path(decisions)
    assert set(found) == set(planted), "every planted copy found, no distinct photo set aside"
    for rel, keeper in planted.items():
        d = found[rel]
        assert (d.reason, d.of) == ("near-duplicate", keeper)
        assert 0 <= d.distance <= K
    assert {(p.a, p.b) for p in pairs} == {(k, r) for r, k in planted.items()}
    assert all(p.kind == "near-duplicate" and p.hash == "phash" for p in pairs)


def synthetic(path: str, klass: str, source: str, code: int, pixels: int = 100, size: int = 1000) -> Item:
    return Item(path, klass, source, pixels, 1, size, path, f"{code:016x}")


def flip(code: int, n: int, start: int = 0) -> int:
    return code ^ sum(1 << (start + b) for b in range(n))


@pytest.mark.parametrize("k", [0, 4, 10, 17])
def test_threshold_exact_at_the_boundary(k: int) -> None:
    base = 0x0F0F_3C3C_A5A5_9966
    items = [
        synthetic("original/a/keeper.png", "a", "original", base, pixels=1000),
        synthetic("scraped/a/at-k.jpg", "a", "scraped", flip(base, k)),
        synthetic("scraped/a/past-k.jpg", "a", "scraped", flip(base, k + 1, start=40) if k + 1 <= 24 else flip(base, k + 1)),
    ]
    decisions, pairs = find_near_duplicates(items, [], k, "phash")
    assert [(d.path, d.of, d.distance) for d in decisions] == [("scraped/a/at-k.jpg", "original/a/keeper.png", k)]
    assert [(p.a, p.b, p.distance) for p in pairs] == [("original/a/keeper.png", "scraped/a/at-k.jpg", k)]


def test_no_transitive_chains() -> None:
    a = 0
    b = flip(a, 6)            # 6 from a
    c = flip(b, 6, start=30)  # 6 from b, 12 from a
    items = [synthetic("original/x/a.png", "x", "original", a, pixels=300),
             synthetic("original/x/b.png", "x", "original", b, pixels=200),
             synthetic("original/x/c.png", "x", "original", c, pixels=100)]
    decisions, _ = find_near_duplicates(items, [], 10, "phash")
    assert [(d.path, d.of) for d in decisions] == [("original/x/b.png", "original/x/a.png")], "c is 12 bits from a: kept"


def test_keeper_rule_best_copy_first_original_only_breaks_ties() -> None:
    code = 0x1234_5678_9ABC_DEF0
    items = [synthetic("scraped/x/big.jpg", "x", "scraped", code, pixels=10_000, size=99_999),
             synthetic("original/x/small.jpg", "x", "original", flip(code, 2), pixels=100),
             synthetic("original/x/small-big-file.jpg", "x", "original", flip(code, 3), pixels=100, size=5000)]
    decisions, _ = find_near_duplicates(items, [], 10, "phash")
    assert {d.path: d.of for d in decisions} == {"original/x/small.jpg": "scraped/x/big.jpg",
                                                 "original/x/small-big-file.jpg": "scraped/x/big.jpg"}
    same = [synthetic("scraped/x/s.jpg", "x", "scraped", code, pixels=100, size=1000),
            synthetic("original/x/o.jpg", "x", "original", flip(code, 1), pixels=100, size=1000)]
    assert [(d.path, d.of) for d in find_near_duplicates(same, [], 10, "phash")[0]] == [("scraped/x/s.jpg", "original/x/o.jpg")]


def test_keeper_rule_colour_over_gray_over_bilevel_then_depth_then_compression() -> None:
    from datacurate.clean.model import keeper_key

    def it(name, mode="RGB", gray=False, pixels=100, size=1000, source="original"):
        return Item(f"{source}/x/{name}", "x", source, pixels, 1, size, name, "0" * 16, mode, gray)

    ranked = sorted([it("fax.tif", "1", pixels=90_000, size=50_000), it("gray16.png", "I;16", True, pixels=4000),
                     it("gray8.png", "L", True, pixels=9000), it("colour-small.jpg", pixels=400, size=100),
                     it("colour-q95.jpg", pixels=400, size=300), it("colour-scraped.jpg", pixels=400, size=300, source="scraped")],
                    key=keeper_key)
    assert [i.sha256 for i in ranked] == ["colour-q95.jpg", "colour-scraped.jpg", "colour-small.jpg", "gray16.png",
                                          "gray8.png", "fax.tif"]


def test_one_copy_kept_per_class_when_the_keeper_lies_in_another_class() -> None:
    code = 0x0F0F_0000_FFFF_1234
    items = [synthetic("original/a/best.png", "a", "original", code, pixels=10_000),
             synthetic("original/b/copy1.jpg", "b", "original", code, pixels=5000, size=900),
             synthetic("original/b/copy2.jpg", "b", "original", code, pixels=5000, size=800),
             synthetic("original/b/small1.jpg", "b", "original", flip(code, 2), pixels=100),
             synthetic("original/b/small2.jpg", "b", "original", flip(code, 3), pixels=90),
             synthetic("original/b/small3.jpg", "b", "original", flip(code, 4), pixels=80)]
    decisions, pairs = find_near_duplicates(items, [], 10, "phash")
    assert {d.path: (d.reason, d.of) for d in decisions} == {
        f"original/b/{n}": ("near-duplicate", "original/b/copy1.jpg") for n in ("copy2.jpg", "small1.jpg", "small2.jpg", "small3.jpg")}
    assert [(p.a, p.b) for p in pairs if p.kind == "conflict-reported"] == [("original/a/best.png", "original/b/copy1.jpg")]


def test_conflicts_scraped_moves_originals_are_reported(tmp_path: Path) -> None:
    im = photo(200, 150, seed=7)
    keeper = item(tmp_path, "original/猫/cat.png", encode(im, "PNG"))
    scraped_other = item(tmp_path, "scraped/可回收物_易拉罐/cat-copy.jpg", encode(im.resize((100, 75)), "JPEG", quality=70))
    original_other = item(tmp_path, "original/狗/cat-again.jpg", encode(im, "JPEG", quality=60))
    scraped_same = item(tmp_path, "scraped/猫/cat-small.jpg", encode(im.resize((120, 90)), "JPEG", quality=80))

    decisions, pairs = find_near_duplicates([original_other, scraped_same, scraped_other, keeper], [], K, "phash")

    found = by_path(decisions)
    assert found["scraped/可回收物_易拉罐/cat-copy.jpg"].reason == "label-conflict"
    assert found["scraped/可回收物_易拉罐/cat-copy.jpg"].of == "original/猫/cat.png"
    assert "可回收物_易拉罐" in found["scraped/可回收物_易拉罐/cat-copy.jpg"].detail
    assert found["scraped/猫/cat-small.jpg"].reason == "near-duplicate"
    assert "original/狗/cat-again.jpg" not in found, "an original under another class never moves"
    assert "original/猫/cat.png" not in found
    kinds = {p.b: (p.a, p.kind) for p in pairs}
    assert kinds["original/狗/cat-again.jpg"] == ("original/猫/cat.png", "conflict-reported")
    assert kinds["scraped/可回收物_易拉罐/cat-copy.jpg"] == ("original/猫/cat.png", "label-conflict")


def test_scraped_copies_under_two_classes_without_an_original() -> None:
    code = 0xFFFF_0000_FFFF_0000
    items = [synthetic("scraped/a/1.jpg", "a", "scraped", code, pixels=500),
             synthetic("scraped/b/2.jpg", "b", "scraped", flip(code, 4))]
    decisions, pairs = find_near_duplicates(items, [], 10, "phash")
    assert [(d.path, d.reason, d.of) for d in decisions] == [("scraped/b/2.jpg", "label-conflict", "scraped/a/1.jpg")]


def test_leaks_against_the_test_set(tmp_path: Path) -> None:
    held = photo(220, 160, seed=31)
    tests = [item(tmp_path, "test/held.png", encode(held, "PNG")),
             item(tmp_path, "test/other.png", encode(photo(220, 160, seed=32), "PNG"))]
    leak_orig = item(tmp_path, "original/a/held-copy.jpg", encode(held, "JPEG", quality=75))
    leak_scraped = item(tmp_path, "scraped/b/held-small.jpg", encode(held.resize((110, 80)), "JPEG", quality=85))
    clean = item(tmp_path, "original/a/fine.png", encode(photo(220, 160, seed=33), "PNG"))

    decisions, pairs = find_near_duplicates([leak_orig, leak_scraped, clean], tests, K, "phash")

    assert {d.path: (d.reason, d.of) for d in decisions} == {
        "original/a/held-copy.jpg": ("test-leak", "test/held.png"),
        "scraped/b/held-small.jpg": ("test-leak", "test/held.png"),
    }, "leaked files are set aside once, as leaks (not also as near-duplicates of each other)"
    assert {(p.a, p.b, p.kind) for p in pairs} == {
        ("test/held.png", "original/a/held-copy.jpg", "test-leak"),
        ("test/held.png", "scraped/b/held-small.jpg", "test-leak"),
    }
    assert not any(d.path.startswith("test/") for d in decisions)


def test_items_without_hash_are_skipped_and_output_is_deterministic() -> None:
    code = 0xAAAA_5555_AAAA_5555
    items = [synthetic(f"scraped/x/{i}.jpg", "x", "scraped", flip(code, i % 5), pixels=100 + i) for i in range(30)]
    items.append(Item("scraped/x/nohash.jpg", "x", "scraped", 1, 1, 1, "z", None))
    first = find_near_duplicates(items, [], 10, "phash")
    random.Random(5).shuffle(items)
    assert find_near_duplicates(items, [], 10, "phash") == first
    assert len(first[0]) == 29 and all(d.of == "scraped/x/29.jpg" for d in first[0])


@pytest.mark.parametrize("bad", [-1, 33, 2.5, "10"])
def test_bad_threshold_is_a_user_error(bad) -> None:
    with pytest.raises(UserError, match="threshold"):
        find_near_duplicates([], [], bad, "phash")


def sixteen_bit_png(seed: int) -> bytes:
    """A different 16-bit photo-like picture per seed, every value above 255 (so clipping whitens it)."""
    im = photo(128, 96, seed=seed, mode="L")
    arr = 20_000 + np.asarray(im, dtype=np.float64) / 255.0 * 45_000
    return encode(Image.fromarray(arr.astype(np.uint16)), "PNG")


@pytest.mark.parametrize("kind", ["phash", "dhash", "whash", "ahash"])
def test_sixteen_bit_trap(tmp_path: Path, kind: str) -> None:
    a, b = sixteen_bit_png(1), sixteen_bit_png(2)
    clipped = [Image.open(write(tmp_path / f"{n}.png", data)).convert("L") for n, data in (("a", a), ("b", b))]
    assert clipped[0].getextrema() == clipped[1].getextrema() == (255, 255), "the trap: clipping makes both white"
    ia, ib = (inspect_bytes(data, hash_kinds=(kind,)) for data in (a, b))
    assert ia.ok and ib.ok and Image.open(tmp_path / "a.png").mode.startswith("I")
    dist = imagehash.hex_to_hash(ia.hashes[kind]) - imagehash.hex_to_hash(ib.hashes[kind])
    assert dist > K, f"two different 16-bit images hash {dist} bits apart with {kind}"
    items = [item(tmp_path, "original/x/a.png", a, kind), item(tmp_path, "original/x/b.png", b, kind)]
    assert find_near_duplicates(items, [], K, kind) == ([], [])


def test_scraped_copy_matching_an_original_of_its_own_class_is_a_near_duplicate() -> None:
    code = 0x0123_4567_89AB_CDEF
    items = [synthetic("original/狗/misfiled.png", "狗", "original", code, size=2000),   # keeper: larger file
             synthetic("original/猫/cat.png", "猫", "original", flip(code, 3), size=1000),
             synthetic("scraped/猫/cat-copy.jpg", "猫", "scraped", flip(code, 5), size=10),
             synthetic("scraped/鸟/bird.jpg", "鸟", "scraped", flip(code, 4, start=20), size=10)]
    decisions, pairs = find_near_duplicates(items, [], 10, "phash")
    assert {d.path: (d.reason, d.of, d.distance) for d in decisions} == {
        "scraped/猫/cat-copy.jpg": ("near-duplicate", "original/猫/cat.png", 2),
        "scraped/鸟/bird.jpg": ("label-conflict", "original/狗/misfiled.png", 4),
    }
    assert ("original/狗/misfiled.png", "original/猫/cat.png", "conflict-reported") in {(p.a, p.b, p.kind) for p in pairs}


def test_float_images_in_unit_range_are_scaled_not_blackened(tmp_path: Path) -> None:
    """32-bit float TIFFs holding [0, 1] must hash as the pictures they are, not as black."""
    hashes = []
    for seed in (1, 2):
        arr = np.asarray(photo(128, 96, seed=seed, mode="L"), dtype=np.float32) / 255.0
        data = encode(Image.fromarray(arr, "F"), "TIFF")
        found = inspect_bytes(data)
        assert found.ok and Image.open(write(tmp_path / f"{seed}.tif", data)).mode == "F"
        hashes.append(imagehash.hex_to_hash(found.hashes["phash"]))
    assert hashes[0] - hashes[1] > K
    same = inspect_bytes(encode(photo(128, 96, seed=1, mode="L"), "PNG")).hashes["phash"]
    assert imagehash.hex_to_hash(same) - hashes[0] <= 2, "the float copy hashes like the 8-bit picture"


def test_colour_key_transparency_goes_on_the_background() -> None:
    """A grayscale PNG whose tRNS key hides most of it hashes like the fixed background, not the key colour."""
    from datacurate.core.imageio import to_rgb

    arr = np.zeros((64, 64), np.uint8)
    arr[20:40, 20:40] = 200
    im = Image.open(io.BytesIO(encode(Image.fromarray(arr), "PNG", transparency=0)))
    rgb = to_rgb(im)
    assert rgb.getpixel((0, 0)) == (255, 255, 255) and rgb.getpixel((30, 30)) == (200, 200, 200)
