"""File-system and catalog errors a user can cause (disk full, read-only, permissions, odd names) as UserErrors."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from datacurate.errors import UserError
from datacurate.fsutil import shown

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


def disk_full(path: str | os.PathLike | None) -> UserError:
    where = f"the file system mounted at {shown(mount_point(path))} (writing {shown(str(path))})" if path else \
        "a file system this command writes to"
    return UserError(f"disk full: no space left on {where}; free some space and run the command again")


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
        from datacurate.catalog import catalog_error, last_opened

        return catalog_error(last_opened(), exc)
    if isinstance(exc, UnicodeError) and "surrogate" in str(exc):
        text = getattr(exc, "object", "")
        name = shown(text) if isinstance(text, str) else repr(text)
        return UserError(f"a file or folder name is not valid UTF-8: {name}; rename it (e.g. with convmv)")
    return None
