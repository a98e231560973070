"""Where scraped images land: data/scraped/<class>/<sha256 prefix><true extension>, written
atomically, with a files row (so clean does not decode them again) and provenance for every
candidate."""

from __future__ import annotations

import errno
import io
import json
import os
import threading
import time
from pathlib import Path
from typing import Iterable

from PIL import Image

from datacurate.core.catalog import Catalog
from datacurate.core.errors import UserError
from datacurate.core.oserrors import disk_full, is_disk_full  # noqa: F401 (scrape.run imports is_disk_full here)
from datacurate.core.fsutil import atomic_write_bytes, atomic_write_text, deferred_signals
from datacurate.core.imageio import CONVERTIBLE, Inspection, Limits, inspect_bytes
from datacurate.core.workspace import Workspace

NAME_CHARS = 16


# Reasons that may pass with time: a later run tries those URLs again.
TRANSIENT = {
    "timeout", "connection-error", "incomplete-body", "dns-error", "stopped", "http-408", "http-425", "http-429",
    "http-500", "http-502", "http-503", "http-504", "robots-txt", "license",  # license: a later run may filter otherwise
    "cluster-error",  # --ray: the download task failed on every retry (its workers died)
}


class Store:
    """The set of sha256 the workspace holds (claimed under a lock), and the saver."""

    def __init__(self, ws: Workspace, known: Iterable[str]):
        self.ws = ws
        self.known = set(known)
        self._lock = threading.Lock()

    def claim(self, *digests: str) -> bool:
        """True (and remembered) when none of `digests` is held yet."""
        with self._lock:
            if any(d in self.known for d in digests):
                return False
            self.known.update(digests)
            return True

    def release(self, *digests: str) -> None:
        with self._lock:
            self.known.difference_update(digests)

    def save(self, klass: str, data: bytes, ins: Inspection, prov: dict | None = None) -> dict:
        """Write the bytes under their content name; return the files row.

        `prov` (the candidate's provenance) goes to the journal first, so a file whose catalog rows a
        kill -9 cut off is recorded with its provenance by the next run (recover)."""
        name = f"{ins.sha256[:NAME_CHARS]}{ins.true_extension()}"
        path = self.ws.scraped / klass / name
        row = {
            "path": self.ws.rel(path), "home": self.ws.rel(path), "sha256": ins.sha256, "format": ins.format,
            "width": ins.width, "height": ins.height, "mode": ins.mode, "frames": ins.frames, "class": klass,
            "source": "scraped", "status": "ok", "reason": None, "problem": None, "detail": None, "checked": time.time(),
        }
        if prov is not None:
            _journal(self.ws, name, {"prov": {**prov, "path": row["path"]}, "row": row, "hashes": ins.hashes})
        write_outside(staging_dir(self.ws) / name, path, data)
        st = path.stat()
        return {**row, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def journal_dir(ws: Workspace) -> Path:
    """Where a save notes its provenance before the file moves into its class folder (.datacurate/scrape-journal)."""
    return ws.state_dir / "scrape-journal"


def _journal(ws: Workspace, name: str, entry: dict) -> None:
    """One entry per saved file (no fsync: it guards against a killed process, which loses no written page)."""
    atomic_write_text(journal_dir(ws) / f"{name}.json", json.dumps(entry), sync=False)  # fsutil's safe writer


def forget(ws: Workspace, rows: Iterable[dict | None]) -> None:
    """Drop the journal entries of saved files whose catalog rows are written (or whose files were taken back)."""
    folder = journal_dir(ws)
    for row in rows:
        if row is not None:
            (folder / f"{Path(row['path']).name}.json").unlink(missing_ok=True)


def recover(ws: Workspace, cat: Catalog) -> list[str]:
    """Record the files a killed scrape saved but never catalogued (their journal entries), with their
    provenance; drop entries whose file is gone. Returns the paths recovered."""
    from datacurate.core.index import sha256_file

    folder = journal_dir(ws)
    if not folder.is_dir():
        return []
    found = []
    for entry_path in sorted(folder.iterdir()):
        try:
            entry = json.loads(entry_path.read_text(encoding="utf-8"))
            row, prov = entry["row"], entry["prov"]
        except (OSError, ValueError, KeyError, TypeError):
            entry_path.unlink(missing_ok=True)  # a half-written entry: its file was never moved in
            continue
        path = ws.abs(row["path"])
        known = cat.db.execute("SELECT 1 FROM provenance WHERE path=? AND sha256=?", (row["path"], prov["sha256"])).fetchone()
        if not known and path.is_file() and sha256_file(str(path)) == row["sha256"]:
            st = path.stat()
            record(cat, [(prov, {**row, "size": st.st_size, "mtime_ns": st.st_mtime_ns}, entry.get("hashes"))])
            with cat.transaction():
                cat.log("recover", prov.get("image_url"), row["path"], None, "saved by a scrape that was killed before it recorded it")
            found.append(row["path"])
        entry_path.unlink(missing_ok=True)
    return found


def staging_dir(ws: Workspace) -> Path:
    """Where downloads are written before they move into a class folder (.datacurate/scrape-tmp)."""
    return ws.state_dir / "scrape-tmp"


def write_outside(staging: Path, path: Path, data: bytes) -> None:
    """Write atomically outside the class folders, then rename into place: a kill -9 at any moment
    leaves nothing partial where ImageFolder looks (its hidden .tmp-*.jpg would still load)."""
    atomic_write_bytes(staging, data)  # with the user's umask
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(staging, path)
    except OSError as exc:
        staging.unlink(missing_ok=True)
        if exc.errno != errno.EXDEV:
            raise
        atomic_write_bytes(path, data)  # data/scraped is on another file system


def to_trainable(data: bytes, ins: Inspection, limits: Limits) -> tuple[bytes, Inspection]:
    """A GIF (which ImageFolder ignores) becomes a PNG of its first frame; others pass unchanged."""
    if ins.format not in CONVERTIBLE:
        return data, ins
    im = Image.open(io.BytesIO(data))
    im.seek(0)
    out = io.BytesIO()
    im.convert("RGBA" if im.info.get("transparency") is not None else "RGB").save(out, format="PNG")
    png = out.getvalue()
    return png, inspect_bytes(png, limits, tuple(ins.hashes) or ("phash",))


def record(cat: Catalog, entries: list[tuple[dict, dict | None, dict | None]]) -> None:
    """Candidates' provenance (and files rows and hashes for the saved ones), in one transaction."""
    if not entries:
        return
    with deferred_signals():
        with cat.transaction():
            for prov, row, hashes in entries:
                if row is not None:
                    cat.upsert_file(row)
                    if hashes:
                        cat.put_hashes(row["sha256"], hashes)
                    cat.log("save", prov.get("image_url"), row["path"], None,
                            {"engine": prov["engine"], "query": prov["query"], "rank": prov.get("rank")})
                cat.add_provenance(**prov)


def prior_urls(cat: Catalog) -> dict[str, set[str]]:
    """class -> image URLs an earlier run settled (saved, or rejected for a lasting reason)."""
    out: dict[str, set[str]] = {}
    marks = ",".join("?" * len(TRANSIENT))
    sql = f"SELECT class, image_url FROM provenance WHERE image_url IS NOT NULL AND (reason IS NULL OR reason NOT IN ({marks}))"
    for klass, url in cat.db.execute(sql, tuple(TRANSIENT)):
        out.setdefault(klass, set()).add(url)
    return out


def sweep_partials(ws: Workspace) -> int:
    """Remove what a killed run left: staged downloads, and .tmp-* partial writes in class folders."""
    removed = 0
    staging = staging_dir(ws)
    if staging.is_dir():
        for entry in os.scandir(staging):
            if entry.is_file():
                os.unlink(entry.path)
                removed += 1
    folder = ws.scraped
    if not folder.is_dir():
        return removed
    for klass in os.scandir(folder):
        if not klass.is_dir():
            continue
        for entry in os.scandir(klass.path):
            if entry.name.startswith(".tmp-") and entry.is_file():
                try:
                    os.unlink(entry.path)
                    removed += 1
                except OSError:
                    pass
    return removed


def disk_full_error(path: Path) -> UserError:
    """One line that names the full file system (its mount point) and what to do."""
    return disk_full(path, "the scrape stopped, every saved image has its catalog rows: free some space and run it again")


def unlink_saved(ws: Workspace, rows: list[dict]) -> None:
    """Take back saved files whose catalog rows could not be written."""
    for row in rows:
        try:
            os.unlink(ws.abs(row["path"]))
        except OSError:
            pass
