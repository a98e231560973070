"""`split --convert jpeg|png`: files that timm's and fastai's folder readers skip, converted.

timm's folder reader loads only .png, .jpg and .jpeg; torchvision's ImageFolder also takes .webp, .bmp,
.tif(f), .ppm and .pgm. With --convert, such a file is placed in data/split as a JPEG or PNG made from it
(imageio.for_saving_as: EXIF orientation, 16-bit, CMYK, palette and alpha handled); the original is not
touched. Conversions are kept by content hash in data/split/.converted/ and hardlinked (or copied) into
the tree, so a re-run converts only new or changed files; ones no split uses any more are removed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from datacurate.core.terminal import progress
from datacurate.core.errors import UserError
from datacurate.core.fsutil import atomic_path

TIMM_EXTENSIONS = (".jpg", ".jpeg", ".png")
FORMATS = {"jpeg": ("JPEG", ".jpg"), "png": ("PNG", ".png")}
CACHE = ".converted"


def needs_conversion(name: str) -> bool:
    """Whether a reader that loads only .png/.jpg/.jpeg would skip this file."""
    return not name.lower().endswith(TIMM_EXTENSIONS)


def converted_name(rel: str, fmt: str) -> str:
    """`rel` with the extension of the format it is converted to."""
    return os.path.splitext(rel)[0] + FORMATS[fmt][1]


@dataclass
class Conversions:
    """The cached conversion of each content hash (path in data/split/.converted/), and how many were made now."""

    files: dict[str, Path] = field(default_factory=dict)
    made: int = 0
    removed: int = 0


def cache_path(split_dir: Path, sha256: str, fmt: str, quality: int) -> Path:
    tag = f"q{quality}" if fmt == "jpeg" else "lossless"
    return split_dir / CACHE / sha256[:2] / f"{sha256}.{tag}{FORMATS[fmt][1]}"


def prepare(split_dir: Path, sources: Sequence[tuple[str, str]], fmt: str, quality: int, *,
            quiet: bool = True) -> Conversions:
    """Make the conversion of every (absolute source path, sha256) that the cache lacks; drop unused ones."""
    out = Conversions()
    todo = []
    for src, sha in sources:
        path = cache_path(split_dir, sha, fmt, quality)
        out.files[sha] = path
        if not path.is_file():
            todo.append((src, path))
    for src, path in progress(todo, total=len(todo), desc="converting", quiet=quiet):
        convert_file(src, path, fmt, quality)
        out.made += 1
    out.removed = _prune(split_dir / CACHE, set(out.files.values()))
    return out


def convert_file(src: str | os.PathLike, dst: Path, fmt: str, quality: int = 95) -> None:
    """Write `src` converted to `fmt` at `dst` (atomically, with the user's umask)."""
    from datacurate.core.imageio import captured_noise, for_saving_as

    pillow_format = FORMATS[fmt][0]
    with captured_noise():
        try:
            im = for_saving_as(src, pillow_format)
        except Exception as exc:  # noqa: BLE001 - changed since it was checked
            raise UserError(f"{src} cannot be converted to {fmt} ({type(exc).__name__}: {exc}); run `datacurate clean`") from None
        with atomic_path(dst) as tmp:
            im.save(tmp, pillow_format, **({"quality": quality} if pillow_format == "JPEG" else {}))


def _prune(cache: Path, keep: set[Path]) -> int:
    """Remove conversions no placement uses (split's own derived files, made again when needed)."""
    removed = 0
    for folder, _dirs, names in os.walk(cache):
        for name in names:
            path = Path(folder) / name
            if path not in keep:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def drop_cache(split_dir: Path) -> int:
    """Without --convert no conversion is used: remove them all."""
    return _prune(split_dir / CACHE, set())
