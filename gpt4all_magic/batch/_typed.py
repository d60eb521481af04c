"""Typed answers for many rows: every row generated with the schema's grammar in one batch, each answer
checked, the invalid ones asked once more (the error added to their conversation) in a second batch,
and every row reported once as final: ``ok`` (with its value), ``invalid`` (the text and the reason
kept), ``truncated`` (``max_tokens`` cut the JSON; partial text kept), ``too_long``, ``error`` or
``interrupted``. Never a silently invalid row."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..engines.base import Message, ResponseFormat, StreamStats
from ..errors import ContextOverflowError
from ..manager import ModelManager
from ..options import GenerationOptions

__all__ = ["Outcome", "run_typed"]


@dataclass
class Outcome:
    """One row's final answer."""

    text: str
    status: str  # "ok", "invalid", "truncated", "too_long", "error", "interrupted"
    error: str | None = None
    value: Any = None  # the validated value (pydantic instance, dict, list, label)
    record: Any = None  # the same as JSON data
    retried: bool = False
    tokens: int = 0
    notices: list[str] = field(default_factory=list)


def _outcome(spec: Any, text: str, stats: StreamStats, error: Exception | None, retried: bool) -> Outcome:
    tokens, notices = stats.completion_tokens, list(stats.notices)
    if error is not None:
        status = "too_long" if isinstance(error, ContextOverflowError) else "error"
        return Outcome(text, status, str(error), retried=retried, notices=notices)
    if stats.finish_reason in ("interrupted", "stopped"):
        return Outcome(text, "interrupted", None, retried=retried, tokens=tokens, notices=notices)
    parsed = spec.parse(text, stats.finish_reason)
    return Outcome(text, parsed.status, parsed.error, parsed.value, parsed.record, retried, tokens, notices)


def run_typed(manager: ModelManager, spec: Any, messages: Sequence[list[Message]], options: GenerationOptions,
              on_row: Callable[[int, Outcome], None], *, model: str | os.PathLike[str] | None = None,
              max_parallel: int | None = None, retry: bool = True) -> None:
    """Answer each conversation constrained to ``spec`` (a Schema); ``on_row(j, outcome)`` once per row,
    as it becomes final. On Ctrl-C the rows in flight are reported ``interrupted``, rows waiting for
    their retry keep their first (invalid) answer, and KeyboardInterrupt propagates."""
    fmt = ResponseFormat(spec.json_schema, spec.name)
    waiting: dict[int, Outcome] = {}

    def first(j: int, text: str, stats: StreamStats, error: Exception | None) -> None:
        outcome = _outcome(spec, text, stats, error, retried=False)
        if outcome.status == "invalid" and retry:
            waiting[j] = outcome
        else:
            on_row(j, outcome)

    try:
        manager.generate_many(messages, options, first, model=model, max_parallel=max_parallel, response_format=fmt)
        if not waiting:
            return
        order = sorted(waiting)
        again = [spec.retry_messages(messages[j], waiting[j].text, waiting[j].error) for j in order]

        def second(k: int, text: str, stats: StreamStats, error: Exception | None) -> None:
            j = order[k]
            outcome = _outcome(spec, text, stats, error, retried=True)
            if outcome.status in ("too_long", "error", "interrupted"):
                # the retry could not run: the first answer stays, marked invalid with its reason
                outcome = Outcome(waiting[j].text, "interrupted" if outcome.status == "interrupted" else "invalid",
                                  waiting[j].error, retried=True, tokens=waiting[j].tokens)
            outcome.notices[:0] = waiting.pop(j).notices  # what the first answer's server said stays said
            on_row(j, outcome)

        manager.generate_many(again, options, second, model=model, max_parallel=max_parallel, response_format=fmt)
    finally:
        for j in sorted(waiting):
            on_row(j, waiting.pop(j))
