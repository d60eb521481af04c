"""The backend seam: what the manager needs from an engine that runs a model.

A :class:`Backend` loads a :class:`ModelRef` into a :class:`LoadedModel`. A loaded model streams a
chat answer as text pieces, filling in a :class:`StreamStats` as it goes. Nothing here knows about
IPython, widgets or pandas.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..options import GenerationOptions
from ..text import tokens_per_second

__all__ = ["POOLINGS", "Backend", "Embedder", "LoadedModel", "Message", "ModelRef", "OnResult", "ResponseFormat",
           "ScoreRequest", "ScoreResult", "Served", "StreamStats", "TokenCount"]

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: a name a user would type and where its weights are."""

    name: str
    path: Path | None  # None for remote models
    source: str  # "bundled", "installed", "file", "catalog", "remote"


@dataclass(frozen=True)
class Served:
    """The model ids a server offers, where it is, and the one chosen when connecting (if any)."""

    names: list[str]
    server: str
    preferred: str | None = None


@dataclass
class StreamStats:
    """Filled in by :meth:`LoadedModel.stream_chat` while it streams."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None  # "stop", "length", "interrupted", "stopped", "error"
    t_first_token: float | None = None  # time.perf_counter() when the first token was sampled
    t_last_token: float | None = None
    notices: list[str] = field(default_factory=list)

    def token_sampled(self) -> None:
        now = time.perf_counter()
        if self.t_first_token is None:
            self.t_first_token = now
        self.t_last_token = now
        self.completion_tokens += 1

    @property
    def tokens_per_second(self) -> float | None:
        """Decoding speed after the first token (None with fewer than two tokens)."""
        return tokens_per_second(self.completion_tokens, self.t_first_token, self.t_last_token)


OnResult = Callable[[int, str, StreamStats, "Exception | None"], None]


@dataclass(frozen=True)
class TokenCount:
    """How many tokens a text takes, and whether the model's own tokenizer counted them (else: estimated)."""

    tokens: int
    exact: bool = True

    def label(self) -> str:
        """``412 tokens``, or ``≈412 tokens`` for an estimate."""
        return f"{self.tokens} tokens" if self.exact else f"≈{self.tokens} tokens"


@dataclass(frozen=True, eq=False)
class ResponseFormat:
    """An answer must be JSON that follows ``schema`` (a JSON Schema dict). Engines enforce it as they can
    (llama.cpp: a grammar in each row's sampler chain; a server: ``response_format``); the caller
    validates what comes back."""

    schema: dict[str, Any]
    name: str = "answer"


@dataclass(frozen=True)
class ScoreRequest:
    """Log-likelihood of ``continuation`` given ``context`` (both raw text, no chat template)."""

    context: str
    continuation: str


@dataclass(frozen=True)
class ScoreResult:
    logprob: float  # sum of the continuation tokens' log-probabilities (nats)
    n_tokens: int
    is_greedy: bool
    token_logprobs: tuple[float, ...] = ()


