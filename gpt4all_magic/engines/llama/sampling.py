"""A row's sampler: the chain ``Llama.generate`` builds, and optionally a grammar (a JSON schema's GBNF).

:class:`RowSampler` samples as a single ``Llama.generate`` call does, so a batch row gives the text of a
single call. :class:`GrammarSampler` adds llama.cpp's grammar sampler, applied the way llama.cpp's own
``common_sampler`` applies it: the chain first picks a token from the unconstrained logits, the grammar
checks that one token, and only when the grammar refuses it does the grammar mask the whole vocabulary
before the chain picks again. Masking all 49,152 tokens of the bundled model takes 5-20 ms (measured
here), as long as a whole decode step, while most tokens of a JSON answer pass the one-token check;
for greedy decoding the pick is exactly the one of a chain with the grammar inside (the best token
the grammar allows). Single calls with a schema and batch rows both use it, so they agree.

Greedy rows (temperature 0, repeat penalty >= 1) go further: both picks first look only at the
``NEAR_TOP`` tokens with the highest raw logits (in token-id order, so ties break as over the whole
vocabulary). Penalties only lower logits, so a pick whose value is above the best raw logit left out
is the pick over the whole vocabulary; when it is not (or the grammar allows none of them) the whole
vocabulary is used as above. Measured on ``extract`` over 32 tickets (greedy, same outputs): 12.8 s with
every pick over the 49,152 tokens (701 tokens refused by the grammar at first), 9.2 s with picks near
the top (74 of them still needed the whole vocabulary).
"""

from __future__ import annotations

import ctypes
import math
from typing import Any

from ...errors import SchemaError
from ...options import GenerationOptions
from .native import import_llama_cpp, native_log_tail

NEAR_TOP = 1024

__all__ = ["NEAR_TOP", "GrammarSampler", "RowSampler", "check_grammar", "row_sampler", "sampler_chain"]


def sampler_chain(model: Any, options: GenerationOptions, seed: int) -> Any:
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


def _init_grammar(model: Any, grammar: str) -> Any:
    lc = import_llama_cpp()
    sampler = lc.llama_sampler_init_grammar(model.llm._model.vocab, grammar.encode("utf-8"), b"root")
    if not sampler:
        raise SchemaError(f"llama.cpp could not read the grammar made from this schema "
                          f"({native_log_tail() or 'no detail'}); simplify the schema.")
    return sampler


def check_grammar(model: Any, grammar: str) -> None:
    """Raise SchemaError when llama.cpp cannot parse ``grammar`` (a NULL sampler would crash later)."""
    import_llama_cpp().llama_sampler_free(_init_grammar(model, grammar))


class RowSampler:
    """The plain chain: ``llama_sampler_sample`` on a row's logits (it also accepts the token)."""

    def __init__(self, model: Any, options: GenerationOptions, seed: int):
        self.lc = import_llama_cpp()
        self.chain = sampler_chain(model, options, seed)

    def sample(self, ctx: Any, index: int) -> int | None:
        """The next token from the logits of batch token ``index`` (-1: the last); None: nothing allowed."""
        return self.lc.llama_sampler_sample(self.chain.sampler, ctx, index)

    def close(self) -> None:
        self.chain.close()


