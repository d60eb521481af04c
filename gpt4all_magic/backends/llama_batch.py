"""Many sequences per ``llama_decode``: extra llama_contexts on the loaded model, and batched generation.

``Llama`` keeps its own context at ``n_seq_max = 1``, so batch work runs on a :class:`BatchContext`: a
context made from the same weights with many sequences. Two kinds:

- scoring (kept on the model as ``model._scorer``, freed by ``LlamaCppModel.close``): one unified KV
  buffer (``kv_unified``), so a token can belong to several sequences and a question's context is
  evaluated once for all its choices; flash attention in micro-batches of 2-63 tokens
  (``SCORING_UBATCH``);
- generation (made for each batch and freed after it): one KV stream per row, flash attention off as
  in the main context. The rows' common prompt prefix is evaluated once and copied into each stream,
  each row's remaining prompt tokens are evaluated on their own, then every decode carries one token
  of each running row.

What decides whether a batched result equals a single call (measured on the bundled model with this
llama.cpp build): where a sequence's cells sit in the KV buffer and how many query rows of one
sequence share a micro-batch. Without flash attention, a sequence whose cells do not start at a
multiple of 32 in a shared buffer got logits up to ~1 off, and a one-row micro-batch takes other
kernels than a multi-row one; the layouts above avoid both, and the tests check the results equal
the one-at-a-time ones. Everything here runs under the manager's lock; nothing here knows about pandas.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..errors import GenerationError
from ..options import GenerationOptions
from .base import StreamStats
from .llama_cpp import deferred_interrupt

__all__ = ["BatchContext", "generate_many", "generation_context", "scoring_context"]

OnResult = Callable[[int, str, StreamStats, "Exception | None"], None]
FLASH_ATTN = False  # generation, like the main context
# Scoring runs flash attention in micro-batches of 2-63 tokens: ggml's CPU kernel then handles each
# query row on its own (online softmax over the row's unmasked cells, in cell order), so a request
# packed with others gets the same numbers as when evaluated alone. Without flash attention, or with
# 64+ rows (a tiled kernel), the sums depend on where the request's cells sit in the KV buffer, and
# results moved by up to ~0.3 nats on the bundled model.
SCORING_UBATCH = 48
MAX_SEQ = 256  # llama.cpp's LLAMA_MAX_SEQ
_PAD = 256  # llama.cpp pads the attended KV range to this many cells


class BatchContext:
    """A llama_context on ``model``'s weights for multi-sequence batches (freed by :meth:`close`)."""

    def __init__(self, model: Any, *, n_ctx: int, n_seq_max: int, n_batch: int, kv_unified: bool,
                 flash_attn: bool = FLASH_ATTN):
        with deferred_interrupt():
            self._init(model, n_ctx=n_ctx, n_seq_max=n_seq_max, n_batch=n_batch, kv_unified=kv_unified,
                       flash_attn=flash_attn)

    def _init(self, model: Any, *, n_ctx: int, n_seq_max: int, n_batch: int, kv_unified: bool,
              flash_attn: bool) -> None:
        from .llama_cpp import import_llama_cpp, native_log_tail

        lc = self._lc = import_llama_cpp()
        params = lc.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = n_seq_max
        params.n_outputs_max = max(n_batch, n_seq_max)  # llama.cpp aborts when this is below n_seq_max
        params.n_outputs_max_per_seq = 0  # the default (1) would allow one logits row per sequence
        params.kv_unified = kv_unified
        params.n_threads = params.n_threads_batch = model.n_threads
        params.flash_attn_type = (lc.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn
                                  else lc.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        params.no_perf = True
        self._weights = model.llm._model  # the weights must outlive this context
        ctx = lc.llama_init_from_model(self._weights.model, params)
        if not ctx:
            raise GenerationError(
                f"llama.cpp could not create a batch context for {model.name} ({native_log_tail() or 'no detail'}); "
                "free some memory or pass a smaller batch size.")
        self.ctx = ctx
        self.memory = lc.llama_get_memory(ctx)
        self.batch = lc.llama_batch_init(n_batch, 0, n_seq_max)
        self.n_ctx = lc.llama_n_ctx(ctx)
        self.n_batch = n_batch
        self.n_seq_max = n_seq_max
        self.kv_unified = kv_unified
        self.flash_attn = flash_attn
        self.n_vocab = lc.llama_vocab_n_tokens(self._weights.vocab)
        self._n_out = 0

    def describe(self) -> dict[str, Any]:
        """The settings that fix the arithmetic (recorded next to scores)."""
        return {"n_ctx": self.n_ctx, "n_batch": self.n_batch, "n_seq_max": self.n_seq_max,
                "kv_unified": self.kv_unified, "flash_attn": self.flash_attn}

    @property
    def cells_per_seq(self) -> int:
        return self.n_ctx if self.kv_unified else self.n_ctx // self.n_seq_max

    # -- memory ----------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget every sequence."""
        self._lc.llama_memory_clear(self.memory, False)

    def seq_rm(self, seq: int) -> None:
        self._lc.llama_memory_seq_rm(self.memory, seq, -1, -1)

    def seq_cp(self, src: int, dst: int) -> None:
        """Give ``dst`` all of ``src``'s cells (shared in a unified buffer, copied between streams)."""
        self._lc.llama_memory_seq_cp(self.memory, src, dst, -1, -1)

    # -- one batch -------------------------------------------------------------------------------
    def reset_batch(self) -> None:
        self.batch.n_tokens = 0
        self._n_out = 0

    @property
    def n_tokens(self) -> int:
        return self.batch.n_tokens

    def add(self, token: int, pos: int, seqs: Sequence[int] | int, logits: bool) -> int:
        """Append a token (on one or several sequences); return its index in the batch."""
        b = self.batch
        i = b.n_tokens
        if i >= self.n_batch:
            raise GenerationError(f"A batch holds at most {self.n_batch} tokens; this is a bug, please report it.")
        b.token[i] = token
        b.pos[i] = pos
        if isinstance(seqs, int):
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seqs
        else:
            b.n_seq_id[i] = len(seqs)
            row = b.seq_id[i]
            for k, s in enumerate(seqs):
                row[k] = s
        b.logits[i] = logits
        b.n_tokens = i + 1
        self._n_out += bool(logits)
        return i

    def decode(self) -> None:
        """Evaluate the batch built with :meth:`add`."""
        rc = self._lc.llama_decode(self.ctx, self.batch)
        if rc != 0:
            from .llama_cpp import native_log_tail

            what = "no room left in the KV cache" if rc == 1 else (native_log_tail() or f"code {rc}")
            raise GenerationError(f"llama.cpp failed to evaluate a batch ({what}); rerun with a smaller "
                                  "batch size.")

    def logits(self, indices: Sequence[int]) -> Any:
        """The last decode's logits for the batch tokens ``indices`` (a float32 copy, one row each).

        Rows are read one by one with ``llama_get_logits_ith``: llama.cpp may store outputs in another
        order than the batch's when it splits a multi-sequence batch.
        """
        import numpy as np

        out = np.empty((len(indices), self.n_vocab), dtype=np.float32)
        for k, i in enumerate(indices):
            ptr = self._lc.llama_get_logits_ith(self.ctx, i)
            if not ptr:
                raise GenerationError(f"llama.cpp has no logits for batch token {i}; this is a bug, please report it.")
            out[k] = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))
        return out

    def close(self) -> None:
        if self.ctx is None:
            return
        with deferred_interrupt():
            self._lc.llama_batch_free(self.batch)
            self._lc.llama_free(self.ctx)
            self.ctx = None
            self._weights = None


