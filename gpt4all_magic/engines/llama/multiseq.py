"""Batched generation on llama.cpp: one token of every running row per ``llama_decode``.

Each row gets its own KV stream on a generation :class:`~.batchctx.BatchContext` and the sampler chain
of a single call, so greedy rows give the text of :meth:`LlamaCppModel.stream_chat`. The rows'
common prompt prefix is evaluated once and copied into each row's stream; each row's remaining
prompt tokens are evaluated on their own, then every decode carries one token of each running row.
Nothing here knows about pandas.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ...options import PARALLEL_ROWS, GenerationOptions
from ...text import StopScanner
from ..base import OnResult, StreamStats
from .batchctx import MAX_SEQ, BatchContext, generation_context, kv_bytes_per_cell, pad_cells
from .native import context_overflow
from .sampling import row_sampler

__all__ = ["generate_many"]


@dataclass
class _Row:
    index: int
    prompt: list[int]
    max_tokens: int
    scanner: StopScanner
    sampler: Any = None
    seq: int = -1
    pos: int = 0  # position of the next token to evaluate
    next_token: int = -1  # sampled, not yet evaluated
    n: int = 0
    stats: StreamStats = field(default_factory=StreamStats)


def generate_many(model: Any, prompts: Sequence[list[int]], options: GenerationOptions, on_result: OnResult, *,
                  should_stop: Callable[[], bool] = lambda: False, max_parallel: int = PARALLEL_ROWS,
                  memory_budget: int | None = None, grammar: str | None = None) -> None:
    """Generate an answer for each prompt (token lists), one token of every running row per decode.

    ``on_result(i, text, stats, error)`` is called as each row finishes (completion order). A
    prompt that leaves no room in the model's context window is reported with a
    ContextOverflowError and the others still run. On Ctrl-C the rows in flight are reported with
    ``finish_reason="interrupted"`` and their partial text, then KeyboardInterrupt propagates; when
    ``should_stop()`` turns true they are reported as ``"stopped"`` and the rest is not started.
    The prompts' common prefix (chat template, system prompt) is evaluated once and copied into
    each row's KV stream, which gives the same numbers as evaluating the whole prompt. With ``grammar``
    (GBNF) each row's sampler chain holds it (:class:`~.sampling.GrammarSampler`), as a single call's does.
    """
    rows = _rows(model, prompts, options, on_result)
    if rows:
        _Batch(model, rows, options, on_result, max_parallel, memory_budget, grammar).run(should_stop)


def _rows(model: Any, prompts: Sequence[list[int]], options: GenerationOptions, on_result: OnResult) -> list[_Row]:
    """A row per prompt that fits the context window; the others are reported as errors now."""
    rows = []
    for i, prompt in enumerate(prompts):
        room = model.n_ctx - len(prompt)
        if room < 1 or not prompt:
            error = context_overflow(model, "The prompt of this row", len(prompt), len(prompt) + options.max_tokens)
            on_result(i, "", StreamStats(prompt_tokens=len(prompt), finish_reason="error"), error)
            continue
        row = _Row(i, list(prompt), min(options.max_tokens, room), StopScanner(options.stop, binary=True))
        row.stats.prompt_tokens = len(prompt)
        if row.max_tokens < options.max_tokens:
            row.stats.notices.append(
                f"max_tokens lowered from {options.max_tokens} to {row.max_tokens}: the prompt "
                f"({len(prompt):,} tokens) leaves only that much of the {model.n_ctx:,}-token context window.")
        rows.append(row)
    return rows


class _Batch:
    """One generation context and the rows that run on it: each row takes a free KV stream, is
    prefilled, then decodes one token per step with the others until it finishes."""

    def __init__(self, model: Any, rows: list[_Row], options: GenerationOptions, on_result: OnResult,
                 max_parallel: int, memory_budget: int | None, grammar: str | None = None):
        self.model, self.options, self.on_result, self.grammar = model, options, on_result, grammar
        self.seed = options.seed if options.seed is not None else 0xFFFFFFFF
        self.prefix = 0
        if len(rows) > 1 and max(len(r.prompt) for r in rows) <= model.llm.n_batch:
            # Shared only when every prompt fits one micro-batch, as in a single call; each row keeps
            # at least two tokens of its own (a one-token micro-batch takes other kernels).
            prefix = _common_prefix([r.prompt for r in rows], keep=2)
            self.prefix = prefix if prefix >= 4 else 0
        cells = min(pad_cells(max(len(r.prompt) + r.max_tokens for r in rows)), pad_cells(model.n_ctx))
        per_cell = kv_bytes_per_cell(model)
        budget = memory_budget or max(512 << 20, model.n_ctx * per_cell)
        n_par = max(1, min(max_parallel, len(rows), MAX_SEQ - 1,
                           budget // (cells * per_cell) - (1 if self.prefix else 0)))
        self.spare = n_par  # the stream holding the shared prefix
        self.ctx = generation_context(model, n_seq=n_par + (1 if self.prefix else 0), cells_per_seq=cells)
        self.shared = rows[0].prompt[:self.prefix]
        self.pending = collections.deque(sorted(rows, key=lambda r: -len(r.prompt)))
        self.free_seqs = list(range(n_par - 1, -1, -1))
        self.active: list[_Row] = []

    def run(self, should_stop: Callable[[], bool]) -> None:
        ctx = self.ctx
        ctx.clear()
        try:
            if self.prefix:
                _prefill(ctx, self.shared, 0, self.spare, logits=False)
            while self.pending or self.active:
                if should_stop():
                    self._finish_all("stopped")
                    return
                self._admit()
                if self.active:
                    self._step()
        except KeyboardInterrupt:
            self._finish_all("interrupted")
            raise
        finally:
            for row in self.active:
                row.sampler.close()
            ctx.close()

    def _admit(self) -> None:
        """Start pending rows on the free streams: copy in the shared prefix, prefill the rest, sample."""
        while self.pending and self.free_seqs:
            row = self.pending.popleft()
            row.seq = self.free_seqs.pop()
            row.sampler = row_sampler(self.model, self.options, self.seed, self.grammar)
            self.active.append(row)
            if self.prefix:
                self.ctx.seq_cp(self.spare, row.seq)  # copies the cells into the row's own stream
            index = _prefill(self.ctx, row.prompt[self.prefix:], self.prefix, row.seq)
            row.pos = len(row.prompt)
            self._sample(row, index)

    def _step(self) -> None:
        """One decode carrying the next token of every active row."""
        ctx = self.ctx
        ctx.reset_batch()
        step = [(row, ctx.add(row.next_token, row.pos, row.seq, True)) for row in self.active]
        ctx.decode()
        for row, index in step:
            row.pos += 1
            self._sample(row, index)

    def _sample(self, row: _Row, index: int) -> None:
        token = row.sampler.sample(self.ctx.ctx, index)
        if token is None:  # the grammar allows nothing more: end the row, its text is checked later
            row.stats.finish_reason = "stop"
            self._finish(row)
            return
        row.stats.token_sampled()
        if _accept(row, token, self.model.is_eog, self.model.piece):
            self._finish(row)
        else:
            row.next_token = token

    def _finish(self, row: _Row) -> None:
        self.active.remove(row)
        self.ctx.seq_rm(row.seq)
        self.free_seqs.append(row.seq)
        row.sampler.close()
        self.on_result(row.index, row.scanner.text.decode("utf-8", errors="replace"), row.stats, None)

    def _finish_all(self, reason: str) -> None:
        for row in list(self.active):  # noqa: PERF101 - _finish removes rows from active
            row.stats.finish_reason = reason
            self._finish(row)


def _prefill(ctx: BatchContext, tokens: list[int], start: int, seq: int, *, logits: bool = True) -> int:
    """Evaluate one sequence's tokens alone, in ``n_batch`` chunks as ``Llama.eval`` does; the batch
    index of the last token (whose logits are kept when ``logits``)."""
    index = -1
    for chunk in range(0, len(tokens), ctx.n_batch):
        ctx.reset_batch()
        part = tokens[chunk:chunk + ctx.n_batch]
        for j, token in enumerate(part):
            index = ctx.add(token, start + chunk + j, seq, logits and chunk + j == len(tokens) - 1)
        ctx.decode()
    return index


def _accept(row: _Row, token: int, eog: Callable[[int], bool], piece: Callable[[int], bytes]) -> bool:
    """Add a sampled token to the row; True when the row is done (the rules of a single call)."""
    stats = row.stats
    if eog(token):
        stats.completion_tokens -= 1  # the end-of-turn token is not part of the answer
        stats.finish_reason = "stop"
        return True
    row.n += 1
    row.scanner.feed(piece(token))
    if row.scanner.hit:
        stats.finish_reason = "stop"
        return True
    if row.n >= row.max_tokens:
        stats.finish_reason = "length"
        return True
    return False


def _common_prefix(seqs: list[list[int]], keep: int = 1) -> int:
    """Tokens shared by every sequence, leaving each at least ``keep`` tokens of its own."""
    first = min(seqs, key=len)
    n = max(0, len(first) - keep)
    for s in seqs:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
    return n
