"""A command's flags built from its options model: name, type, default and help come from the fields.

`@model_options(CleanOptions)` adds `--key-with-dashes` for every field of the model that its section's
command sets (datacurate.stages.FLAGS says where a flag differs). Every flag defaults to None, so a
flag not given leaves datacurate.yaml and the model's default in force; the model checks the value,
so a bad one is the same one-line error as in datacurate.yaml or the Python API.
"""

from __future__ import annotations

import typing
from typing import Any, Callable, Iterable, Literal

import click

from datacurate.core.errors import UserError
from datacurate.core.options import Flag, StageOptions
from datacurate.stages import flag_of, flag_spec

F = typing.TypeVar("F", bound=Callable[..., Any])


def model_options(model: type[StageOptions], *, command: str | None = None, only: Iterable[str] | None = None,
                  exclude: Iterable[str] = ()) -> Callable[[F], F]:
    """Add a click option per field of `model` that `command` (default: the model's section) sets.

    `only` names the fields to add whatever their command (another command's flag of the same key,
    as `report --min-per-class`); `exclude` leaves fields out. Options keep the model's field order.
    """
    names = list(only) if only is not None else [k for k in model.model_fields if _on(model, k, command or model.SECTION)]
    names = [k for k in names if k not in set(exclude)]

    def decorate(func: F) -> F:
        for name in reversed(names):
            func = option(model, name)(func)
        return func

    return decorate


def _on(model: type[StageOptions], key: str, command: str) -> bool:
    """Whether `command` has a generated flag for `key`."""
    spec, where = flag_spec(model.SECTION, key), flag_of(model.SECTION, key)
    return spec is not None and spec.generated and where is not None and where[0] == command


def option(model: type[StageOptions], name: str) -> Callable[[F], F]:
    """The click option of one field."""
    spec = flag_spec(model.SECTION, name) or Flag()
    field = model.model_fields[name]
    flag = (flag_of(model.SECTION, name) or (None, "--" + name.replace("_", "-")))[1]
    kinds = [k for k in _members(field.annotation) if k is not type(None)]
    if kinds == [bool]:
        off = spec.off or "--no-" + flag.removeprefix("--")
        return click.option(f"{flag}/{off}", *spec.aliases, name, default=None, help=help_text(model, name, spec))
    extra: dict[str, Any] = {"type": _type(kinds, spec), "metavar": spec.metavar, "multiple": spec.multiple}
    if spec.numbers:
        extra["callback"] = numbers(int if spec.numbers == "int" else float, single=len(kinds) > 1)
    return click.option(flag, *spec.aliases, name, default=None, help=help_text(model, name, spec), **extra)


def _type(kinds: list, spec: Flag) -> Any:
    if spec.choices:
        return click.Choice(spec.choices)
    if spec.path:
        return click.Path()
    if spec.text or spec.numbers or len(kinds) != 1:
        return click.STRING
    kind = kinds[0]
    if typing.get_origin(kind) is Literal:
        return click.Choice([str(v) for v in typing.get_args(kind)])
    return {int: click.INT, float: click.FLOAT}.get(kind, click.STRING)


def _members(annotation: Any) -> tuple:
    return typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, type(int | None)) else (annotation,)


def help_text(model: type[StageOptions], name: str, spec: Flag) -> str:
    """The field's doc, the flag's note, then its default and range: "Smallest side in pixels (default 32; at least 1)."."""
    field = model.model_fields[name]
    doc = (field.description or "").replace("(None: ", "(default: ")
    default = field.get_default(call_default_factory=True)
    said = [f"default {_shown(default)}"] if default not in (None, "", (), [], {}) and "(default: " not in doc else []
    said += [model.bounds_text(name)] if model.bounds_text(name) else []
    if said and doc.endswith(")") and "(default: " in doc:  # "(default: all cores; at least 1)"
        text = f"{doc[:-1]}; {'; '.join(said)})"
    else:
        text = doc + (f" ({'; '.join(said)})" if said else "")
    text = _sentence(text, model)
    return f"{text}; {spec.note}." if spec.note else f"{text}."


def _sentence(text: str, model: type[StageOptions]) -> str:
    """`text` with a capital, unless it starts with a name ("jsonl: ...", "tta policy: ...", "imagenet | none")."""
    words = text.split(" ", 2)
    names = set(model.model_fields) | {str(v) for f in model.model_fields.values() for k in _members(f.annotation)
                                       if typing.get_origin(k) is Literal for v in typing.get_args(k)}
    if words[0].endswith(":") or words[1:2] == ["|"] or (words[0] in names and words[1:2] and words[1].endswith(":")):
        return text
    return text[:1].upper() + text[1:]


def _shown(value: Any) -> str:
    """A default as it is typed on the command line: 3,6 for a list, on/off for a switch."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return f'"{value}"' if isinstance(value, str) and " " in value else str(value)


def numbers(kind: type, single: bool = False) -> Callable:
    """A click callback: '3,6' -> [3, 6] (one number alone stays a number where `single`); one line when not numbers."""
    def parse(ctx: click.Context, param: click.Parameter, value: str | None):
        if value is None:
            return None
        try:
            out = [kind(v) for v in value.split(",")]
        except ValueError:
            raise UserError(f"{param.opts[0]} must be {'whole ' if kind is int else ''}numbers separated by commas, got {value!r}") from None
        return out[0] if single and len(out) == 1 else out
    return parse