class BatchContexts:
    """The batch context cached on one model (``model._scorer``); :meth:`close` frees it."""

    def __init__(self) -> None:
        self.scoring: BatchContext | None = None

    def describe(self) -> dict[str, Any]:
        return {"scoring": self.scoring.describe()} if self.scoring else {}

    def close(self) -> None:
        ctx, self.scoring = self.scoring, None
        if ctx is not None:
            ctx.close()


def _contexts(model: Any) -> BatchContexts:
    holder = getattr(model, "_scorer", None)
    if not isinstance(holder, BatchContexts):
        if holder is not None:
            holder.close()
        holder = model._scorer = BatchContexts()
    return holder


def kv_bytes_per_cell(model: Any) -> int:
    """Bytes one token takes in an f16 KV cache of ``model``."""
    import llama_cpp

    m = model.llm._model.model
    n_head = max(1, llama_cpp.llama_model_n_head(m))
    kv_dim = llama_cpp.llama_model_n_embd(m) * llama_cpp.llama_model_n_head_kv(m) // n_head
    return 2 * 2 * llama_cpp.llama_model_n_layer(m) * kv_dim


def scoring_context(model: Any, *, n_cells: int, n_seq_max: int = 64) -> BatchContext:
    """The unified-KV context used for scoring, with at least ``n_cells`` cells (made on first use,
    grown when a longer request comes, kept until the model closes)."""
    holder = _contexts(model)
    ctx = holder.scoring
    if ctx is None or ctx.n_seq_max < n_seq_max or ctx.n_ctx < n_cells:
        if ctx is not None:
            holder.scoring = None
            ctx.close()
        holder.scoring = BatchContext(model, n_ctx=_pad(n_cells), n_seq_max=n_seq_max,
                                      n_batch=SCORING_UBATCH, kv_unified=True, flash_attn=True)
    return holder.scoring


