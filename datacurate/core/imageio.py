"""The one place that opens, verifies and decodes images.

`inspect_bytes` decodes a file fully, once, and sorts it into ok or a reason; in the same decode
it computes perceptual hashes on an input made right first (EXIF orientation applied, alpha
composited on a fixed background, 16-bit scaled rather than clipped, first frame of animations).
JPEGs are decoded with draft scaling: libjpeg still reads the whole entropy-coded stream (so a
truncated file is still caught) but skips most of the inverse DCT work.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import os
import re
import sys
import tempfile
import threading
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from datacurate.core.decodechild import inspect_in_child

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
    max_bytes: int = 512 * 2**20          # files past this are refused before they are read
    convertible: tuple[str, ...] = tuple(sorted(CONVERTIBLE))  # formats kept by converting to PNG ("*": any)

    def converts(self, fmt: str | None) -> bool:
        """Whether a file of this format is kept by converting it to PNG."""
        return fmt in self.convertible or ("*" in self.convertible and fmt is not None and fmt not in TRAINABLE_EXTENSIONS)


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
    quality: dict[str, float] = field(default_factory=dict)  # see quality_metrics
    noise: list[str] = field(default_factory=list)  # what Pillow and its C libraries said while decoding

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


IN_MEMORY = 16 << 20  # files up to this size are read once into memory; larger ones are streamed twice


def inspect_file(path: str | os.PathLike, limits: Limits = Limits(), hash_kinds=("phash",)) -> Inspection:
    """Stream the sha256, refuse files over limits.max_bytes, then decode once; never raises for a bad file.

    With other threads running, the decode happens in a child process (datacurate.core.decodechild), so
    that what the C libraries print is caught all the same: the verdict does not depend on threads.
    """
    if not fd2_is_ours():
        return _from_child("file", path, limits, hash_kinds)
    out = Inspection()
    data = None
    try:
        with open(path, "rb") as fh:
            out.size = os.fstat(fh.fileno()).st_size
            if out.size <= min(IN_MEMORY, limits.max_bytes):  # read once: hashed and decoded from memory
                data = fh.read()
                out.size, out.sha256 = len(data), hashlib.sha256(data).hexdigest()
            else:
                out.sha256 = _stream_sha256(fh)
    except OSError as exc:
        return _fail(out, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}")
    if out.size == 0:
        return _fail(out, "empty", "file has no bytes")
    if out.size > limits.max_bytes:
        return _fail(out, "too-large", f"{out.size} bytes exceeds max_bytes {limits.max_bytes}; not decoded")
    return _inspect((lambda: io.BytesIO(data)) if data is not None else (lambda: open(path, "rb")), out, limits, hash_kinds)


def inspect_bytes(data: bytes, limits: Limits = Limits(), hash_kinds=("phash",)) -> Inspection:
    """Fully decode image bytes once; sort into ok or a reason; hash what decodes (see inspect_file on threads)."""
    if data and not fd2_is_ours():
        return _from_child("bytes", data, limits, hash_kinds)
    out = Inspection(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    if not data:
        return _fail(out, "empty", "file has no bytes")
    return _inspect(lambda: io.BytesIO(data), out, limits, hash_kinds)


def _from_child(kind: str, arg, limits: Limits, hash_kinds) -> Inspection:
    found = inspect_in_child(kind, arg, limits, hash_kinds)
    if "sha256" not in found:  # the decoder crashed on it: what this process can tell without decoding
        out = Inspection()
        if kind == "bytes":
            out.size, out.sha256 = len(arg), hashlib.sha256(arg).hexdigest()
        else:
            out.size, out.sha256 = os.path.getsize(arg), _sha256_of(arg)
        return _fail(out, found["reason"], found["detail"])
    return Inspection(**found)


def _sha256_of(path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return _stream_sha256(fh)
    except OSError:
        return None


def _stream_sha256(fh) -> str:
    digest = hashlib.sha256()
    while chunk := fh.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _inspect(opener, out: Inspection, limits: Limits, hash_kinds) -> Inspection:
    """The decode, with every warning Pillow and its C libraries emit caught into out.noise."""
    with captured_noise() as noise:
        _decode(opener, out, limits, hash_kinds)
    out.noise = noise
    if out.ok and noise:
        damage = [m for m in noise if is_damage(m)]
        if damage:
            _fail(out, "corrupt", f"decodes only with damage warnings: {_short(damage)}")
    if noise:
        out.detail = (out.detail + "; " if out.detail else "") + f"library said: {_short(noise)}"
    return out


def _decode(opener, out: Inspection, limits: Limits, hash_kinds) -> Inspection:
    with ExitStack() as files:
        def fresh():
            return files.enter_context(opener())

        try:
            im = _open(fresh)
        except UnidentifiedImageError:
            return _fail(out, "not-an-image", f"not an image: {_sniff(fresh().read(512))}")
        except OSError as exc:
            return _fail(out, "unreadable" if isinstance(exc, PermissionError) else "corrupt", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a malformed header can raise almost anything
            return _fail(out, "corrupt", f"{type(exc).__name__}: {exc}")
        out.format, out.mode = im.format, im.mode
        out.width, out.height = im.size
        out.frames = getattr(im, "n_frames", 1) if limits.converts(im.format) else 1
        problem = format_problem(out.format, limits) or check_limits(out.width, out.height, limits)
        if problem and problem[0] in ("unsupported", "too-large"):
            return _fail(out, *problem)  # never decoded: a bomb stops here
        tile = list(im.tile)
        try:
            if im.format == "PNG":
                im.verify()  # PNG chunk CRCs; load() alone does not check them all
                im = _open(fresh)
            if im.format == "JPEG":
                im.draft(DRAFT_MODES.get(im.mode, im.mode), (DRAFT_SIZE, DRAFT_SIZE))
            im.load()
            bad_rle = bmp_rle_problem(tile, fresh)
        except Exception as exc:  # noqa: BLE001
            msg = f"{type(exc).__name__}: {exc}"
            return _fail(out, "truncated" if "truncated" in str(exc).lower() or isinstance(exc, EOFError) else "corrupt", msg)
        if bad_rle:
            return _fail(out, "corrupt", bad_rle)
        if problem:
            return _fail(out, *problem)
        try:
            rgb = to_rgb(first_frame(im) if limits.converts(im.format) else im)
            out.hashes = compute_hashes(rgb, hash_kinds)
            out.quality = quality_metrics(rgb, im.mode)
        except Exception as exc:  # noqa: BLE001
            return _fail(out, "corrupt", f"{type(exc).__name__}: {exc}")
    return out


def _open(opener) -> Image.Image:
    """Image.open with Pillow's own bomb check off: check_limits judges width x height before any load."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        return Image.open(opener())
    finally:
        Image.MAX_IMAGE_PIXELS = saved


