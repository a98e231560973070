"""Image licences: the names `--license` takes, what each engine's own words map to, the filter.

Codes are Openverse's (Creative Commons short names): cc0, pdm, by, by-sa, by-nd, by-nc, by-nc-sa,
by-nc-nd, sampling+, nc-sampling+. `commercial` and `modification` are shorthands for the codes
that allow commercial use and derivative works (as Openverse's `license_type` defines them).
A licence an engine names that is none of these codes is kept as the engine wrote it and never
passes a `--license` filter; an engine that names none gives `None` (unknown).
"""

from __future__ import annotations

import re
from typing import Iterable

from datacurate.core.errors import UserError

CODES = ("cc0", "pdm", "by", "by-sa", "by-nd", "by-nc", "by-nc-sa", "by-nc-nd", "sampling+", "nc-sampling+")
SHORTHANDS = {
    "commercial": frozenset({"cc0", "pdm", "by", "by-sa", "by-nd", "sampling+"}),
    "modification": frozenset({"cc0", "pdm", "by", "by-sa", "by-nc", "by-nc-sa", "sampling+", "nc-sampling+"}),
}
# Engines whose answers name each image's licence; the others (bing, baidu, greedy, urls) do not.
LICENSED_ENGINES = ("wikimedia", "openverse", "flickr")

# flickr.photos.licenses.getInfo: id -> (code, version, url); 0 is "All Rights Reserved".
FLICKR = {
    "0": ("all-rights-reserved", None, None),
    "1": ("by-nc-sa", "2.0", "https://creativecommons.org/licenses/by-nc-sa/2.0/"),
    "2": ("by-nc", "2.0", "https://creativecommons.org/licenses/by-nc/2.0/"),
    "3": ("by-nc-nd", "2.0", "https://creativecommons.org/licenses/by-nc-nd/2.0/"),
    "4": ("by", "2.0", "https://creativecommons.org/licenses/by/2.0/"),
    "5": ("by-sa", "2.0", "https://creativecommons.org/licenses/by-sa/2.0/"),
    "6": ("by-nd", "2.0", "https://creativecommons.org/licenses/by-nd/2.0/"),
    "7": ("pdm", None, "https://www.flickr.com/commons/usage/"),          # no known copyright restrictions
    "8": ("pdm", None, "http://www.usa.gov/copyright.shtml"),            # United States Government Work
    "9": ("cc0", "1.0", "https://creativecommons.org/publicdomain/zero/1.0/"),
    "10": ("pdm", "1.0", "https://creativecommons.org/publicdomain/mark/1.0/"),
}


def parse_filter(value) -> frozenset[str] | None:
    """The licence codes `--license` allows (None: no filter); unknown names are a UserError."""
    if value in (None, "", (), []):
        return None
    names = value if isinstance(value, (list, tuple)) else str(value).split(",")
    names = [str(n).strip().lower() for n in names if str(n).strip()]
    unknown = [n for n in names if n not in CODES and n not in SHORTHANDS]
    if unknown:
        raise UserError(f"license: unknown licence {unknown[0]!r}; known: {', '.join(CODES)}, "
                        f"or the shorthands {', '.join(SHORTHANDS)}")
    codes = [n for n in names if n in CODES]
    allowed = set(codes or CODES)
    for n in names:
        if n in SHORTHANDS:
            allowed &= SHORTHANDS[n]
    if not allowed:
        raise UserError(f"license: {','.join(names)} allows no licence at all (e.g. by-nc with commercial)")
    return frozenset(allowed)


def allows(allowed: frozenset[str] | None, code: str | None) -> bool:
    return allowed is None or code in allowed


def normalise(name: str | None, url: str | None = None) -> tuple[str | None, str | None]:
    """(code, version) from an engine's words ("CC BY-SA 4.0", "cc-by-sa-4.0", "Public domain", a
    creativecommons.org URL); an unknown name comes back unchanged, with no version."""
    for text in (url, name):
        if not text:
            continue
        t = str(text).strip().lower()
        m = re.search(r"creativecommons\.org/(licenses|publicdomain)/([a-z-]+)/(\d\.\d)?", t)
        if m:
            kind, body, version = m.groups()
            code = {"zero": "cc0", "mark": "pdm"}.get(body, body) if kind == "publicdomain" else body
            if code in CODES:
                return code, version
        m = re.fullmatch(r"(?:cc[ -])?(by(?:-(?:nc|sa|nd))*)(?:[ -](\d\.\d))?(?: .*)?", t.replace("cc-", "cc "))
        if m and m.group(1) in CODES:
            return m.group(1), m.group(2)
        if re.fullmatch(r"cc[ -]?0(?:[ -]1\.0)?|cc[ -]?zero|cc0 1\.0 universal.*", t):
            return "cc0", "1.0"
        if t in ("public domain", "pd", "pdm", "public domain mark") or t.startswith(("pd-", "public domain ")):
            return "pdm", None
    return (str(name).strip() if name else None), None


def filter_codes(allowed: frozenset[str] | None) -> Iterable[str]:
    return sorted(allowed) if allowed is not None else ()