def generation_context(model: Any, *, n_seq: int, cells_per_seq: int) -> BatchContext:
    """A context with ``n_seq`` KV streams of ``cells_per_seq`` cells each (the caller closes it: its KV
    memory can be as large as the main context's, so it is not kept between batches)."""
    return BatchContext(model, n_ctx=cells_per_seq * n_seq, n_seq_max=n_seq, kv_unified=False,
                        n_batch=model.llm.n_batch)


# -- batched generation ------------------------------------------------------------------------------

@dataclass
class _Row:
    index: int
    prompt: list[int]
    max_tokens: int
    stops: list[bytes]
    hold: int
    sampler: Any = None
    seq: int = -1
    pos: int = 0  # position of the next token to evaluate
    next_token: int = -1  # sampled, not yet evaluated
    buf: bytes = b""
    n: int = 0
    stats: StreamStats = field(default_factory=StreamStats)


def _sampler(model: Any, options: GenerationOptions, seed: int) -> Any:
    """The sampler chain ``Llama.generate`` builds, so a batch row samples like a single call."""
    from llama_cpp import _internals

    s = _internals.LlamaSampler()
    s.add_penalties(n_vocab=model.llm.n_vocab(), penalty_last_n=options.repeat_last_n,
                    penalty_repeat=options.repeat_penalty, penalty_freq=0.0, penalty_present=0.0)
    if options.temp == 0.0:
        s.add_greedy()
    else:
        s.add_top_k(options.top_k)
        s.add_typical(1.0, 1)
        s.add_top_p(options.top_p, 1)
        s.add_min_p(options.min_p, 1)
        s.add_temp(options.temp)
        s.add_dist(seed)
    return s


