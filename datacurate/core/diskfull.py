"""The one line for a full file system: which one (its mount point), what is still free, what to do."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from datacurate.core.errors import UserError
from datacurate.core.fsutil import shown


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
