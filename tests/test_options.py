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


# -- LoadSettings: one typed definition of how models load -------------------------------------------------

def test_load_settings_are_validated_in_one_place_with_one_auto_thread_count(tmp_path):
    from gpt4all_magic.manager import ModelManager
    from gpt4all_magic.options import AUTO_THREADS, LoadSettings
    from gpt4all_magic.system import default_threads

    settings = LoadSettings()
    assert (settings.n_ctx, settings.n_threads, settings.n_batch, settings.busy_timeout, settings.models_dir) == (
        4096, AUTO_THREADS, 512, 300.0, None)
    assert settings.replace(models_dir=str(tmp_path)).models_dir == tmp_path
    assert settings.replace(models_dir="").models_dir is None  # empty: the default folder
    for changes, message in [({"n_ctx": 8}, "n_ctx must be at least 16, got 8."),
                             ({"n_threads": -1}, "n_threads must be 0 (auto) or a positive number, got -1."),
                             ({"n_batch": 0}, "n_batch must be at least 1, got 0."),
                             ({"busy_timeout": 0}, "busy_timeout must be a number of seconds above 0, got 0."),
                             ({"n_ctx": "4096"}, "n_ctx must be at least 16, got '4096'."),
                             ({"ctx": 4096}, "Unknown load setting 'ctx'")]:
        with pytest.raises(InvalidOptionError, match=message.replace("(", r"\(").replace(")", r"\)")):
            settings.replace(**changes)
    manager = ModelManager(n_threads=0)
    assert manager.n_threads == AUTO_THREADS and manager.threads() == default_threads()
    with pytest.raises(InvalidOptionError, match="n_ctx must be at least 16"):
        ModelManager(n_ctx=8)
    with pytest.raises(InvalidOptionError, match="n_batch must be at least 1"):
        manager.n_batch = 0
    assert manager.n_batch == 512  # a refused value changes nothing


def test_load_checks_settings_before_loading_and_passes_n_batch_to_llama_cpp(manager):
    import gpt4all_magic as g4

    loaded = manager.current
    with pytest.raises(InvalidOptionError, match="n_ctx must be at least 16, got 8"):
        g4.load(n_ctx=8)
    with pytest.raises(InvalidOptionError, match="n_threads must be 0"):
        manager.load(n_threads=-2)
    assert manager.current is loaded  # nothing was reloaded
    smaller = g4.load(n_ctx=2048, n_batch=64)
    assert smaller.describe()["n_batch"] == 64
    assert g4.load(n_ctx=2048, n_threads=0).n_threads == manager.threads()  # 0: the physical cores
    manager.load(n_ctx=2048, n_batch=512)