def generate_many(model: Any, prompts: Sequence[list[int]], options: GenerationOptions, on_result: OnResult, *,
                  should_stop: Callable[[], bool] = lambda: False, max_parallel: int = 32,
                  memory_budget: int | None = None) -> None:
    """Generate an answer for each prompt (token lists), one token of every running row per decode.

    ``on_result(i, text, stats, error)`` is called as each row finishes (completion order). A
    prompt that leaves no room in the model's context window is reported with a
    ContextOverflowError and the others still run. On Ctrl-C the rows in flight are reported with
    ``finish_reason="interrupted"`` and their partial text, then KeyboardInterrupt propagates; when
    ``should_stop()`` turns true they are reported as ``"stopped"`` and the rest is not started.
    The prompts' common prefix (chat template, system prompt) is evaluated once and copied into
    each row's KV stream, which gives the same numbers as evaluating the whole prompt.
    """
    from .llama_cpp import context_overflow

    seed = options.seed if options.seed is not None else 0xFFFFFFFF
    stops = [s.encode("utf-8") for s in options.stop]
    hold = max((len(s) for s in stops), default=1) - 1
    rows: list[_Row] = []
    for i, prompt in enumerate(prompts):
        room = model.n_ctx - len(prompt)
        if room < 1 or not prompt:
            error = context_overflow(model, "The prompt of this row", len(prompt), len(prompt) + options.max_tokens)
            on_result(i, "", StreamStats(prompt_tokens=len(prompt), finish_reason="error"), error)
            continue
        row = _Row(i, list(prompt), min(options.max_tokens, room), stops, hold)
        row.stats.prompt_tokens = len(prompt)
        if row.max_tokens < options.max_tokens:
            row.stats.notices.append(
                f"max_tokens lowered from {options.max_tokens} to {row.max_tokens}: the prompt "
                f"({len(prompt):,} tokens) leaves only that much of the {model.n_ctx:,}-token context window.")
        rows.append(row)
    if not rows:
        return
    n_batch = model.llm.n_batch
    prefix = 0
    if len(rows) > 1 and max(len(r.prompt) for r in rows) <= n_batch:
        # Shared only when every prompt fits one micro-batch, as in a single call; each row keeps
        # at least two tokens of its own (a one-token micro-batch takes other kernels).
        prefix = _common_prefix([r.prompt for r in rows], keep=2)
        prefix = prefix if prefix >= 4 else 0
    cells = min(_pad(max(len(r.prompt) + r.max_tokens for r in rows)), _pad(model.n_ctx))
    per_cell = kv_bytes_per_cell(model)
    budget = memory_budget or max(512 << 20, model.n_ctx * per_cell)
    n_par = max(1, min(max_parallel, len(rows), MAX_SEQ - 1, budget // (cells * per_cell) - (1 if prefix else 0)))
    spare = n_par  # the stream holding the shared prefix
    ctx = generation_context(model, n_seq=n_par + (1 if prefix else 0), cells_per_seq=cells)
    pending = collections.deque(sorted(rows, key=lambda r: -len(r.prompt)))
    free_seqs = list(range(n_par - 1, -1, -1))
    active: list[_Row] = []
    ctx.clear()
    try:
        if prefix:
            _prefill(ctx, rows[0].prompt[:prefix], 0, spare, logits=False)
        while pending or active:
            if should_stop():
                for row in list(active):  # noqa: PERF101 - _finish removes rows from active
                    row.stats.finish_reason = "stopped"
                    _finish(ctx, row, active, free_seqs, on_result)
                return
            while pending and free_seqs:
                row = pending.popleft()
                row.seq = free_seqs.pop()
                row.sampler = _sampler(model, options, seed)
                active.append(row)
                if prefix:
                    ctx.seq_cp(spare, row.seq)  # copies the cells into the row's own stream
                index = _prefill(ctx, row.prompt[prefix:], prefix, row.seq)
                row.pos = len(row.prompt)
                _sample(model, ctx, row, index, active, free_seqs, on_result)
            if not active:
                continue
            ctx.reset_batch()
            step = [(row, ctx.add(row.next_token, row.pos, row.seq, True)) for row in active]
            ctx.decode()
            for row, index in step:
                row.pos += 1
                _sample(model, ctx, row, index, active, free_seqs, on_result)
    except KeyboardInterrupt:
        for row in list(active):  # noqa: PERF101 - _finish removes rows from active
            row.stats.finish_reason = "interrupted"
            _finish(ctx, row, active, free_seqs, on_result)
        raise
    finally:
        for row in active:
            row.sampler.close()
        ctx.close()


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


def _sample(model: Any, ctx: BatchContext, row: _Row, index: int, active: list[_Row], free_seqs: list[int],
            on_result: OnResult) -> None:
    token = ctx._lc.llama_sampler_sample(row.sampler.sampler, ctx.ctx, index)
    row.stats.token_sampled()
    if _accept(row, token, model._eog, model._piece):
        _finish(ctx, row, active, free_seqs, on_result)
    else:
        row.next_token = token


def _finish(ctx: BatchContext, row: _Row, active: list[_Row], free_seqs: list[int], on_result: OnResult) -> None:
    active.remove(row)
    ctx.seq_rm(row.seq)
    free_seqs.append(row.seq)
    row.sampler.close()
    on_result(row.index, row.buf.decode("utf-8", errors="replace"), row.stats, None)


def _accept(row: _Row, token: int, eog: Callable[[int], bool], piece: Callable[[int], bytes]) -> bool:
    """Add a sampled token to the row; True when the row is done (the rules of a single call)."""
    stats = row.stats
    if eog(token):
        stats.completion_tokens -= 1  # the end-of-turn token is not part of the answer
        stats.finish_reason = "stop"
        return True
    row.n += 1
    start = max(0, len(row.buf) - row.hold)
    row.buf += piece(token)
    if row.stops:
        hit = min((i for i in (row.buf.find(s, start) for s in row.stops) if i >= 0), default=-1)
        if hit >= 0:
            row.buf = row.buf[:hit]
            stats.finish_reason = "stop"
            return True
    if row.n >= row.max_tokens:
        stats.finish_reason = "length"
        return True
    return False


def _pad(n: int) -> int:
    return -(-n // _PAD) * _PAD


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
