"""A scripted backend for tests that need exact control: timing, interrupts, concurrency, errors.

An exception instance among the enqueued tokens is raised at that point of the stream.

It goes through the same seam as the real backend::

    backend = FakeBackend(delay=0.01)
    backend.enqueue(["Hello", ",", " world"])
    manager = ModelManager(backend=backend)
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..errors import ContextOverflowError
from ..options import GenerationOptions
from .base import Backend, Embedder, LoadedModel, Message, ModelRef, ResponseFormat, StreamStats

__all__ = ["FakeBackend", "FakeEmbedder", "FakeModel"]


class FakeBackend(Backend):
    """Yields enqueued token lists; with nothing enqueued, echoes the last user message word by word."""

    name = "fake"

    def __init__(self, *, delay: float = 0.0, n_ctx: int | None = None):
        self.delay = delay
        self.n_ctx = n_ctx
        self.replies: collections.deque[list[str | BaseException]] = collections.deque()
        self.loads: list[ModelRef] = []
        self.calls: list[list[Message]] = []
        self.formats: list[ResponseFormat | None] = []  # the response_format of each call, in order
        self.active = 0  # generations running right now (to prove serialization)
        self.max_active = 0
        self._lock = threading.Lock()

    def enqueue(self, tokens: Iterable[str | BaseException]) -> None:
        self.replies.append(list(tokens))

    def load(self, ref: ModelRef, *, n_ctx: int, n_threads: int, n_batch: int = 512) -> FakeModel:
        self.loads.append(ref)
        model = FakeModel(self, ref, n_ctx=self.n_ctx or n_ctx, n_threads=n_threads)
        model.n_batch = n_batch
        return model

    def load_embedder(self, ref: ModelRef, *, n_ctx: int, n_threads: int, pooling: str | None) -> FakeEmbedder:
        self.loads.append(ref)
        return FakeEmbedder(ref, n_ctx=self.n_ctx or n_ctx, pooling=pooling or "mean")


class FakeModel(LoadedModel):
    backend_name = "fake"

    def __init__(self, backend: FakeBackend, ref: ModelRef, *, n_ctx: int, n_threads: int):
        self.backend, self.ref, self.name = backend, ref, ref.name
        self.n_ctx, self.n_threads = n_ctx, n_threads
        self.closed = False

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m["content"].split()) + 2 for m in messages)

    def stream_chat(self, messages: Sequence[Message], options: GenerationOptions, stats: StreamStats,
                    should_stop: Callable[[], bool], *, reuse_cache: bool = False,
                    response_format: ResponseFormat | None = None) -> Iterator[str]:
        """Enqueued tokens (a format is recorded, not enforced: tests script valid and invalid answers)."""
        n_prompt = self.count_tokens(messages)
        stats.prompt_tokens = n_prompt
        if n_prompt >= self.n_ctx:
            raise ContextOverflowError(
                f"The prompt is {n_prompt} tokens but the context window is {self.n_ctx}.",
                prompt_tokens=n_prompt, n_ctx=self.n_ctx)
        self.backend.calls.append([dict(m) for m in messages])
        self.backend.formats.append(response_format)
        if self.backend.replies:
            tokens = self.backend.replies.popleft()
        else:
            last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
            words = last.split()
            tokens = ["Echo:"] + [" " + w for w in words]
        return self._run(tokens, options, stats, should_stop)

    def _run(self, tokens: list[str | BaseException], options: GenerationOptions, stats: StreamStats,
             should_stop: Callable[[], bool]) -> Iterator[str]:
        backend = self.backend
        with backend._lock:
            backend.active += 1
            backend.max_active = max(backend.max_active, backend.active)
        try:
            stats.finish_reason = "stop"
            for i, token in enumerate(tokens):
                if backend.delay:
                    time.sleep(backend.delay)
                if isinstance(token, BaseException):
                    raise token
                stats.token_sampled()
                yield token
                if i + 1 >= options.max_tokens:
                    stats.finish_reason = "length"
                    break
                if should_stop():
                    stats.finish_reason = "stopped"
                    break
        finally:
            with backend._lock:
                backend.active -= 1

    def close(self) -> None:
        self.closed = True


class FakeEmbedder(Embedder):
    """Bag-of-words vectors: each word adds a fixed pseudo-random direction (the same text always gives the
    same vector, texts sharing words are close); a word counts as a token."""

    backend_name = "fake"

    def __init__(self, ref: ModelRef, *, n_ctx: int, pooling: str, dim: int = 64):
        self.ref, self.name, self.n_ctx, self.pooling, self.dim = ref, ref.name, n_ctx, pooling, dim
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> Any:
        import zlib

        import numpy as np

        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i] += np.random.default_rng(zlib.crc32(word.encode())).standard_normal(self.dim)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    def pieces(self, text: str) -> list[str]:
        words = text.split()
        return [" ".join(words[i:i + self.n_ctx]) for i in range(0, len(words), self.n_ctx)] or [text]
