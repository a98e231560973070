"""File-system and catalog errors a user can cause (disk full, read-only, permissions, odd names) as UserErrors."""

from __future__ import annotations

import errno
import sqlite3

from datacurate.core.catalog import catalog_error, last_opened
from datacurate.core.diskfull import disk_full
from datacurate.core.errors import UserError
from datacurate.core.fsutil import shown

DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
DENIED = {errno.EACCES, errno.EPERM}


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
        return catalog_error(last_opened(), exc)
    if isinstance(exc, UnicodeError) and "surrogate" in str(exc):
        text = getattr(exc, "object", "")
        name = shown(text) if isinstance(text, str) else repr(text)
        return UserError(f"a file or folder name is not valid UTF-8: {name}; rename it (e.g. with convmv)")
    return None
