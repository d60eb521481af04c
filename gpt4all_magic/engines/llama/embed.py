"""Embeddings with llama.cpp's embedding mode: a second ``Llama`` (``embedding=True``) beside the chat
model, pooling as the GGUF declares (or as asked), many texts per decode.

llama-cpp-python's ``Llama.embed`` already does what is needed: one unified KV buffer with up to
256 sequences, every text's tokens in one batch until ``n_batch`` tokens are used, and the pooled
vector of each sequence read with ``llama_get_embeddings_seq``. So this wraps it rather than writing
another batching loop; the context's ``n_batch`` and ``n_ubatch`` equal ``n_ctx`` because non-causal
encoders (BERT) need a whole sequence in one micro-batch.

What is wrapped is how many texts go into one call: every token of a decode attends over the whole
decode (masked to its own sequence), so the attention work grows with the square of the tokens packed
together. Texts are therefore handed to ``Llama.embed`` in groups of about ``PACK_TOKENS`` tokens (a
longer text goes alone). Measured on 128 short texts (14 tokens), 2 threads, SmolLM2-135M (texts/s for
groups of 32 / 64 / 128 / 256 / 512 / 2,048 tokens): the bundled Q4_1 file 27 / 29 / 30 / 32 / 29 / 17,
a Q4_0 copy 48 / 58 / 67 / 69 / 59 / 27. Flash attention (which skips masked cells) made the Q4_0 copy
faster (96 at 256) but moved the vectors to 1e-4 cosine from ``Llama.embed``'s, ten times further than
without it, so it stays off. Q4_1 has no batched matrix kernel in ggml's CPU backend: on it, packing
saves only the per-call overhead.
"""

from __future__ import annotations

from typing import Any, Sequence

from ...errors import ModelLoadError
from ..base import Embedder, ModelRef, no_pooling
from .native import deferred_interrupt, import_llama_cpp, native_log_tail, without_amx_repack

__all__ = ["PACK_TOKENS", "LlamaEmbedder", "load_embedder"]

PACK_TOKENS = 256


def load_embedder(ref: ModelRef, *, n_ctx: int, n_threads: int, pooling: str | None) -> LlamaEmbedder:
    """Load ``ref`` in embedding mode; ``pooling`` None takes the model's own (refused if it has none)."""
    lc = import_llama_cpp()
    if ref.path is None:
        raise ModelLoadError(f"'{ref.name}' has no local file; the llama.cpp backend needs a .gguf path.")
    kind = {None: lc.LLAMA_POOLING_TYPE_UNSPECIFIED, "mean": lc.LLAMA_POOLING_TYPE_MEAN,
            "cls": lc.LLAMA_POOLING_TYPE_CLS, "last": lc.LLAMA_POOLING_TYPE_LAST}[pooling]
    try:
        with deferred_interrupt(), without_amx_repack(lc):
            llm = lc.Llama(model_path=str(ref.path), embedding=True, pooling_type=kind, n_ctx=n_ctx, n_batch=n_ctx,
                           n_ubatch=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        detail = native_log_tail() or str(exc)
        raise ModelLoadError(f"llama.cpp could not load {ref.path.name} for embeddings: {detail}.") from None
    names = {lc.LLAMA_POOLING_TYPE_MEAN: "mean", lc.LLAMA_POOLING_TYPE_CLS: "cls", lc.LLAMA_POOLING_TYPE_LAST: "last"}
    used = names.get(llm.pooling_type())
    if used is None:  # NONE (a chat model) or RANK (a reranker): no single vector per text
        llm.close()
        raise no_pooling(ref.name)
    return LlamaEmbedder(ref, llm, pooling=used, n_threads=n_threads)


class LlamaEmbedder(Embedder):
    """One ``llama_cpp.Llama`` in embedding mode, owned by the manager."""

    backend_name = "llama.cpp"

    def __init__(self, ref: ModelRef, llm: Any, *, pooling: str, n_threads: int):
        self.ref, self.name, self.llm = ref, ref.name, llm
        self.n_ctx = llm.n_ctx()
        self.dim = llm.n_embd()
        self.pooling = pooling
        self.n_threads = n_threads

    def embed(self, texts: Sequence[str]) -> Any:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for group in self._groups(texts):
            out = self.llm.embed([texts[i] for i in group], normalize=False, truncate=False)
            vectors[group] = np.asarray(out, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    def _groups(self, texts: Sequence[str]) -> list[list[int]]:
        """Positions of the texts in groups of about PACK_TOKENS tokens, in order."""
        groups: list[list[int]] = [[]]
        used = 0
        for i, text in enumerate(texts):
            n = len(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
            if groups[-1] and used + n > PACK_TOKENS:
                groups.append([])
                used = 0
            groups[-1].append(i)
            used += n
        return groups

    def pieces(self, text: str) -> list[str]:
        tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        # Llama.embed tokenizes each piece again with the model's BOS/EOS markers: leave room for them.
        room = max(1, self.n_ctx - 4)
        if len(tokens) <= room:
            return [text]
        return [self.llm.detokenize(tokens[i:i + room]).decode("utf-8", errors="replace")
                for i in range(0, len(tokens), room)]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "embedding_n_ctx": self.n_ctx}

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None:
            with deferred_interrupt():
                llm.close()
