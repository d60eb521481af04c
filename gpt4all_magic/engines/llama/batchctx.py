"""Extra llama_contexts on a loaded model's weights, for many sequences per ``llama_decode``.

``Llama`` keeps its own context at ``n_seq_max = 1``, so batch work runs on a :class:`BatchContext`: a
context made from the same weights with many sequences. Two kinds:

- scoring (kept on the model in ``model.batch_contexts``, freed when the model closes): one unified KV
  buffer (``kv_unified``), so a token can belong to several sequences and a question's context is
  evaluated once for all its choices; flash attention in micro-batches of 2-63 tokens
  (``SCORING_UBATCH``);
- generation (made for each batch and freed after it, see :mod:`.multiseq`): one KV stream per row,
  flash attention off as in the main context.

What decides whether a batched result equals a single call (measured on the bundled model with this
llama.cpp build): where a sequence's cells sit in the KV buffer and how many query rows of one
sequence share a micro-batch. Without flash attention, a sequence whose cells do not start at a
multiple of 32 in a shared buffer got logits up to ~1 off, and a one-row micro-batch takes other
kernels than a multi-row one; the layouts here avoid both, and the tests check the results equal
the one-at-a-time ones. Everything here runs under the manager's lock.
"""

from __future__ import annotations

from typing import Any, Sequence

from ...errors import GenerationError
from .native import deferred_interrupt, import_llama_cpp, native_log_tail

__all__ = ["MAX_SEQ", "SCORING_UBATCH", "BatchContext", "BatchContexts", "generation_context", "kv_bytes_per_cell",
           "pad_cells", "scoring_context"]

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
    """The batch contexts kept on one model (``model.batch_contexts``); :meth:`close` frees them."""

    def __init__(self) -> None:
        self.scoring: BatchContext | None = None

    def describe(self) -> dict[str, Any]:
        return {"scoring": self.scoring.describe()} if self.scoring else {}

    def close(self) -> None:
        ctx, self.scoring = self.scoring, None
        if ctx is not None:
            ctx.close()


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
    holder = model.batch_contexts
    ctx = holder.scoring
    if ctx is None or ctx.n_seq_max < n_seq_max or ctx.n_ctx < n_cells:
        if ctx is not None:
            holder.scoring = None
            ctx.close()
        holder.scoring = BatchContext(model, n_ctx=pad_cells(n_cells), n_seq_max=n_seq_max,
                                      n_batch=SCORING_UBATCH, kv_unified=True, flash_attn=True)
    return holder.scoring


def generation_context(model: Any, *, n_seq: int, cells_per_seq: int) -> BatchContext:
    """A context with ``n_seq`` KV streams of ``cells_per_seq`` cells each (the caller closes it: its KV
    memory can be as large as the main context's, so it is not kept between batches)."""
    return BatchContext(model, n_ctx=cells_per_seq * n_seq, n_seq_max=n_seq, kv_unified=False,
                        n_batch=model.llm.n_batch)


def pad_cells(n: int) -> int:
    """``n`` rounded up to the KV range llama.cpp attends (a multiple of 256 cells)."""
    return -(-n // _PAD) * _PAD
