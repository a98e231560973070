"""File-system helpers: atomic writes, free names, signal-safe critical sections."""

from __future__ import annotations

import errno
import re
import os
import shutil
import signal
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence


# Partial writes end in .part: torchvision's ImageFolder loads hidden files too, but not this extension,
# so a write cut short by kill -9 inside a class folder is never trained on.
PARTIAL = ".part"


def file_mode() -> int:
    """The mode a new file gets under the user's umask (mkstemp's 0600 ignores it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:  # thread-safe read of the umask
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, sync: bool = True) -> None:
    """Write to a temporary file in the same folder, fsync (unless `sync` is False: a file made again when
    lost, such as a report page), then os.replace onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=PARTIAL)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, *, sync: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), sync=sync)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` (for savers that want a path).

    The temporary name ends in .part, so pass savers an explicit format (PIL, matplotlib).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=PARTIAL)
    os.fchmod(fd, file_mode())
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def free_path(path: Path) -> Path:
    """`path` if nothing is there, else `stem-1.ext`, `stem-2.ext`, ..."""
    if not path.exists():
        return path
    n = 1
    while (candidate := path.with_name(f"{path.stem}-{n}{path.suffix}")).exists():
        n += 1
    return candidate


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends, so a move and its catalog row land together.

    The Python-level handlers are swapped for recorders (blocking the signal in this thread is not
    enough: native threads such as BLAS workers can take it and Python still runs the handler
    here); a signal that came during the block is raised again once it ends.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    sigs = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.signal(s, lambda n, _f: got.append(n)) for s in sigs}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if got:
            signal.raise_signal(got[0])


def is_hidden(name: str) -> bool:
    """Temporary and hidden files we never treat as data (.tmp-* are our own partial writes)."""
    return name.startswith(".")


# errors from os.link that mean "this file system (pair) cannot hardlink": copy instead
NO_HARDLINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES}


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> bool:
    """Hardlink src at dst, or copy it where the file system cannot link; True when linked."""
    try:
        os.link(src, dst)
        return True
    except OSError as exc:
        if exc.errno not in NO_HARDLINK:
            raise
    copy_file(src, dst)
    return False


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """A copy with the source's times and the mode a new file gets under the user's umask."""
    shutil.copy2(src, dst)
    os.chmod(dst, file_mode())


# File names that are not UTF-8 reach Python as lone surrogates (PEP 383), which SQLite, JSON and
# CSV cannot store. The catalog keeps them as text by mapping each surrogate U+DC80..U+DCFF to the
# private-use code point U+10FF80..U+10FFFF (reversible; such code points do not occur in names).
_SURROGATE = re.compile("[\udc80-\udcff]")
_ESCAPED = re.compile("[\U0010ff80-\U0010ffff]")


def path_text(text: str) -> str:
    """A file-system string as storable UTF-8 text (see above); UTF-8 names are unchanged."""
    return _SURROGATE.sub(lambda m: chr(ord(m.group()) - 0xDC00 + 0x10FF00), text)


def text_path(text: str) -> str:
    """The file-system string a path_text stands for."""
    return _ESCAPED.sub(lambda m: chr(ord(m.group()) - 0x10FF00 + 0xDC00), text)


def shown(text: str) -> str:
    """A catalog path for people: undecodable bytes as \\xNN."""
    return os.fsencode(text_path(text)).decode("utf-8", "backslashreplace")


def sweep_partials(roots: Sequence[Path], min_age: float = 60.0) -> list[Path]:
    """Remove our own partial writes (.tmp-*.part) older than min_age seconds, left by a kill -9.

    They are datacurate's temporary files, never user data; the age keeps a write that another
    datacurate process is doing right now.
    """
    swept = []
    now = time.time()
    for root in roots:
        for folder, _dirs, files in os.walk(root):
            for name in files:
                if name.startswith(".tmp-") and name.endswith(PARTIAL):
                    path = Path(folder) / name
                    try:
                        if now - path.stat().st_mtime >= min_age:
                            path.unlink()
                            swept.append(path)
                    except OSError:
                        continue
    return swept
