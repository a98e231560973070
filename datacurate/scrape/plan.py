"""Which classes to scrape, their queries, and the URL lists of the `urls` engine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from datacurate.core.errors import UserError
from datacurate.scrape.options import ScrapeOptions
from datacurate.scrape.queries import load_overrides, plan_queries
from datacurate.core.workspace import Workspace


def select_classes(ws: Workspace, opts: ScrapeOptions) -> list[str]:
    """Class folders under data/original (or the ones named by --class)."""
    classes = ws.class_names("original")
    if not classes:
        raise UserError(f"no class folders under {ws.original}; scrape reads the class names from there "
                        "(one folder per class)")
    if opts.classes:
        missing = [c for c in opts.classes if c not in classes]
        if missing:
            raise UserError(f"class {missing[0]!r} is not a folder under {ws.original}")
        classes = [c for c in classes if c in opts.classes]
    for name in classes:
        if not _utf8(name):
            raw = os.fsencode(name)
            raise UserError(f"class folder {raw!r} under {ws.original} has a name that is not UTF-8, so it cannot "
                            "become a search query: rename it (e.g. convmv -f gbk -t utf-8) or leave it out with --class")
    return classes


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def class_queries(ws: Workspace, opts: ScrapeOptions, classes: list[str]) -> dict[str, list[str]]:
    overrides = load_overrides(_in_ws(ws, opts.queries), ws.class_names("original")) if opts.queries else {}
    return plan_queries(classes, opts.template, opts.suffix, overrides)


def load_url_lists(ws: Workspace, source: str, classes: list[str]) -> dict[str, list[str]]:
    """class -> URLs, from YAML {class: [url, ...]} or a folder holding <class>.txt (one URL a line)."""
    path = _in_ws(ws, source)
    known = ws.class_names("original")
    if path.is_dir():
        doc: Mapping[str, Any] = {}
        files = sorted(path.glob("*.txt"))
        if not any(f.stem in known for f in files):
            raise UserError(f"urls folder {path} holds no <class>.txt file for any class folder under "
                            f"data/original (e.g. {known[0] if known else 'cat'}.txt, one URL a line)")
        for f in files:
            lines = _read(f).splitlines()
            doc = {**doc, f.stem: [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]}
    elif path.is_file():
        try:
            doc = yaml.safe_load(_read(path)) or {}
        except yaml.YAMLError:
            raise UserError(f"urls file {path} is not valid YAML ({{class: [url, ...]}})") from None
        if not isinstance(doc, Mapping):
            raise UserError(f"urls file {path} must map class names to lists of URLs")
    else:
        raise UserError(f"urls file {path} does not exist")
    out = {}
    for key, urls in doc.items():
        name = str(key)
        if name not in known:
            raise UserError(f"urls file {path}: {name!r} is not a class folder under data/original")
        urls = [urls] if isinstance(urls, str) else urls
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise UserError(f"urls file {path}: {name}: expected a list of URLs")
        if name in classes:
            out[name] = list(dict.fromkeys(u.strip() for u in urls if u.strip()))
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"urls file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"urls file {path} cannot be read ({exc.strerror or exc})") from None


def _in_ws(ws: Workspace, name: str) -> Path:
    p = Path(name).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return ws.root / p
