"""Stage options: one pydantic model per stage, the single source of truth for names, types,
defaults, ranges and one-line docs.

A datacurate.yaml section, the command's flags (underscores become dashes) and the Python API's
keywords all validate through the stage's model, so a misspelled key or a value out of range is
the same one-line UserError wherever it comes from. Adding an option is one line in the model:

    threshold: int = opt(10, "near-duplicate Hamming distance in bits", ge=0, le=32)

`opt(default, doc, **constraints)` takes pydantic's Field constraints (ge, gt, le, lt) and
`rule="..."` for the wording of the error when the generic one ("a whole number of at least 0")
does not say it best. Every model is strict (no "3" for 3, no True for 1) and forbids unknown keys;
structured values (train groups, scrape engines) are checked by their parsers in field validators.
"""

from __future__ import annotations

import difflib
import inspect
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from datacurate.core.errors import UserError, cut

_MISSING: Any = ...


def opt(default: Any = _MISSING, doc: str = "", *, rule: str | None = None, **constraints: Any) -> Any:
    """A model field: its default, its one-line doc, its range (ge/gt/le/lt) and, optionally, the error's wording."""
    extra = {"rule": rule} if rule else None
    if isinstance(default, (list, dict, set)):
        value = default
        return Field(default_factory=lambda: type(value)(value), description=doc, json_schema_extra=extra,
                     **constraints)
    return Field(default, description=doc, json_schema_extra=extra, **constraints)


@dataclass(frozen=True)
class Flag:
    """How an option's command-line flag differs from `--key-with-dashes` on its section's command.

    The field itself gives the rest: type, default, range and doc (datacurate/cli/flags.py builds the
    click option from both). `flag` is "--name" (same command), "COMMAND --name" (another command) or
    "COMMAND ARG" (an argument).
    """

    flag: str = ""                       # "": --key-with-dashes on the section's command
    aliases: tuple[str, ...] = ()        # short forms, e.g. ("-n",)
    metavar: str | None = None           # what the value is, in --help: FILE, ALPHA, NAMES
    multiple: bool = False               # repeatable: the command gets a tuple
    choices: tuple[str, ...] = ()        # a closed list the field's type does not spell out
    numbers: str | None = None           # "int" or "float": comma-separated numbers, "3,6" -> [3, 6]
    text: bool = False                   # taken as text whatever the field's type (a size such as 20MB)
    path: bool = False                   # a file or folder
    off: str | None = None               # a bool's off switch when it is not --no-NAME
    note: str = ""                       # said in --help after the field's doc
    generated: bool = True               # False: the command declares it itself (--ray, arguments)