# JPEG draft modes: colour stays colour (the grayscale flag and the keeper rule need it).
DRAFT_MODES = {"YCbCr": "RGB", "RGB": "RGB", "L": "L"}


def format_problem(fmt: str | None, limits: Limits) -> tuple[str, str] | None:
    """('unsupported', why) for a format that ImageFolder or torchvision's loader would skip."""
    if fmt in TRAINABLE_EXTENSIONS or limits.converts(fmt):
        return None
    return "unsupported", (f"{fmt}: torchvision's ImageFolder skips this format (it reads only "
                           f"{' '.join(IMAGEFOLDER_EXTENSIONS)}); --convert-unsupported keeps it as PNG")


LIMIT_REASONS = ("too-large", "too-small", "odd-aspect")


def check_limits(width: int | None, height: int | None, limits: Limits) -> tuple[str, str] | None:
    """(reason, detail) when a size limit is broken; clean re-checks these from the catalog each run."""
    if width is None or height is None:
        return None
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


# Library messages that mean the pixel data is damaged (libtiff, libjpeg, Pillow); metadata
# complaints (unknown TIFF tags, odd EXIF) are recorded but do not make a file corrupt.
DAMAGE = re.compile(r"bad code word|corrupt|premature end|unexpected end|not enough|read error|"
                    r"invalid (code|data|strip|tile)|decod(e|ing) error|too (few|many) (bytes|lines)|"
                    r"data (truncated|missing)|extraneous bytes|huffman|using code not yet in table", re.I)


def is_damage(message: str) -> bool:
    return bool(DAMAGE.search(message))


def _short(messages: list[str], limit: int = 3) -> str:
    distinct = list(dict.fromkeys(messages))
    text = " | ".join(m[:160] for m in distinct[:limit])
    more = len(messages) - min(len(distinct), limit)
    return text + (f" (+{more} more)" if more > 0 else "")