class LoadedModel(abc.ABC):
    """A model held in memory (or a server-side model) that can stream answers."""

    name: str
    ref: ModelRef
    n_ctx: int
    n_threads: int
    n_batch: int = 512  # prompt tokens per evaluation step (a server's own setting: not ours to know)
    backend_name: str = "?"

    @abc.abstractmethod
    def stream_chat(self, messages: Sequence[Message], options: GenerationOptions, stats: StreamStats,
                    should_stop: Callable[[], bool], *, reuse_cache: bool = False,
                    response_format: ResponseFormat | None = None) -> Iterator[str]:
        """Yield the answer to ``messages`` piece by piece; raise ContextOverflowError before yielding.

        ``reuse_cache`` lets the engine keep an evaluated prompt prefix (faster for a growing chat);
        without it the prompt is evaluated from scratch, so the same call gives the same answer.
        ``response_format`` constrains the answer to JSON following a schema.
        """

    def check_format(self, response_format: ResponseFormat) -> None:
        """Raise SchemaError (before any work) for a format this engine cannot enforce."""

    @abc.abstractmethod
    def count_tokens(self, messages: Sequence[Message]) -> int:
        """How many prompt tokens ``messages`` take with the chat template applied."""

    def count_text(self, text: str) -> TokenCount:
        """Tokens of plain text (no chat template): the difference the text makes to a user message."""
        base = self.count_tokens([{"role": "user", "content": ""}])
        return TokenCount(max(0, self.count_tokens([{"role": "user", "content": text}]) - base))

    def recover(self) -> None:
        """Bring internal state back to consistent after an interrupted generation."""

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Log-likelihoods of continuations; backends that cannot score raise ScoringNotSupportedError."""
        from ..errors import ScoringNotSupportedError

        raise ScoringNotSupportedError(f"The {self.backend_name} backend cannot compute log-likelihoods.")

    def score_chat(self, requests: Sequence[ScoreRequest], *, system_prompt: str | None = None) -> list[ScoreResult]:
        """Log-likelihoods of each continuation as the assistant's answer to the context as a user message
        (the chat template applied to the context); backends that cannot raise ScoringNotSupportedError."""
        from ..errors import ScoringNotSupportedError

        raise ScoringNotSupportedError(
            f"The {self.backend_name} backend cannot score answers under a chat template; use chat=False.")

    def scoring_settings(self) -> dict[str, Any]:
        """The settings that fix the scoring arithmetic (recorded next to scores); empty if none apply."""
        return {}

    def generate_many(self, prompts: Sequence[Sequence[Message]], options: GenerationOptions,
                      on_result: OnResult | None = None, *,
                      should_stop: Callable[[], bool] = lambda: False, max_parallel: int | None = None,
                      response_format: ResponseFormat | None = None,
                      ) -> list[tuple[str, StreamStats, Exception | None]]:
        """Answer each message list on its own; ``(text, stats, error)`` per prompt, in input order.

        ``on_result(i, text, stats, error)`` is called as each row finishes. A row that cannot run
        (e.g. ContextOverflowError) gets ``error`` and ``finish_reason == "error"``; the others still
        run. On Ctrl-C the row in flight is reported with ``finish_reason == "interrupted"`` before
        KeyboardInterrupt propagates. This default runs them one after another through
        :meth:`stream_chat`; backends override it to run rows together.
        """
        from ..errors import Gpt4AllError

        results: list[tuple[str, StreamStats, Exception | None]] = [("", StreamStats(), None) for _ in prompts]
        for i, messages in enumerate(prompts):
            if should_stop():
                break
            stats = StreamStats()
            pieces: list[str] = []
            error: Exception | None = None
            try:
                stream = self.stream_chat(messages, options, stats, should_stop, response_format=response_format)
                try:
                    for piece in stream:
                        pieces.append(piece)
                finally:
                    stream.close()
            except KeyboardInterrupt:
                stats.finish_reason = "interrupted"
                self.recover()
                results[i] = ("".join(pieces), stats, None)
                if on_result is not None:
                    on_result(i, *results[i])
                raise
            except Gpt4AllError as exc:
                stats.finish_reason, error = "error", exc
            results[i] = ("".join(pieces), stats, error)
            if on_result is not None:
                on_result(i, *results[i])
        return results

    def describe(self) -> dict[str, Any]:
        """Facts for ``%gpt4all status``."""
        return {}

    @abc.abstractmethod
    def close(self) -> None:
        """Free native memory; the object is unusable afterwards."""


POOLINGS = ("mean", "cls", "last")  # how token vectors become one vector per text


def no_pooling(name: str) -> Exception:
    """The error for embedding with a model that makes no single vector per text (a chat model)."""
    from ..errors import ModelLoadError

    return ModelLoadError(
        f"{name} declares no pooling for embeddings (it is a chat model); embed with it anyway by passing "
        f"pooling='mean' (one of {', '.join(POOLINGS)}), or use an embedding model such as nomic-embed-text-v1.5 "
        "(`%gpt4all download nomic-embed-text-v1.5`).")


class Embedder(abc.ABC):
    """A model loaded in embedding mode: texts in, one L2-normalised float32 vector per text out."""

    name: str
    ref: ModelRef
    n_ctx: int  # the most tokens one text may have
    dim: int
    pooling: str
    backend_name: str = "?"

    @abc.abstractmethod
    def embed(self, texts: Sequence[str]) -> Any:
        """An ``(len(texts), dim)`` float32 array; many texts share each decode. Every text must fit
        ``n_ctx`` tokens (:meth:`pieces` cuts longer ones)."""

    @abc.abstractmethod
    def pieces(self, text: str) -> list[str]:
        """``text`` cut into consecutive pieces of at most ``n_ctx`` tokens (one piece if it fits)."""

    def describe(self) -> dict[str, Any]:
        return {"embedding_model": self.name, "embedding_pooling": self.pooling, "embedding_dim": self.dim}

    def close(self) -> None:
        """Free native memory; the object is unusable afterwards."""


class Backend(abc.ABC):
    """Loads models. One backend instance serves a whole kernel."""

    name: str = "?"
    remote: bool = False  # the models run on a server (connect/disconnect swap such backends)

    @abc.abstractmethod
    def load(self, ref: ModelRef, *, n_ctx: int, n_threads: int, n_batch: int = 512) -> LoadedModel:
        """Load ``ref``; raise ModelLoadError (or a subclass of ModelError) on failure."""

    def load_embedder(self, ref: ModelRef, *, n_ctx: int, n_threads: int, pooling: str | None) -> Embedder:
        """Load ``ref`` in embedding mode (``pooling`` None: the one the model declares)."""
        from ..errors import ModelLoadError

        raise ModelLoadError(f"The {self.name} backend cannot compute embeddings.")

    def served_models(self) -> Served | None:
        """The models a server offers (names are resolved among them); None: local files and the catalog."""
        return None

    def model_rows(self, loaded: str | None) -> list[dict[str, Any]] | None:
        """A backend that knows its own models lists them (rows for `%gpt4all list`); None: the local catalog."""
        return None

    def close(self) -> None:
        """Release what the backend holds beyond its models (a server connection); called when replaced."""
