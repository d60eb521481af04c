"""Embeddings through the manager: llama.cpp's embedding mode beside the chat model, checked against
llama-cpp-python's own ``Llama.embed``; long texts, bad input, and the fake engine."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from helpers import raw_llama

from gpt4all_magic.engines.fake import FakeBackend
from gpt4all_magic.errors import InvalidOptionError, ModelLoadError
from gpt4all_magic.manager import ModelManager

TEXTS = ["The cat sat on the mat.", "A dog barked all night long.", "Quantum computers use qubits.",
         "Green tea is brewed at 80 degrees.", "The stock market fell sharply today.", "Rain is expected tomorrow."]


@pytest.fixture(scope="module")
def embedding_manager():
    """A manager whose chat model and embedding model are both the bundled SmolLM2 (mean pooling)."""
    m = ModelManager(n_ctx=2048)
    m.load()
    m.embed(["warm up"])
    yield m
    m.unload_embedder()
    m.unload()


def test_vectors_equal_llama_embed_on_the_same_model_and_pooling(embedding_manager, bundled_path):
    ours = embedding_manager.embed(TEXTS)
    assert ours.vectors.dtype == np.float32 and ours.vectors.shape == (len(TEXTS), 576)
    assert (ours.model, ours.pooling, ours.notes) == ("smollm2-135m-instruct", "mean", [])
    llm = raw_llama(model_path=str(bundled_path), embedding=True, pooling_type=1, n_ctx=512, n_batch=512,
                    n_ubatch=512, verbose=False)
    try:
        reference = np.array([llm.embed(text) for text in TEXTS], dtype=np.float64)
    finally:
        llm.close()
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    cosine = (ours.vectors.astype(np.float64) * reference).sum(axis=1)
    assert np.all(cosine > 1 - 1e-4), cosine
    assert np.allclose(np.linalg.norm(ours.vectors, axis=1), 1.0, atol=1e-5)


def test_batching_does_not_change_the_vectors(embedding_manager):
    texts = [f"{t} (variant {k})" for k in range(6) for t in TEXTS][:32]
    together = embedding_manager.embed(texts).vectors
    alone = np.stack([embedding_manager.embed([t]).vectors[0] for t in texts])
    assert (together * alone).sum(axis=1).min() > 1 - 1e-4


def test_embedding_keeps_the_chat_model_and_shows_in_status(embedding_manager):
    chat = embedding_manager.current
    embedding_manager.embed(["hello"])
    assert embedding_manager.current is chat  # not unloaded
    status = embedding_manager.status()
    assert status["model"] == "smollm2-135m-instruct"
    assert (status["embedding_model"], status["embedding_pooling"], status["embedding_dim"]) == (
        "smollm2-135m-instruct", "mean", 576)
    assert embedding_manager.generate([{"role": "user", "content": "Say hi."}], max_tokens_options()).text


def max_tokens_options():
    from gpt4all_magic.options import GenerationOptions

    return GenerationOptions(temp=0, max_tokens=5)


def test_a_chat_model_without_pooling_is_refused_with_the_fix(embedding_manager):
    with pytest.raises(ModelLoadError) as info:
        embedding_manager.load_embedder("smollm2-135m-instruct", pooling=None)  # already loaded with mean: kept
        embedding_manager.unload_embedder()
        embedding_manager.load_embedder("smollm2-135m-instruct")
    message = str(info.value)
    assert "\n" not in message and "declares no pooling" in message and "pooling='mean'" in message
    assert embedding_manager.current is not None  # the chat model is untouched


@pytest.mark.parametrize("texts, expected", [
    (["fine", "  "], "1 text(s) are empty (position 1)"),
    ("just one string", "wrap one text in a list"),
    (["fine", 3], "Text 1 is a int, not text"),
])
def test_bad_texts_are_refused_before_any_work(fake_manager, texts, expected):
    with pytest.raises(InvalidOptionError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        fake_manager.embed(texts)
    assert fake_manager.embedder is None


def test_long_texts_are_cut_with_a_note_or_averaged_in_pieces(hermetic):
    m = ModelManager(backend=FakeBackend(n_ctx=4), models_dir=hermetic)
    long = "alpha beta gamma delta epsilon zeta eta theta iota"  # 9 words: 3 pieces of at most 4
    cut = m.embed(["short text", long])
    assert cut.notes == ["text 1 is longer than smollm2-135m-instruct's 4-token context: only its first 4 tokens "
                         "were embedded (long='chunk' averages all of it)."]
    assert np.allclose(cut.vectors[1], m.embed(["alpha beta gamma delta"]).vectors[0])
    pieces = m.embed([long], long="chunk")
    assert "its 3 pieces were embedded and averaged" in pieces.notes[0]
    parts = m.embed(["alpha beta gamma delta", "epsilon zeta eta theta", "iota"]).vectors
    mean = (parts * np.array([[22], [22], [4]])).sum(axis=0)
    assert np.allclose(pieces.vectors[0], mean / np.linalg.norm(mean), atol=1e-6)


def test_nomic_models_get_their_task_prefixes(hermetic, bundled_path, tmp_path):
    nomic = tmp_path / "nomic-embed-text-v1.5.Q4_K_M.gguf"
    shutil.copyfile(bundled_path, nomic)  # a copy: a link would resolve to the bundled model's own name
    backend = FakeBackend()
    m = ModelManager(backend=backend, models_dir=hermetic)
    m.embed(["what is tea?"], model=str(nomic), pooling="mean", kind="query")
    m.embed(["Tea is a drink."], model=str(nomic), pooling="mean")
    assert m.embedder.calls == [["search_query: what is tea?"], ["search_document: Tea is a drink."]]
