"""The commented datacurate.yaml that `datacurate init` writes, generated from the option models.

Every key of every section appears with its default and one-line doc (the model's), so the file
cannot drift from the code; a few structured keys get an example below their line.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from datacurate.stages import flag_of, options_model
from datacurate.core.workspace import DEFAULT_PATHS

ORDER = ("paths", "clean", "scrape", "vet", "ray", "split", "train", "evaluate", "predict")
COMMENTED = ("paths", "ray")  # sections written commented out whole (no `paths:` / `ray:` line in effect)
COLUMN = 30

HEADER = """\
# datacurate workspace configuration (written by `datacurate init` from the option models).
# Keys are also command-line flags (underscores become dashes) unless marked "yaml only";
# precedence is flag > this file > built-in default. Uncomment a line to change a default.
# A datacurate.yaml over 1 MB is refused (it holds settings; long lists such as queries belong in the files it names).
"""

NOTES: dict[str, str] = {  # a comment line after a section's keys
    "paths": "each its own folder: two that are one folder, or one inside another, are refused",
}

EXAMPLES: dict[tuple[str, str], list[str]] = {
    ("train", "augment"): [
        "augment:                  # or a preset with keys overridden (see `datacurate augment-preview`):",
        "  preset: garbage",
        "  hflip: 0.5              # probabilities: hflip, vflip, rotate90, grayscale, erasing",
        "  rotate90: 0.75",
        "  resized_crop: [0.35, 1.0]   # RandomResizedCrop scale; or crop_jitter: PIXELS",
        "  brightness: 0.1         # contrast, saturation, hue (<= 0.5): ColorJitter per component",
        "  auto: none              # randaugment (auto_ops, auto_magnitude) | trivialaugment | autoaugment"],
    ("train", "groups"): [
        "groups:                   # one optimizer per kind; every group exists from the first step",
        "  - {name: layer3.18-, modules: [layer3.18-], optimizer: adam, lr: 5.0e-5}",
        "  - {name: layer4, modules: [layer4], optimizer: adam, lr: 5.0e-5}",
        "  - {name: fc, modules: [head], optimizer: adam, lr: 5.0e-4}"],
    ("train", "stages"): [
        "stages:                   # instead of head_epochs/epochs/milestones",
        "  - {name: head, epochs: 2, freeze_until: head}",
        "  - {name: finetune, epochs: 8, freeze_until: layer3.18, schedule: {kind: multistep, milestones: [3, 6], gamma: [0.2, 0.1]}}"],
}


def value_text(value: Any) -> str:
    """A default as YAML writes it on one line: null, 10, [3, 6], "{class} {suffix}"."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def section_lines(section: str) -> list[str]:
    """The section's header line and one commented line per key."""
    model = options_model(section)
    lines = [f"# {section}:" if section in COMMENTED else f"{section}:"]
    for key, field in model.model_fields.items():
        default = DEFAULT_PATHS[key] if section == "paths" else field.get_default(call_default_factory=True)
        doc = (field.description or "").replace("(None:", "(null:").replace(" None ", " null ")
        if section not in COMMENTED and flag_of(section, key) is None:
            doc += " (yaml only)"
        entry = f"{key}: {value_text(default)}"
        lines.append(f"#   {entry:<{COLUMN - 4}}" + (f"# {doc}" if doc else "").rstrip() if len(entry) < COLUMN - 5
                     else f"#   {entry}  # {doc}".rstrip(" #"))
        lines += [f"#   {line}" for line in EXAMPLES.get((section, key), [])]
    if section in NOTES:
        lines.append(f"#   {'':<{COLUMN - 4}}# {NOTES[section]}")
    return lines


def render() -> str:
    """The whole template."""
    parts = [HEADER]
    for section in ORDER:
        parts.append("\n".join(section_lines(section)) + "\n")
    return "\n".join(parts)


# -- the docs' options tables -------------------------------------------------------------------
TABLE = re.compile(r"(<!-- options: (\w+) -->\n).*?(<!-- /options -->)", re.S)


def options_table(section: str) -> str:
    """The options of a section as the docs show them: flag, yaml key, default, meaning (a markdown table)."""
    model = options_model(section)
    rows = ["| flag | yaml key | default | meaning |", "|---|---|---|---|"]
    for key, field in model.model_fields.items():
        where = flag_of(section, key)
        flag = "yaml only" if where is None else f"`{where[1]}`" if where[0] == section else f"`{where[0]} {where[1]}`"
        default = DEFAULT_PATHS[key] if section == "paths" else field.get_default(call_default_factory=True)
        doc = (field.description or "").replace("|", "\\|")
        rows.append(f"| {flag} | `{section}.{key}` | `{value_text(default).replace('|', chr(92) + '|')}` | {doc} |")
    return "\n".join(rows) + "\n"


def refresh_tables(text: str) -> str:
    """`text` with every `<!-- options: SECTION -->` ... `<!-- /options -->` block regenerated."""
    return TABLE.sub(lambda m: m.group(1) + options_table(m.group(2)) + m.group(3), text)


def main(paths: list[str]) -> int:
    """`python -m datacurate.template docs/*.md README.md`: rewrite the options tables in place; 1 when one changed."""
    changed = 0
    for name in paths:
        path = Path(name)
        text = path.read_text(encoding="utf-8")
        new = refresh_tables(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path}")
            changed += 1
    return 1 if changed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
