"""A damaged catalog is one clear line for every command that opens it; `clean --rebuild-catalog` (issue 11)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from asuser import cli, demo_workspace
from datacurate.core.catalog import Catalog


def _garbage(p: Path) -> None:
    p.write_bytes(b"this is not a database\n" * 40)


def _truncated(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])


def _folder(p: Path) -> None:
    p.unlink()
    p.mkdir()
    (p / "x").write_text("x")


def _version(p: Path) -> None:
    db = sqlite3.connect(p)
    db.execute("UPDATE meta SET value='one' WHERE key='schema_version'")
    db.commit()
    db.close()


def _column(p: Path) -> None:
    db = sqlite3.connect(p)
    db.execute("ALTER TABLE files DROP COLUMN reason")
    db.commit()
    db.close()


DAMAGE = {"garbage": _garbage, "truncated": _truncated, "folder": _folder, "version": _version, "column": _column}


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory) -> Path:
    """A demo workspace after clean and split, and scraped provenance in its catalog."""
    ws = demo_workspace(tmp_path_factory.mktemp("cat") / "ws", per_class=5)
    assert cli("-q", "-C", str(ws), "clean")[0] == 0
    assert cli("-q", "-C", str(ws), "split")[0] == 0
    with Catalog(ws / ".datacurate" / "catalog.sqlite") as cat, cat.transaction():
        cat.add_provenance(**{"class": "circle"}, engine="bing", query="circle picture", image_url="http://x/1.jpg")
    return ws


def _checkpoint(ws: Path) -> None:
    """Fold the WAL into the file, as after every command, so damage to the file is damage to the data."""
    db = sqlite3.connect(ws / ".datacurate" / "catalog.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_catalog_is_one_line_then_rebuilt(cleaned: Path, tmp_path: Path, kind: str):
    ws = tmp_path / "ws"
    shutil.copytree(cleaned, ws, symlinks=True)
    _checkpoint(ws)
    catalog = ws / ".datacurate" / "catalog.sqlite"
    quarantined = sorted(p.relative_to(ws).as_posix() for p in (ws / "data" / "quarantine").rglob("*") if p.is_file())
    valid = sorted(p.name for p in (ws / "data" / "split" / "valid").rglob("*") if p.is_file())
    DAMAGE[kind](catalog)
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump({"stages": ["clean", "split"]}), encoding="utf-8")
    for args in (["clean"], ["clean", "--dry-run"], ["restore"], ["split"], ["report", "balance"], ["run", str(pipe)]):
        code, out, err = cli("-C", str(ws), *args)
        assert code == 2, (args, out, err)
        assert "is damaged" in err and "datacurate clean --rebuild-catalog" in err, (args, err)
        assert err.strip().count("\n") == 0 and "internal error" not in err, (args, err)
    code, out, err = cli("-q", "-C", str(ws), "clean", "--rebuild-catalog")
    assert code == 0, err
    aside = [p for p in (ws / ".datacurate").glob("catalog.sqlite.damaged-*") if p.name[-4:] not in ("-wal", "-shm")]
    assert aside and f"set the damaged catalog aside as .datacurate/{aside[0].name}" in out
    assert "nothing moved" not in out and "set aside 0" in out  # what clean had set aside stays where it is
    with Catalog(catalog) as cat:
        rows = {r["path"]: r for r in cat.files("status='quarantined'")}
        assert sorted(rows) == quarantined
        for path, row in rows.items():
            reason, source, klass = path.split("/")[2:5]
            assert (row["reason"], row["source"], row["class"]) == (reason, source, klass)
            assert row["home"] == f"data/{source}/{klass}/{path.rsplit('/', 1)[1]}"
        kept = cat.db.execute("SELECT count(*) FROM provenance").fetchone()[0]
    assert kept == (1 if kind in ("version", "column") else 0)  # what still reads is kept
    # the split is remembered from split.csv: the same files stay in valid
    assert cli("-q", "-C", str(ws), "split")[0] == 0
    assert sorted(p.name for p in (ws / "data" / "split" / "valid").rglob("*") if p.is_file()) == valid
    # and the rebuilt catalog serves a second clean and a restore
    code, out, _ = cli("-q", "-C", str(ws), "clean")
    assert code == 0 and "set aside 0" in out
    code, out, _ = cli("-q", "-C", str(ws), "restore", "--dry-run")
    assert code == 0 and f"would restore {len(quarantined)} files" in out


def test_rebuild_of_a_healthy_catalog_keeps_everything_readable(cleaned: Path, tmp_path: Path):
    ws = tmp_path / "ws"
    shutil.copytree(cleaned, ws, symlinks=True)
    with Catalog(ws / ".datacurate" / "catalog.sqlite") as cat:
        events = cat.db.execute("SELECT count(*) FROM events").fetchone()[0]
    code, out, err = cli("-q", "-C", str(ws), "clean", "--rebuild-catalog", "--dry-run")
    assert code == 0 and "set the old catalog aside" in out and "kept from the old catalog:" in out, out
    with Catalog(ws / ".datacurate" / "catalog.sqlite") as cat:
        assert cat.db.execute("SELECT count(*) FROM events").fetchone()[0] == events
        assert cat.db.execute("SELECT count(*) FROM provenance").fetchone()[0] == 1
        assert cat.db.execute("SELECT count(*) FROM split_memory").fetchone()[0] > 0
    assert len(list((ws / ".datacurate").glob("catalog.sqlite.old-*"))) == 1
