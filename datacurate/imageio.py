"""The one place that opens, verifies and decodes images.

`inspect_bytes` decodes a file fully, once, and sorts it into ok or a reason; in the same decode
it computes perceptual hashes on an input made right first (EXIF orientation applied, alpha
composited on a fixed background, 16-bit scaled rather than clipped, first frame of animations).
JPEGs are decoded with draft scaling: libjpeg still reads the whole entropy-coded stream (so a
truncated file is still caught) but skips most of the inverse DCT work.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

ImageFile.LOAD_TRUNCATED_IMAGES = False

# Reasons a file is set aside, in the order they are checked.
REASONS = (
    "empty", "unreadable", "not-an-image", "unsupported", "too-large", "truncated", "corrupt",
    "too-small", "odd-aspect",
)
# Formats torchvision's default loader reads, and the extensions ImageFolder accepts for each.
TRAINABLE_EXTENSIONS = {
    "JPEG": (".jpg", ".jpeg"),
    "MPO": (".jpg", ".jpeg"),
    "PNG": (".png",),
    "WEBP": (".webp",),
    "BMP": (".bmp",),
    "TIFF": (".tif", ".tiff"),
    "PPM": (".ppm", ".pgm"),
}
# Formats we keep by converting the first frame to PNG (ImageFolder ignores their extension).
CONVERTIBLE = {"GIF"}
IMAGEFOLDER_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
HASH_KINDS = ("phash", "dhash", "whash", "ahash")
BACKGROUND = (255, 255, 255)
DRAFT_SIZE = 128


@dataclass
class Limits:
    """Thresholds for the integrity check."""

    max_pixels: int = Image.MAX_IMAGE_PIXELS or 89_478_485
    min_size: int = 32
    max_aspect: float = 10.0


@dataclass
class Inspection:
    """What one decode learned about a file."""

    size: int = 0
    sha256: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    mode: str | None = None
    frames: int = 1
    reason: str | None = None  # None: the file is usable
    detail: str = ""
    hashes: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reason is None

    def true_extension(self) -> str | None:
        """The extension the file should carry, by content (.png for formats we convert)."""
        if self.format in TRAINABLE_EXTENSIONS:
            return TRAINABLE_EXTENSIONS[self.format][0]
        if self.format in CONVERTIBLE:
            return ".png"
        return None

    def extension_ok(self, name: str) -> bool:
        """Whether `name`'s extension matches the content and ImageFolder will load it."""
        return Path(name).suffix.lower() in TRAINABLE_EXTENSIONS.get(self.format or "", ())


def inspect_file(path: str | os.PathLike, limits: Limits = Limits(), hash_kinds=("phash",)) -> Inspection:
    """Read and fully decode one file; never raises for a bad file."""
    try:
        data = Path(path).read_bytes()
    except (PermissionError, IsADirectoryError, OSError) as exc:
        return Inspection(reason="unreadable", detail=f"{type(exc).__name__}: {exc.strerror or exc}")
    return inspect_bytes(data, limits, hash_kinds)