class StageOptions(BaseModel):
    """Base of the stage models: strict, unknown keys forbidden, errors as one UserError line."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True, validate_default=True,
                              protected_namespaces=())
    SECTION: ClassVar[str] = ""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise UserError(type(self).describe(exc)) from None
        except UserError as exc:  # from a structured parser (engines, groups): name the section
            text = str(exc)
            if self.SECTION and not text.startswith(self.SECTION):
                raise UserError(f"{self.SECTION}: {text}") from None
            raise

    # -- building -----------------------------------------------------------------------------------
    @classmethod
    def resolve(cls, config: Mapping[str, Any] | None, flags: Mapping[str, Any] | None = None) -> "StageOptions":
        """Flag (or API keyword) > datacurate.yaml section > default; None (and an empty tuple) means "not given"."""
        if config is not None and not isinstance(config, Mapping):
            raise UserError(f"`{cls.SECTION}:` must be a mapping of options, got {cut(repr(config))}")
        values = {k: v for k, v in (config or {}).items() if v is not None}
        values.update({k: v for k, v in (flags or {}).items() if v is not None and v != ()})
        return cls(**values)

    @classmethod
    def check(cls, section: Mapping[str, Any]) -> None:
        """Validate a datacurate.yaml section on its own (raises UserError)."""
        cls.resolve(section)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "StageOptions":
        """Validate resolved options (None values mean the default)."""
        return cls.resolve(values)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """{name: default} of every option (None where the default is worked out at run time)."""
        return {name: f.get_default(call_default_factory=True) for name, f in cls.model_fields.items()}

    def as_dict(self) -> dict[str, Any]:
        return dict(self)

    # -- documentation ------------------------------------------------------------------------------
    @classmethod
    def type_text(cls, name: str) -> str:
        """The option's type as a reader writes it: int, float | None, 'hardlink' | 'symlink' | 'copy'."""
        return _type_text(cls.model_fields[name].annotation)

    @classmethod
    def parameters(cls) -> list[inspect.Parameter]:
        """Keyword-only parameters for a function taking these options (defaults and types from the model)."""
        return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=f.get_default(call_default_factory=True),
                                  annotation=cls.type_text(name)) for name, f in cls.model_fields.items()]

    @classmethod
    def bounds_text(cls, name: str) -> str:
        """The range of a number option in words ("from 0 to 32", "at least 1", "in [0, 1)"); "" when it has none."""
        f = cls.model_fields[name]
        return _bounds(f.annotation is int or int in _members(f.annotation), _bounds_of(f.metadata))

    @classmethod
    def doc_lines(cls) -> list[str]:
        """One line per option: name: type = default  doc."""
        out = []
        for name, f in cls.model_fields.items():
            out.append(f"{name}: {cls.type_text(name)} = {f.get_default(call_default_factory=True)!r}"
                       + (f"  -- {f.description}" if f.description else ""))
        return out

    # -- errors -------------------------------------------------------------------------------------
    @classmethod
    def label(cls, name: str) -> str:
        return f"{cls.SECTION}: {name}"

    @classmethod
    def unknown(cls, name: str) -> str:
        known = list(cls.model_fields)
        near = difflib.get_close_matches(name, known, n=1) if len(name) < 100 else []
        hint = f" (did you mean {near[0]}?)" if near else ""
        return f"unknown option {cls.SECTION}.{cut(name, 100)}{hint}; known: {', '.join(sorted(known)) or 'none'}"

    @classmethod
    def describe(cls, exc: ValidationError) -> str:
        """The first error of a ValidationError as one line: `split: valid must be a fraction in [0, 1), got 1.5`."""
        err = exc.errors(include_url=False)[0]
        name = str(err["loc"][0]) if err["loc"] else ""
        if err["type"] == "extra_forbidden":
            return cls.unknown(name)
        if err["type"] in ("value_error", "assertion_error") or name not in cls.model_fields:
            text = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
            return f"{cls.SECTION}: {text}" if cls.SECTION else text
        value = err.get("input")
        if err["type"] == "finite_number":
            return f"{cls.label(name)} must be a finite number, got {cut(repr(value))}"
        return f"{cls.label(name)} must be {cls.rule(name)}, got {cut(repr(value))}"

    @classmethod
    def rule(cls, name: str) -> str:
        """What a good value of option `name` is, in words, from its type and range."""
        f = cls.model_fields[name]
        if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("rule"):
            return str(f.json_schema_extra["rule"])
        kinds = [a for a in _members(f.annotation) if a is not type(None)]
        bounds = _bounds_of(f.metadata)
        if len(kinds) == 1 and kinds[0] in (int, float):
            return _numeric(kinds[0] is int, bounds)
        if len(kinds) == 1 and kinds[0] is bool:
            return "true or false"
        if len(kinds) == 1 and kinds[0] is str:
            return "a text"
        if len(kinds) == 1 and typing.get_origin(kinds[0]) is Literal:
            return "one of " + ", ".join(str(v) for v in typing.get_args(kinds[0]))
        return " or ".join(_type_text(k) for k in kinds)


def _bounds_of(metadata: list) -> dict[str, float]:
    return {type(m).__name__.lower(): getattr(m, type(m).__name__.lower()) for m in metadata
            if type(m).__name__ in ("Ge", "Gt", "Le", "Lt")}


def _numeric(whole: bool, b: dict[str, float]) -> str:
    kind = "a whole number" if whole else "a number"
    text = _bounds(whole, b)
    if not text or text.startswith(("from", "between", "in [")):
        return f"{kind} {text}".strip()
    return f"{kind} of {text}" if text.startswith("at least") else f"{kind} {text}"


def _bounds(whole: bool, b: dict[str, float]) -> str:
    g = lambda v: f"{v:g}" if isinstance(v, float) and math.isfinite(v) else str(v)  # noqa: E731
    if "ge" in b and "le" in b:
        return f"from {g(b['ge'])} to {g(b['le'])}" if whole else f"between {g(b['ge'])} and {g(b['le'])}"
    if "ge" in b and "lt" in b:
        return f"in [{g(b['ge'])}, {g(b['lt'])})"
    parts = [f"at least {g(b['ge'])}" if "ge" in b else "", f"above {g(b['gt'])}" if "gt" in b else "",
             f"at most {g(b['le'])}" if "le" in b else "", f"below {g(b['lt'])}" if "lt" in b else ""]
    return " and ".join(p for p in parts if p)


def _members(annotation: Any) -> tuple:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _type_text(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_text(a) for a in typing.get_args(annotation))
    if origin is Literal:
        return " | ".join(repr(v) for v in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_text(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))
