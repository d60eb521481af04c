"""Embeddings from a server's ``/v1/embeddings`` (llama.cpp's llama-server with ``--embedding``,
``llama_cpp.server`` started with ``--embedding True``, vLLM, Ollama): many texts per request, several
requests in flight, vectors L2-normalised here. A server cannot tokenize for us, so long texts are cut
by an estimate of four characters a token."""

from __future__ import annotations

from typing import Any, Sequence

from ...errors import RemoteError
from ..base import Embedder, ModelRef
from .batch import run_bounded

__all__ = ["RemoteEmbedder"]

CHARS_PER_TOKEN = 4
PER_REQUEST = 32  # texts in one request


class RemoteEmbedder(Embedder):
    """A server model used for embeddings; holds no weights."""

    backend_name = "openai"

    def __init__(self, backend: Any, ref: ModelRef, *, n_ctx: int):
        self.backend, self.ref, self.name, self.n_ctx = backend, ref, ref.name, n_ctx
        self.pooling = "server"
        self.dim = 0  # known after the first answer

    def embed(self, texts: Sequence[str]) -> Any:
        import numpy as np

        chunks = [list(texts[i:i + PER_REQUEST]) for i in range(0, len(texts), PER_REQUEST)]
        results = run_bounded(chunks, lambda i, chunk: self._request(chunk), max_parallel=self.backend.concurrency)
        rows = []
        for value, error in results:
            if error is not None:
                raise error
            rows += value
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
        self.dim = out.shape[1]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    def _request(self, texts: list[str]) -> list[list[float]]:
        data = self.backend.http.json("POST", "/embeddings", {"model": self.name, "input": texts},
                                      retry_connect=True)
        try:
            items = sorted(data["data"], key=lambda d: d.get("index", 0))
            vectors = [[float(x) for x in item["embedding"]] for item in items]
        except (KeyError, TypeError, ValueError):
            raise RemoteError(f"The server at {self.backend.base_url} answered /embeddings without vectors; does "
                              "it serve embeddings (llama-server needs --embedding)?") from None
        if len(vectors) != len(texts) or any(v and isinstance(v[0], list) for v in vectors):
            raise RemoteError(f"The server at {self.backend.base_url} did not return one pooled vector per text; "
                              "start it with pooling (llama-server --pooling mean).")
        return vectors

    def pieces(self, text: str) -> list[str]:
        size = max(1, self.n_ctx * CHARS_PER_TOKEN)
        return [text[i:i + size] for i in range(0, len(text), size)] or [text]
