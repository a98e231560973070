"""File-system helpers: atomic writes, free names, signal-safe critical sections."""

from __future__ import annotations

import errno
import re
import os
import shutil
import signal
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from datacurate.core.errors import UserError


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


class WriteError(UserError, OSError):
    """A write datacurate refused or could not do, named as such: a UserError (one line, exit 2) that callers
    catching OSError still catch."""

    def __str__(self) -> str:
        return str(self.strerror)


# errors the CLI already names well from the OSError itself (datacurate.core.oserrors): passed on unchanged
_NAMED_ELSEWHERE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_target(path: str | os.PathLike) -> None:
    """Refuse (WriteError) to write over anything but a regular file: a device node, FIFO, socket, folder or
    symbolic link at `path` stays as it is. A missing file is fine."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError:
        return  # ENOTDIR, ELOOP...: the write itself names the problem
    if not stat.S_ISREG(st.st_mode):
        raise WriteError(errno.EEXIST, f"cannot write {shown(os.fspath(path))}: it exists and is {_kind(st.st_mode)}, "
                                       f"not a regular file (datacurate replaces only regular files); move it away or "
                                       f"choose another name")


def check_folder(path: str | os.PathLike) -> None:
    """Refuse (WriteError) a folder datacurate swaps or fills when something other than a real folder is there."""
    try:
        st = os.lstat(path)
    except OSError:
        return
    if not stat.S_ISDIR(st.st_mode):
        raise WriteError(errno.EEXIST, f"cannot write {shown(os.fspath(path))}: it should be a folder but is "
                                       f"{_kind(st.st_mode) if not stat.S_ISREG(st.st_mode) else 'a file'}; move it away")


def remove_file(path: str | os.PathLike) -> bool:
    """Remove `path` when it is a regular file (one of our outputs gone stale); anything else stays. True when removed."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def write_error(path: str | os.PathLike, exc: OSError) -> OSError:
    """`exc` as a WriteError naming `path` ("cannot write PATH: reason"); disk full and read-only pass unchanged."""
    if isinstance(exc, WriteError) or exc.errno in _NAMED_ELSEWHERE:
        return exc
    reason = (exc.strerror or str(exc)).lower()
    return WriteError(exc.errno or errno.EIO, f"cannot write {shown(os.fspath(path))}: {reason}")


def replace_file(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """os.replace(tmp, path), but only over a regular file (or nothing): see check_target."""
    check_target(path)
    os.replace(tmp, path)


def _temporary(path: Path) -> str:
    """A new empty .tmp-*.part file beside `path` with the user's umask, after checking `path` may be replaced."""
    check_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=PARTIAL)
    except OSError as exc:
        raise write_error(path, exc) from None
    os.fchmod(fd, file_mode())
    os.close(fd)
    return tmp


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, sync: bool = True) -> None:
    """Write to a temporary file in the same folder, fsync (unless `sync` is False: a file made again when
    lost, such as a report page), then replace `path` (only ever a regular file)."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        replace_file(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, *, sync: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), sync=sync)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` (for savers that want a path).

    Only a regular file (or nothing) at `path` is ever replaced. The temporary name ends in .part, so
    pass savers an explicit format (PIL, matplotlib).
    """
    path = Path(path)
    tmp = _temporary(path)
    try:
        yield Path(tmp)
        try:
            replace_file(tmp, path)
        except OSError as exc:
            raise write_error(path, exc) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def replace_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> bool:
    """os.replace(src, dst); across file systems (EXDEV) a copy instead: written beside `dst` under a
    partial name, fsynced, renamed onto `dst`, and `src` left in place. True when it copied (the caller
    removes `src` once the move is recorded)."""
    try:
        os.replace(src, dst)
        return False
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    fd, tmp = tempfile.mkstemp(dir=Path(dst).parent, prefix=".tmp-", suffix=PARTIAL)
    os.close(fd)
    try:
        shutil.copy2(src, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


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
