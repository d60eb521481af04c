"""Embeddings from a real ``llama_cpp.server`` (``--embedding True``) through ``connect()``, against the
same model embedded in this process.

The server runs the bundled model on one thread with llama-cpp-python's default batch sizes, the local
embedder on this process's threads with n_batch = n_ubatch = n_ctx, so the float sums run in another
order (and the server packs the texts into other batches): measured, 1 - cosine between the two is at most
1.3e-5 over these texts. The test allows 1e-4 (the tolerance the local comparison with Llama.embed uses,
7x the measured gap), still two orders of magnitude below what tells different texts apart (their cosines
are below 0.99)."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pytest
from real_servers import Server

import gpt4all_magic as g4
from gpt4all_magic.api import connect, disconnect
from gpt4all_magic.manager import ModelManager

TEXTS = ["The cat sat on the mat.", "A dog barked all night long.", "Quantum computers use qubits.",
         "Green tea is brewed at 80 degrees.", "The stock market fell sharply today."] * 8  # 40: two requests


@pytest.fixture(scope="module")
def embedding_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # SmolLM2's GGUF declares no pooling; the override gives the server mean pooling, as the local side uses.
    server = Server(tmp_path_factory.mktemp("embed") / "server.log", "--embedding", "True",
                    "--kv_overrides", "llama.pooling_type=int:1")
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def test_server_vectors_match_local_ones(embedding_server, hermetic, monkeypatch):
    from gpt4all_magic import manager as manager_module

    local = ModelManager(models_dir=hermetic).embed(TEXTS).vectors
    remote = ModelManager(models_dir=hermetic)
    monkeypatch.setattr(manager_module, "_MANAGER", remote)
    connect(embedding_server.url, concurrency=2, manager=remote)
    try:
        vectors = g4.embed(TEXTS)
        assert remote.embedder.backend_name == "openai" and remote.status()["embedding_dim"] == 576
    finally:
        disconnect(manager=remote)
    assert vectors.shape == local.shape and vectors.dtype == np.float32
    cosine = (vectors.astype(np.float64) * local).sum(axis=1)
    print(f"server vs local: 1 - min cosine = {1 - cosine.min():.2e}")
    assert cosine.min() > 1 - 1e-4, cosine
    different = vectors[:5] @ vectors[:5].T
    assert different[~np.eye(5, dtype=bool)].max() < 0.99  # the tolerance is far below what tells texts apart
