"""The commands' flags are built from the option models: one per key, named, typed and documented by its field."""

from __future__ import annotations

import click

from datacurate.cli.flags import _shown
from datacurate.cli.main import main
from datacurate.stages import flag_of, flag_spec, options_model, sections


def _options(command: str) -> dict[str, click.Option]:
    cmd = main.get_command(click.Context(main), command)
    return {p.name: p for p in cmd.params if isinstance(p, click.Option)}


def test_every_generated_flag_is_its_field():
    checked = 0
    for section in sections():
        model = options_model(section)
        for key, field in model.model_fields.items():
            where, spec = flag_of(section, key), flag_spec(section, key)
            if where is None or not spec.generated:
                continue
            option = _options(where[0])[key]
            assert where[1] in option.opts, (section, key, option.opts)
            assert option.default is None, (section, key)  # not given: datacurate.yaml, then the model's default
            default = field.get_default(call_default_factory=True)
            said = "(None: " in (field.description or "") or "(default: " in (field.description or "")
            if default not in (None, "", (), [], {}) and not said:  # else the doc says what the default does
                assert f"default {_shown(default)}" in option.help, (section, key, option.help)
            assert model.bounds_text(key) in option.help, (section, key, option.help)
            checked += 1
    assert checked > 130


def test_a_bool_flag_switches_both_ways_and_lists_take_commas():
    train = _options("train")
    assert train["amp"].secondary_opts == ["--no-amp"] and train["no_bias_decay"].secondary_opts == ["--bias-decay"]
    ctx = click.Context(main)
    assert train["milestones"].type_cast_value(ctx, "3,6") == "3,6"  # the callback splits it
    assert train["milestones"].callback(ctx, train["milestones"], "3,6") == [3, 6]
    assert train["gamma"].callback(ctx, train["gamma"], "0.5") == 0.5
    scrape = _options("scrape")
    assert scrape["classes"].multiple and "--class" in scrape["classes"].opts and "-n" in scrape["max_per_class"].opts