# Threads that never write to fd 2 while a decode runs (tqdm's monitor at worst loses a refresh; the
# phase line writes to its own copy of the terminal; the parent watch of a worker process only waits).
QUIET_THREADS = ("tqdm_monitor", "datacurate-phase", "datacurate-parent-watch")
_FD2 = threading.RLock()
_DEPTH = [0]


def fd2_is_ours() -> bool:
    """Whether fd 2 may be pointed at a file for a moment: no other thread that could write to it runs."""
    me = threading.current_thread()
    return all(t is me or t.name in QUIET_THREADS for t in threading.enumerate())


@contextmanager
def captured_noise() -> Iterator[list[str]]:
    """Catch Python warnings and whatever C libraries write to fd 2 (libtiff, libjpeg) into a list.

    The file descriptor 2 itself is pointed at a temporary file for the block, in every process
    and whatever threads run, so nothing reaches the terminal; the lines are handed back, one per
    message. Blocks of different threads take turns (a lock). While other threads run, sys.stderr
    is pointed at the terminal's descriptor for the block, so their Python-level output still shows;
    the decode that gives a verdict runs in a child process then (inspect_file), so that nothing
    another thread writes can land in a file's detail.
    """
    out: list[str] = []
    with _FD2, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sink = _sink()
        sys.stderr.flush()
        saved = os.dup(2)
        start = os.lseek(sink.fileno(), 0, os.SEEK_END)
        os.dup2(sink.fileno(), 2)
        _DEPTH[0] += 1
        stream = _python_stderr_to(saved)
        try:
            yield out
        finally:
            if stream is not None:
                ours, sys.stderr = sys.stderr, stream
                ours.close()
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            _DEPTH[0] -= 1
            end = os.lseek(sink.fileno(), 0, os.SEEK_END)
            text = os.pread(sink.fileno(), end - start, start).decode("utf-8", "replace")
            if _DEPTH[0] == 0:
                sink.truncate(0)
                sink.seek(0)
    out.extend(f"{w.category.__name__}: {w.message}" for w in caught if not issubclass(w.category, ResourceWarning))
    out.extend(line.strip() for line in text.splitlines() if line.strip())


def _python_stderr_to(fd: int):
    """With other threads running: point sys.stderr at `fd` (the terminal's) for the block; the old stream, else None."""
    if fd2_is_ours():
        return None
    try:
        if sys.stderr.fileno() != 2:
            return None
    except (AttributeError, OSError, ValueError):
        return None
    old = sys.stderr
    sys.stderr = os.fdopen(os.dup(fd), "w", encoding=getattr(old, "encoding", None) or "utf-8", errors="replace",
                           buffering=1)
    return old


_SINKS: dict[int, object] = {}


def _sink():
    """One temporary file per process to catch fd 2 in."""
    pid = os.getpid()
    if pid not in _SINKS:
        _SINKS.clear()
        _SINKS[pid] = tempfile.TemporaryFile()
        atexit.register(_SINKS[pid].close)
    return _SINKS[pid]


def bmp_rle_problem(tile: list, opener) -> str | None:  # opener: a fresh file object, closed by the caller
    """Why a BMP's RLE8/RLE4 stream is damaged, or None (Pillow pads or clips bad runs silently)."""
    if not tile or tile[0][0] != "bmp_rle":
        return None
    _, (x0, y0, x1, y1), offset, args = tile[0]
    width, height, rle4 = x1 - x0, y1 - y0, bool(args[1])
    fh = opener()
    fh.seek(offset)
    data = fh.read()
    x = y = i = 0
    while i + 2 <= len(data):
        count, code = data[i], data[i + 1]
        i += 2
        if count:  # a run of one colour
            x += count
        elif code == 0:  # end of line
            x, y = 0, y + 1
        elif code == 1:  # end of bitmap
            return None
        elif code == 2:  # delta
            if i + 2 > len(data):
                break
            x, y, i = x + data[i], y + data[i + 1], i + 2
        else:  # a literal run of `code` pixels, padded to 16 bits
            i += (code + 1) // 2 if rle4 else code
            i += (offset + i) % 2
            x += code
            if i > len(data):
                return f"BMP RLE stream ends inside a literal run at row {y}"
        if x > width or y > height:
            return f"BMP RLE data runs outside the {width}x{height} image (row {y}, column {x})"
    if y >= height or (y == height - 1 and x >= width):
        return None  # complete, only the end-of-bitmap marker is missing
    return f"BMP RLE stream ends at row {y} of {height} without an end-of-bitmap marker"


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