def inspect_bytes(data: bytes, limits: Limits = Limits(), hash_kinds=("phash",)) -> Inspection:
    """Fully decode image bytes once; sort into ok or a reason; hash what decodes."""
    out = Inspection(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    if not data:
        return _fail(out, "empty", "file has no bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        return _fail(out, "too-large", str(exc))
    except UnidentifiedImageError:
        return _fail(out, "not-an-image", f"not an image: {_sniff(data)}")
    except Exception as exc:  # noqa: BLE001 - a malformed header can raise almost anything
        return _fail(out, "corrupt", f"{type(exc).__name__}: {exc}")
    out.format, out.mode = im.format, im.mode
    out.width, out.height = im.size
    out.frames = getattr(im, "n_frames", 1) if im.format == "GIF" else 1
    if im.format not in TRAINABLE_EXTENSIONS and im.format not in CONVERTIBLE:
        return _fail(out, "unsupported", f"{im.format} cannot be read by the trainer")
    if out.width * out.height > limits.max_pixels:
        return _fail(out, *check_limits(out.width, out.height, limits))
    try:
        if im.format == "PNG":
            im.verify()  # PNG chunk CRCs; load() alone does not check them all
            im = Image.open(io.BytesIO(data))
        if im.format == "JPEG":
            im.draft("L" if im.mode in ("L", "RGB", "YCbCr") else im.mode, (DRAFT_SIZE, DRAFT_SIZE))
        im.load()
    except Exception as exc:  # noqa: BLE001
        msg = f"{type(exc).__name__}: {exc}"
        return _fail(out, "truncated" if "truncated" in str(exc).lower() or isinstance(exc, EOFError) else "corrupt", msg)
    problem = check_limits(out.width, out.height, limits)
    if problem:
        return _fail(out, *problem)
    try:
        out.hashes = compute_hashes(hash_input(im), hash_kinds)
    except Exception as exc:  # noqa: BLE001
        return _fail(out, "corrupt", f"{type(exc).__name__}: {exc}")
    return out


LIMIT_REASONS = ("too-large", "too-small", "odd-aspect")


def check_limits(width: int, height: int, limits: Limits) -> tuple[str, str] | None:
    """(reason, detail) when a size limit is broken; clean re-checks these from the catalog each run."""
    if width * height > limits.max_pixels:
        return "too-large", f"{width}x{height} exceeds {limits.max_pixels} pixels"
    short, long = sorted((width, height))
    if short < limits.min_size:
        return "too-small", f"{width}x{height} is under {limits.min_size} px on the short side"
    if long / max(short, 1) > limits.max_aspect:
        return "odd-aspect", f"{width}x{height} is more than {limits.max_aspect:g}:1"
    return None


def _fail(out: Inspection, reason: str, detail: str) -> Inspection:
    out.reason, out.detail = reason, detail
    return out


def _sniff(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    for marker, name in ((b"<!doctype html", "HTML"), (b"<html", "HTML"), (b"<svg", "SVG"), (b"<?xml", "XML/SVG"),
                         (b"%pdf", "PDF"), (b"{", "JSON"), (b"pk\x03\x04", "ZIP")):
        if head.startswith(marker) or (marker in (b"<svg", b"<html") and marker in head):
            return name
    try:
        data[:512].decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unknown binary data"


def to_rgb(im: Image.Image) -> Image.Image:
    """RGB the right way: EXIF orientation, alpha on a fixed background, 16-bit scaled, frame 0."""
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(arr / _full_scale(im.mode, arr) * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if im.mode in ("P", "PA") or (im.mode in ("L", "RGB") and "transparency" in im.info):
        im = im.convert("RGBA")  # palette and tRNS colour-key transparency become alpha
    if im.mode in ("RGBA", "LA", "La", "RGBa"):
        im = im.convert("RGBA")
        canvas = Image.new("RGB", im.size, BACKGROUND)
        canvas.paste(im, mask=im.getchannel("A"))
        return canvas
    return im.convert("RGB") if im.mode != "RGB" else im


def _full_scale(mode: str, arr: np.ndarray) -> float:
    """The value that maps to white: 16-bit range, 8-bit range, [0, 1] floats, or wider ints."""
    top = float(arr.max()) if arr.size else 0.0
    if mode.startswith("I;16"):
        return 65535.0
    if mode == "F" and top <= 1.0 and float(arr.min()) >= 0.0:
        return 1.0
    if top <= 255:
        return 255.0
    return 65535.0 if top <= 65535 else top


def hash_input(im: Image.Image) -> Image.Image:
    """The image a perceptual hash should see (see to_rgb)."""
    return to_rgb(im)


def compute_hashes(im: Image.Image, kinds=("phash",)) -> dict[str, str]:
    """Hex perceptual hashes (64-bit) of a prepared image, by imagehash."""
    import imagehash

    funcs = {"phash": imagehash.phash, "dhash": imagehash.dhash, "whash": imagehash.whash,
             "ahash": imagehash.average_hash}
    return {k: str(funcs[k](im)) for k in kinds}


def load_rgb(path: str | os.PathLike, target: int | None = None) -> Image.Image:
    """Open an image for training/prediction: draft-decoded JPEG near `target` px, then to_rgb."""
    im = Image.open(path)
    if target and im.format == "JPEG":
        im.draft("RGB", (target, target))
    im.load()
    return to_rgb(im)
