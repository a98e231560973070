"""Thumbnails for the HTML reports: small JPEG files under reports/thumbs/, one per content.

Named by the file's sha256, a thumbnail is made once and shared by every report and every run
(a moved or renamed file keeps it). Missing ones are made in worker processes (JPEGs draft-decoded
near the thumbnail size), so a report of 10,000 images does not decode them one by one.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path
from typing import Iterable

from datacurate.core.fsutil import PARTIAL, file_mode, replace_file
from datacurate.executors.base import local_executor

SIZE = 128
FOLDER = "thumbs"
_SERIAL = itertools.count()


def name_for(sha256: str) -> str:
    """The thumbnail's file name for a content."""
    return f"{sha256[:24]}.jpg"


def make_thumbnails(folder: Path, wanted: Iterable[tuple[str | os.PathLike, str]], *, workers: int | None = None,
                    quiet: bool = True) -> dict[str, str]:
    """sha256 -> thumbnail file name in `folder`, for every (image path, sha256) that decodes.

    Thumbnails already there are reused; the others are made in `workers` processes (default: all cores).
    """
    have = {p.name for p in folder.glob("*.jpg")} if folder.is_dir() else set()
    mode = file_mode()
    out: dict[str, str] = {}
    jobs: dict[str, tuple[str, str, int]] = {}
    for path, sha in wanted:
        if not sha or sha in out or sha in jobs:
            continue
        name = name_for(sha)
        if name in have:
            out[sha] = name
        else:
            jobs[sha] = (str(path), str(folder / name), mode)
    if jobs:
        folder.mkdir(parents=True, exist_ok=True)
        for sha, ok in zip(jobs, _run(list(jobs.values()), workers, quiet)):
            if ok:
                out[sha] = name_for(sha)
    return out


def _run(jobs: list[tuple[str, str, int]], workers: int | None, quiet: bool) -> list[bool]:
    """_make of every job, in the local process pool (here, one by one, for fewer than 16)."""
    return local_executor(workers, serial_below=16).map(_make_all, jobs, desc="thumbnails", quiet=quiet)


def _make_all(jobs: list[tuple[str, str, int]]) -> list[bool]:
    """The kernel: a batch of thumbnails."""
    return [_make(j) for j in jobs]


def _make(job: tuple[str, str, int]) -> bool:
    """Write one thumbnail; False when the image does not decode (the report shows 'no preview')."""
    from datacurate.core.imageio import captured_noise
    from datacurate.report.html import thumbnail_jpeg

    src, dst, mode = job
    with captured_noise():  # what Pillow or libtiff say about a preview belongs nowhere, least of all the terminal
        data = thumbnail_jpeg(src, SIZE)  # None when it does not decode: a preview is not worth failing for
    if data is None:
        return False
    _write(dst, data, mode)
    return True


def _write(dst: str, data: bytes, mode: int) -> None:
    """Write a thumbnail under a temporary name, then rename it over nothing or a regular file: no fsync (a
    thumbnail is a cache, made again when missing) and the fewest system calls (a report may make 20,000)."""
    tmp = f"{os.path.dirname(dst)}/.tmp-{os.getpid()}-{next(_SERIAL)}{PARTIAL}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        replace_file(tmp, dst)  # only ever over a regular file (fsutil.check_target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
