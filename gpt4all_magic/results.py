"""What the manager hands back: a finished generation, a batch of embeddings, and the usage totals."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .engines.base import Message

__all__ = ["Embedding", "GenerationResult", "Totals"]


@dataclass
class GenerationResult:
    """One finished (or interrupted) generation, with what is needed to reproduce and compare it."""

    text: str
    model: str
    options: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token: float | None  # seconds from the call to the first sampled token
    tokens_per_second: float | None  # decoding speed after the first token
    elapsed: float  # seconds for the whole call
    finish_reason: str  # "stop", "length", "stopped" (Stop button), "interrupted" (Ctrl-C), "error"
    notices: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    data: Any = None  # with a schema: the validated answer (a pydantic instance, dict, list or label)
    sources: list[dict[str, Any]] = field(default_factory=list)  # document excerpts it was given (docs=...)

    def __str__(self) -> str:
        return self.text

    @property
    def seed(self) -> int | None:
        return self.options.get("seed")

    def status_line(self) -> str:
        """``model · 25 prompt + 48 tokens · 112.3 tok/s · seed 42`` (plus why it ended, if unusual)."""
        parts = [self.model, f"{self.prompt_tokens} prompt + {self.completion_tokens} tokens"]
        if self.tokens_per_second:
            parts.append(f"{self.tokens_per_second:.1f} tok/s")
        parts.append(f"seed {self.seed}")
        ended = {"length": "hit max_tokens", "stopped": "stopped", "interrupted": "interrupted",
                 "error": "failed"}.get(self.finish_reason)
        if ended:
            parts.append(ended)
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Totals:
    """What every caller together has generated since the kernel started."""

    generations: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_seconds: float = 0.0

    def add(self, prompt_tokens: int, completion_tokens: int, seconds: float, generations: int = 1) -> None:
        self.generations += generations
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.generation_seconds += seconds


@dataclass
class Embedding:
    """Vectors for a list of texts, one L2-normalised float32 row each, and how they were made."""

    vectors: Any  # numpy array (n, dim)
    model: str
    pooling: str
    notes: list[str] = field(default_factory=list)  # one per text that was cut or pieced together
    cut: list[int] = field(default_factory=list)  # the positions of those texts, in the order of ``notes``

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @classmethod
    def from_pieces(cls, vectors: Any, pieces: list[list[str]], long: str, *, model: str, pooling: str,
                    n_ctx: int) -> Embedding:
        """The texts' vectors from their pieces' vectors: a text cut into several pieces keeps its first
        (``long="truncate"``: ``vectors`` has one row per text) or the length-weighted mean of all, renormalised
        (``"chunk"``: one row per piece); with a note for each such text."""
        import numpy as np

        cut = [i for i, parts in enumerate(pieces) if len(parts) > 1]
        if long != "chunk":
            notes = [f"text {i} is longer than {model}'s {n_ctx:,}-token context: only its first {n_ctx:,} tokens "
                     "were embedded (long='chunk' averages all of it)." for i in cut]
            return cls(vectors, model, pooling, notes, cut)
        out, k = np.empty((len(pieces), vectors.shape[1]), dtype=np.float32), 0
        for i, parts in enumerate(pieces):
            weights = np.array([len(x) for x in parts], dtype=np.float64)
            mean = (vectors[k:k + len(parts)] * weights[:, None]).sum(axis=0) / weights.sum()
            out[i] = mean / (np.linalg.norm(mean) or 1.0)
            k += len(parts)
        notes = [f"text {i} is longer than {model}'s {n_ctx:,}-token context: its {len(pieces[i])} pieces were "
                 "embedded and averaged." for i in cut]
        return cls(out, model, pooling, notes, cut)
