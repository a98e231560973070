"""Queries per class: a template with {class} and {suffix}, and per-class overrides from YAML.

The queries file maps a class folder name to its queries::

    ben: "ben 10 action figure"          # another text for an ambiguous name
    cat: ["cat photo", "kitten"]         # several queries
    dog: skip                            # skip the class (also: false, null, [] or {skip: true})
    可回收物_易拉罐: [易拉罐, 铝罐]

Override texts may use {class} and {suffix} too. A class not in the file uses the template.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from datacurate.core.errors import UserError

_FIELD = re.compile(r"\{([^{}]*)\}")
_SKIP = object()


def class_text(name: str) -> str:
    """A class folder name as search text: underscores to spaces, spaces collapsed."""
    return " ".join(name.replace("_", " ").split())


def render(template: str, klass: str, suffix: str) -> str:
    """Fill {class} and {suffix}; any other {field} is an error."""
    for name in _FIELD.findall(template):
        if name not in ("class", "suffix"):
            raise UserError(f"template {template!r}: unknown field {{{name}}}; use {{class}} and {{suffix}}")
    text = template.replace("{class}", class_text(klass)).replace("{suffix}", suffix)
    return " ".join(text.split())


def check_template(template: str) -> None:
    if "{class}" not in template:
        raise UserError(f"template {template!r} has no {{class}}: every class would search for the same thing")
    render(template, "x", "")


def load_overrides(path: str | Path, classes: list[str]) -> dict[str, Any]:
    """class -> list of query templates, or _SKIP; unknown classes and bad entries are errors."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"queries file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"queries file {p} cannot be read ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"queries file {p}{f' line {mark.line + 1}' if mark else ''} is not valid YAML") from None
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise UserError(f"queries file {p} must map class names to queries (class: query or class: [q1, q2])")
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = str(key)
        if name not in classes:
            raise UserError(f"queries file {p}: {name!r} is not a class folder under data/original")
        out[name] = _entry(p, name, value)
    return out


def _entry(p: Path, name: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        if value.get("skip"):
            return _SKIP
        value = value.get("queries", value.get("query"))
    if value is None or value is False or value == "skip" or value == []:
        return _SKIP
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(q, (str, int, float)) and str(q).strip() for q in items):
        raise UserError(f"queries file {p}: {name}: expected a query, a list of queries, or skip")
    return [str(q) for q in items]


def plan_queries(classes: list[str], template: str, suffix: str, overrides: Mapping[str, Any]) -> dict[str, list[str]]:
    """class -> its queries (skipped classes left out), duplicates removed, order kept."""
    check_template(template)
    out = {}
    for klass in classes:
        entry = overrides.get(klass)
        if entry is _SKIP:
            continue
        texts = [render(t, klass, suffix) for t in (entry or [template])]
        out[klass] = list(dict.fromkeys(t for t in texts if t))
    return out