def for_saving_as(path: str | os.PathLike, fmt: str) -> Image.Image:
    """The picture at `path` ready to save as JPEG or PNG (for readers that load only those): first frame,
    EXIF orientation applied, 16-bit scaled, CMYK and palette made RGB; a PNG keeps transparency, a JPEG gets
    it composited on white (see to_rgb)."""
    with Image.open(path) as im:
        if fmt == "PNG" and (im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info):
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            return ImageOps.exif_transpose(im).convert("RGBA")
        out = to_rgb(im)
        out.load()
        return out


def first_frame(im: Image.Image) -> Image.Image:
    """Frame 0 of an animation (or the image), RGBA where it has any transparency: what a conversion saves."""
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
    return im.convert("RGBA" if has_alpha else "RGB")


QUALITY_SIDE = 128  # quality metrics are measured with the short side brought down to this
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
CLIPPED = 250  # luminance at and above which a pixel counts as blown out
GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def quality_metrics(rgb: Image.Image, mode: str | None = None) -> dict[str, float]:
    """cleanvision-like measures of a decoded RGB picture, each in 0..1 (see clean/quality.py for the flags).

    bright: 99th percentile of luminance (a dark picture has no bright part); shadow: 5th
    percentile (a washed-out picture has no dark part); entropy: of the luminance histogram,
    bits / 8 (solid and near-solid pictures are near 0); sharpness: the 99.9th percentile of
    the absolute Laplacian / 255 (the strongest edges: blur flattens them, a sharp subject on a
    soft background keeps them); colour: mean spread between the RGB channels (0 for a
    grayscale picture, whatever its mode); centre_clipped: the share of the middle half's pixels (half
    the width and height) blown out to 250 or more; unclipped_mean: the mean luminance of the pixels that
    are not (an overexposed photo is blown out in its middle and bright in the rest; a subject on a white
    background keeps its own tones).
    """
    short = min(rgb.size)
    if short > QUALITY_SIDE:
        scale = QUALITY_SIDE / short
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.BOX)
    raw = np.asarray(rgb)
    lum = raw.astype(np.float32) @ LUMA
    hist = np.bincount(np.clip(lum + 0.5, 0, 255).astype(np.uint8).ravel(), minlength=256).astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    lap = 4 * lum[1:-1, 1:-1] - lum[:-2, 1:-1] - lum[2:, 1:-1] - lum[1:-1, :-2] - lum[1:-1, 2:]
    colour = 0.0
    if mode not in GRAY_MODES:  # channel by channel on uint8: numpy's reductions over a last axis of 3 are slow
        r, g, b = raw[..., 0], raw[..., 1], raw[..., 2]
        spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
        colour = float(spread.mean()) / 255.0
    shadow, bright = percentiles(lum, (5, 99))
    blown = lum >= CLIPPED
    h, w = blown.shape
    centre = blown[h // 4:h - h // 4, w // 4:w - w // 4]
    rest = lum[~blown]
    return {
        "bright": float(bright) / 255.0,
        "shadow": float(shadow) / 255.0,
        "entropy": float(-(p * np.log2(p)).sum()) / 8.0,
        "sharpness": percentiles(np.abs(lap), (99.9,))[0] / 255.0 if lap.size else 0.0,
        "colour": colour,
        "centre_clipped": float(centre.mean() if centre.size else blown.mean()),
        "unclipped_mean": float(rest.mean()) / 255.0 if rest.size else 1.0,
    }


def percentiles(a: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """np.percentile(a, qs) (linear interpolation) by one np.partition, without np.percentile's overhead
    (which was most of the time on small pictures)."""
    flat = a.ravel()
    n = flat.size
    at = [q / 100 * (n - 1) for q in qs]
    ks = sorted({int(k) for k in at} | {min(int(k) + 1, n - 1) for k in at})
    part = np.partition(flat, ks)
    out = []
    for k in at:
        lo = int(k)
        hi = min(lo + 1, n - 1)
        out.append(float(part[lo]) + (float(part[hi]) - float(part[lo])) * (k - lo))
    return out


def mode_bits(mode: str | None) -> int:
    """Bits per channel of a Pillow mode (1 for bilevel, 16 for I;16, 32 for I and F, else 8)."""
    if mode == "1":
        return 1
    if mode and mode.startswith("I;16"):
        return 16
    return 32 if mode in ("I", "F") else 8


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
