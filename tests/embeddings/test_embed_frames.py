"""g4.embed on lists and DataFrames through the manager: the vectors, the note column for cut texts, the
refusals (one line each, naming the fix) and the task prefixes catalog entries declare."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pandas as pd
import pytest

import gpt4all_magic as g4
from gpt4all_magic.engines.fake import FakeBackend
from gpt4all_magic.errors import BatchInputError, InvalidOptionError, MissingDependencyError, NotEnoughMemoryError
from gpt4all_magic.manager import ModelManager
from gpt4all_magic.models import memory

TEXTS = ["The cat sat on the mat.", "A dog barked all night long.", "Quantum computers use qubits."]


def test_embed_texts_is_a_float32_matrix_equal_to_the_managers(manager):
    vectors = g4.embed(TEXTS)
    assert isinstance(vectors, np.ndarray) and vectors.dtype == np.float32 and vectors.shape == (3, 576)
    assert np.array_equal(vectors, manager.embed(TEXTS).vectors)
    assert manager.current is not None and manager.embedder is not None  # both models stay loaded


def test_embed_a_frame_adds_vectors_in_row_order(manager):
    df = pd.DataFrame({"text": TEXTS, "label": ["a", "b", "c"]}, index=[10, 20, 30])
    out = g4.embed(df, "text")
    assert list(out.columns) == ["text", "label", "embedding", "embedding_note"] and list(out.index) == [10, 20, 30]
    assert np.allclose(np.stack(out["embedding"]), g4.embed(TEXTS), atol=1e-6)
    assert out["embedding_note"].isna().all() and "embedding" not in df.columns  # the input is not changed
    assert out.attrs["embedding_model"] == "smollm2-135m-instruct"


def test_a_cut_text_gets_a_note_on_its_row_and_on_stderr(hermetic, capsys):
    m = ModelManager(backend=FakeBackend(n_ctx=4), models_dir=hermetic)
    df = pd.DataFrame({"text": ["short one", "alpha beta gamma delta epsilon zeta"]}, index=["a", "b"])
    out = g4.embed(df, "text", manager=m)
    assert out.loc["a", "embedding_note"] is None
    assert out.loc["b", "embedding_note"].startswith("row 'b' is longer than smollm2-135m-instruct's 4-token context")
    g4.embed(["alpha beta gamma delta epsilon zeta"], manager=m)
    assert "note: 1 text(s) longer than smollm2-135m-instruct's context were cut" in capsys.readouterr().err
    chunked = g4.embed(df, "text", long="chunk", manager=m)
    assert "pieces were embedded and averaged" in chunked.loc["b", "embedding_note"]


@pytest.mark.parametrize("data, column, error, message", [
    (pd.DataFrame({"n": [1, 2, 3]}), "n", BatchInputError, "Column 'n' has 3 cell(s) that are not text (int)"),
    (pd.DataFrame({"t": ["ok", None]}), "t", BatchInputError, "Column 't' has 1 cell(s) that are not text (NaN)"),
    (pd.DataFrame({"t": ["ok", "  "]}), "t", InvalidOptionError, "1 text(s) are empty (position 1)"),
    (pd.DataFrame({"text": ["ok"]}), "txt", BatchInputError, "No column 'txt' in the DataFrame. Did you mean 'text'?"),
    (pd.DataFrame({"text": ["ok"]}), None, BatchInputError, "embed(df) needs the text column"),
    (["ok"], "text", BatchInputError, "column='text' is for a DataFrame"),
    ("one text", None, InvalidOptionError, "wrap one text in a list"),
])
def test_bad_input_is_one_line_naming_the_fix(fake_manager, data, column, error, message):
    with pytest.raises(error) as info:
        g4.embed(data, column)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_an_embedding_model_too_big_for_free_ram_is_refused(hermetic, monkeypatch):
    monkeypatch.setattr(memory, "available_ram", lambda: 10_000_000)
    m = ModelManager(models_dir=hermetic)
    with pytest.raises(NotEnoughMemoryError) as info:
        m.embed(["hello"])
    message = str(info.value)
    assert message.startswith("smollm2-135m-instruct needs about") and "only 10.0 MB is free" in message
    assert "embed anyway with force=True" in message and "\n" not in message and m.embedder is None


def test_a_missing_optional_dependency_names_the_extra(fake_manager, monkeypatch):
    monkeypatch.setitem(sys.modules, "jscatter", None)  # import jscatter now raises ImportError
    df = pd.DataFrame({"text": ["one cat", "two dogs", "three birds"]})
    with pytest.raises(MissingDependencyError) as info:
        g4.map(df, "text")
    assert str(info.value) == ("The data map needs jupyter-scatter, which is not installed; install it with "
                               '`pip install "gpt4all-magic[map]"`.')


def test_prefixes_come_from_the_catalog_entry(hermetic, bundled_path, tmp_path):
    bge = tmp_path / "bge-small-en-v1.5-q8_0.gguf"  # the catalog's file name: its entry's prefixes apply
    other = tmp_path / "my-embedder.gguf"
    for path in (bge, other):
        shutil.copyfile(bundled_path, path)
    m = ModelManager(backend=FakeBackend(), models_dir=hermetic)
    m.embed(["what is tea?"], model=str(bge), pooling="mean", kind="query")
    m.embed(["Tea is a drink."], model=str(bge), pooling="mean")
    assert m.embedder.calls == [["Represent this sentence for searching relevant passages: what is tea?"],
                                ["Tea is a drink."]]
    m.embed(["what is tea?"], model=str(other), pooling="mean", kind="query")
    assert m.embedder.calls == [["what is tea?"]]  # not in the catalog, not nomic-bert: no prefix