class GrammarSampler(RowSampler):
    """The chain plus a grammar, checked on the chosen token first (see the module doc)."""

    def __init__(self, model: Any, options: GenerationOptions, seed: int, grammar: str):
        import numpy as np

        super().__init__(model, options, seed)
        lc = self.lc
        self.grammar = _init_grammar(model, grammar)
        self.n_vocab = lc.llama_vocab_n_tokens(model.llm._model.vocab)
        layout = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)
        self.ids = np.arange(self.n_vocab, dtype=np.int32)
        self.cur = np.zeros(self.n_vocab, dtype=layout)
        self.one = np.zeros(1, dtype=layout)
        self.cur_p = lc.llama_token_data_array(self.cur.ctypes.data_as(lc.llama_token_data_p), self.n_vocab, -1, False)
        self.one_p = lc.llama_token_data_array(self.one.ctypes.data_as(lc.llama_token_data_p), 1, -1, False)
        # Greedy with penalties that can only lower a logit: the best token is found near the top.
        greedy = options.temp == 0.0 and options.repeat_penalty >= 1.0
        self.near = NEAR_TOP if greedy and NEAR_TOP < self.n_vocab else 0
        self.top = np.zeros(self.near, dtype=layout)  # filled once per step; picks work on a copy
        self.work = np.zeros(self.near, dtype=layout)
        self.work_p = lc.llama_token_data_array(self.work.ctypes.data_as(lc.llama_token_data_p), self.near, -1, False)

    def sample(self, ctx: Any, index: int) -> int | None:
        import numpy as np

        logits = np.ctypeslib.as_array(self.lc.llama_get_logits_ith(ctx, index), shape=(self.n_vocab,))
        bound = self._near_top(logits) if self.near else None
        token = self._pick_near(bound, masked=False) if bound is not None else None
        if token is None:
            token = self._pick(logits, masked=False)
        if not self._allowed(token, logits[token]):
            token = self._pick_near(bound, masked=True) if bound is not None else None
            if token is None:
                token = self._pick(logits, masked=True)
            if token is None:
                return None
        self.lc.llama_sampler_accept(self.grammar, token)
        self.lc.llama_sampler_accept(self.chain.sampler, token)
        return token

    def _pick(self, logits: Any, *, masked: bool) -> int | None:
        lc, cur, cur_p = self.lc, self.cur, self.cur_p
        cur["id"] = self.ids
        cur["logit"] = logits
        cur["p"] = 0.0
        cur_p.size, cur_p.selected, cur_p.sorted = self.n_vocab, -1, False
        if masked:
            lc.llama_sampler_apply(self.grammar, ctypes.byref(cur_p))
        lc.llama_sampler_apply(self.chain.sampler, ctypes.byref(cur_p))
        chosen = cur_p.data[cur_p.selected]
        if masked and math.isinf(chosen.logit) and chosen.logit < 0:
            return None  # the grammar allows no token at all
        return int(chosen.id)

    def _near_top(self, logits: Any) -> float:
        """Fill ``self.top`` with the ``near`` highest raw logits (token-id order); the best one left out."""
        import numpy as np

        best = np.argpartition(logits, -(self.near + 1))[-(self.near + 1):]
        low = int(best[np.argmin(logits[best])])
        ids = np.sort(best[best != low][:self.near])
        self.top["id"], self.top["logit"], self.top["p"] = ids, logits[ids], 0.0
        return float(logits[low])

    def _pick_near(self, bound: float, *, masked: bool) -> int | None:
        """The chain's pick among the tokens near the top, or None when the whole vocabulary must decide
        (the pick is not above ``bound``, the best raw logit outside, or the grammar allows none of them)."""
        lc, work_p = self.lc, self.work_p
        self.work[:] = self.top
        work_p.size, work_p.selected, work_p.sorted = self.near, -1, False
        if masked:
            lc.llama_sampler_apply(self.grammar, ctypes.byref(work_p))
        lc.llama_sampler_apply(self.chain.sampler, ctypes.byref(work_p))
        chosen = work_p.data[work_p.selected]
        return int(chosen.id) if chosen.logit > bound else None

    def _allowed(self, token: int, logit: float) -> bool:
        one, one_p = self.one, self.one_p
        one[0] = (token, logit, 0.0)
        one_p.size, one_p.selected, one_p.sorted = 1, -1, False
        self.lc.llama_sampler_apply(self.grammar, ctypes.byref(one_p))
        return not (math.isinf(one["logit"][0]) and one["logit"][0] < 0)

    def close(self) -> None:
        if self.grammar is not None:
            self.lc.llama_sampler_free(self.grammar)
            self.grammar = None
        super().close()


def row_sampler(model: Any, options: GenerationOptions, seed: int, grammar: str | None = None) -> RowSampler:
    """The sampler for one row: plain, or constrained by ``grammar`` (GBNF)."""
    return GrammarSampler(model, options, seed, grammar) if grammar else RowSampler(model, options, seed)
