"""Atomic writes land with the user's umask, not mkstemp's 0600."""

from __future__ import annotations

import os
import stat

import pytest

from datacurate.core.fsutil import atomic_path, atomic_write_bytes


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_follow_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"a")
        with atomic_path(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"b")
    finally:
        os.umask(old)
    for name in ("a.bin", "b.bin"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin"]
