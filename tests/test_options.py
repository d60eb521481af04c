"""The one options definition: GPT4All's defaults, validation with one-line messages, flags."""

import dataclasses

import pytest

from gpt4all_magic.errors import InvalidOptionError
from gpt4all_magic.options import GenerationOptions, option_specs


def test_defaults_are_gpt4alls():
    o = GenerationOptions()
    assert (o.max_tokens, o.temp, o.top_k, o.top_p, o.min_p, o.repeat_penalty, o.repeat_last_n) == (
        200, 0.7, 40, 0.4, 0.0, 1.18, 64)
    assert o.seed is None and o.stop == () and o.system_prompt is None


def test_every_field_has_a_spec_with_help():
    names = [f.name for f in dataclasses.fields(GenerationOptions)]
    specs = option_specs()
    assert [s.name for s in specs] == names
    assert all(s.help.endswith(".") for s in specs)
    assert next(s for s in specs if s.name == "temp").cli_flags == ("-t", "--temp", "--temperature")


@pytest.mark.parametrize("values, fragment", [
    ({"max_tokens": -5}, "max_tokens must be in [1, 1000000], got -5"),
    ({"max_tokens": 0}, "max_tokens must be in"),
    ({"temp": 5}, "temp must be in [0.0, 2.0], got 5.0"),
    ({"temp": -0.1}, "temp must be in"),
    ({"top_p": 0}, "top_p must be in (0.0, 1.0]"),
    ({"repeat_penalty": 0}, "repeat_penalty must be in (0.0, 5.0]"),
    ({"seed": -1}, "seed must be in"),
    ({"max_tokens": 2.5}, "max_tokens must be an integer"),
    ({"temp": "hot"}, "temp must be a number, got 'hot'"),
    ({"temp": True}, "temp must be a number"),
    ({"temp": float("nan")}, "NaN"),
    ({"stop": [""]}, "stop must be a list of non-empty strings"),
    ({"system_prompt": 3}, "system_prompt must be text"),
])
def test_invalid_values_give_one_line_errors(values, fragment):
    with pytest.raises(InvalidOptionError) as info:
        GenerationOptions.from_mapping(values)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_unknown_option_suggests_the_close_one():
    with pytest.raises(InvalidOptionError, match="Unknown generation option 'temperature_'. Did you mean 'temp'"):
        GenerationOptions.from_mapping({"temperature_": 0.1})


def test_strings_are_coerced_and_stop_accepts_one_string():
    o = GenerationOptions.from_mapping({"temp": "0.25", "max_tokens": "12", "stop": "###"})
    assert o.temp == 0.25 and o.max_tokens == 12 and o.stop == ("###",)


def test_from_mapping_layers_on_a_base_and_changed_reports_differences():
    base = GenerationOptions(temp=0.1)
    o = GenerationOptions.from_mapping({"max_tokens": 7}, base=base)
    assert o.temp == 0.1 and o.max_tokens == 7
    assert o.changed() == {"temp": 0.1, "max_tokens": 7}


def test_with_seed_draws_and_records_a_seed_once():
    o = GenerationOptions().with_seed()
    assert isinstance(o.seed, int) and 0 <= o.seed < 2**32
    assert o.with_seed().seed == o.seed
    assert GenerationOptions(seed=7).with_seed().seed == 7
