"""File-system and catalog errors a user can cause (disk full, read-only, permissions, odd names) as UserErrors."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

from datacurate.core.errors import UserError
from datacurate.core.fsutil import shown

DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
DENIED = {errno.EACCES, errno.EPERM}


def mount_point(path: str | os.PathLike) -> str:
    """The mount point of the file system that holds `path` (or would hold it)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return str(p)


def disk_full(path: str | os.PathLike | None, then: str = "free some space and run the command again") -> UserError:
    """One line naming the full file system (its mount point, and what is still free) and what to do `then`."""
    if not path:
        return UserError(f"disk full: no space left on a file system this command writes to; {then}")
    mount = mount_point(path)
    try:
        free = f", {shutil.disk_usage(mount).free >> 20} MB free"
    except OSError:
        free = ""
    return UserError(f"disk full: no space left on the file system mounted at {shown(mount)} "
                     f"(writing {shown(str(path))}{free}); {then}")


def is_disk_full(exc: BaseException) -> bool:
    """An error that means the file system is full (or the user's quota spent), from the OS or SQLite."""
    if isinstance(exc, OSError):
        return exc.errno in DISK_FULL
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == 13 or "full" in str(exc).lower()  # SQLITE_FULL
    return False


def user_error(exc: BaseException) -> UserError | None:
    """The UserError an OS, SQLite or file-name error stands for, or None when it is not one a user causes."""
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, OSError) and exc.errno is not None:
        name = exc.filename
        if exc.errno in DISK_FULL:
            return disk_full(name)
        if exc.errno == errno.EROFS:
            return UserError(f"cannot write {name or 'in the workspace'}: read-only file system")
        if exc.errno in DENIED and name:
            return UserError(f"permission denied: {name} (check who owns it and its mode)")
    if isinstance(exc, sqlite3.Error):
        from datacurate.core.catalog import catalog_error, last_opened

        return catalog_error(last_opened(), exc)
    if isinstance(exc, UnicodeError) and "surrogate" in str(exc):
        text = getattr(exc, "object", "")
        name = shown(text) if isinstance(text, str) else repr(text)
        return UserError(f"a file or folder name is not valid UTF-8: {name}; rename it (e.g. with convmv)")
    return None
