"""Build data/split/<split>/<class>/ in a folder beside it, then swap it in (hardlink | symlink | copy)."""

from __future__ import annotations

import ctypes
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from datacurate.core.fsutil import check_folder, copy_file, deferred_signals, link_or_copy

BUILD_PREFIX = ".tmp-build-"


@dataclass(frozen=True)
class Placement:
    """One file to put in the tree: `src` (absolute) at <split>/<rel>."""

    src: str  # absolute
    split: str
    rel: str  # <class>/<name> (or <class>/<sub>/<name>), POSIX
    made: bool = False  # a file split made (a conversion): always a real file, hardlinked or copied


@dataclass
class TreeResult:
    linked: int = 0
    copied: int = 0        # with --link hardlink: files copied because the file system cannot link
    symlinked: int = 0
    converted: int = 0     # conversions placed (hardlinked or copied from data/split/.converted)


def build(root: Path, placements: Sequence[Placement], splits: Sequence[str], mode: str,
          then: Callable[[], None] | None = None, files: Mapping[str, bytes] | None = None) -> TreeResult:
    """Write the tree for `splits` under `root`, replacing each split folder atomically; others are dropped.

    `root` is data/split; a split named in `splits` with no files gets an empty folder; `files` (path
    under root -> bytes, e.g. "train/metadata.jsonl") land with the tree. The swaps and `then` (the
    catalog update) run with Ctrl-C held, so folders and records land together.
    """
    for s in ("train", "valid", "test"):
        check_folder(root / s)  # only real folders are swapped out (never a device node, FIFO or link)
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root)
    work = root / f"{BUILD_PREFIX}{uuid.uuid4().hex[:12]}"
    work.mkdir()
    try:
        for s in splits:
            (work / s).mkdir()
        result = _fill(root, work, placements, mode)
        for rel, data in (files or {}).items():
            (work / rel).write_bytes(data)  # a new file in the build folder: the user's umask
        with deferred_signals():
            undo: list[Callable[[], None]] = []
            try:
                for s in ("train", "valid", "test"):
                    undo.append(_swap(root / s, work / s, work / f"old-{s}"))
                if then is not None:
                    then()
            except BaseException:
                for step in reversed(undo):  # the record failed (disk full?): put the old folders back
                    step()
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _sweep(root: Path) -> None:
    """Remove build folders left by a run that was killed (we hold the lock, so none is live)."""
    for entry in os.scandir(root):
        if entry.name.startswith(BUILD_PREFIX) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)


def _fill(root: Path, work: Path, placements: Sequence[Placement], mode: str) -> TreeResult:
    out = TreeResult()
    made: set[str] = set()
    work_s, root_s = str(work), str(root)
    for p in placements:
        dst = f"{work_s}/{p.split}/{p.rel}"
        parent = dst.rpartition("/")[0]
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        if p.made:
            copy_file(p.src, dst) if mode == "copy" else link_or_copy(p.src, dst)
            out.converted += 1
        elif mode == "hardlink":
            if link_or_copy(p.src, dst):
                out.linked += 1
            else:
                out.copied += 1
        elif mode == "symlink":
            final_parent = f"{root_s}/{p.split}/{p.rel}".rpartition("/")[0]
            os.symlink(os.path.relpath(p.src, final_parent), dst)
            out.symlinked += 1
        else:
            copy_file(p.src, dst)
            out.copied += 1
    return out


def _swap(target: Path, new: Path, trash: Path) -> Callable[[], None]:
    """Put `new` at `target` (exchanging atomically where the kernel can); the old one goes to `trash`.

    Returns the step that undoes it.
    """
    has_new, has_old = new.is_dir(), os.path.lexists(target)
    if has_new and has_old and _exchange(new, target):
        return lambda: _exchange(new, target)  # the old tree now sits at `new`, removed with the build folder
    if has_old:
        os.rename(target, trash)
    if has_new:
        os.rename(new, target)

    def undo() -> None:
        if has_new:
            os.rename(target, new)
        if has_old:
            os.rename(trash, target)

    return undo


def _exchange(a: Path, b: Path) -> bool:
    """renameat2(RENAME_EXCHANGE): swap two paths in one step (Linux); False where unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange)
    return rc == 0
