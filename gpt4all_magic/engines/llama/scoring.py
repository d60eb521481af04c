"""Log-likelihoods of continuations with llama.cpp: the fast shared-prefix scorer and the naive reference.

A request (context, continuation) is tokenized as lm-evaluation-harness does: the context's trailing
whitespace moves to the continuation, the continuation's tokens are
``tok(context + continuation)[len(tok(context)):]``, the model reads context tokens + those tokens, and
an empty context becomes the BOS token (EOS when the vocabulary has none).

:func:`score_tokens` (the fast path, llama.cpp's own ``hellaswag_score`` scheme grown into a trie) sorts
requests by their tokens and evaluates consecutive ones as one group: each position is written into
the batch once, tagged with the sequence ids of every member whose tokens agree up to there (a
question's choices share its context; rows made from one template share its head, and the labels
of a row share the row), and logits are asked only where a continuation token is predicted; several
groups share each ``llama_decode``. :func:`score_tokens_naive` evaluates each request alone from an
empty cache with logits for every token: the reference the fast path is tested against and
the baseline of ``python -m gpt4all_magic.bench.batch``. Both run flash attention in micro-batches of
at most ``SCORING_UBATCH`` tokens, where ggml computes each query row on its own, so the two agree to
~1e-7 nats (float rounding of the log-softmax) and pick the same answers. Other kernels give other
numbers on the bundled model: measured over the 176 requests of the bundled task samples, a plain
``Llama(logits_all=True)`` without flash attention differs by up to 1.03 nats per continuation (mean
0.16) and flips 2 of 56 answers, and it differs as much from itself with an f32 instead of an f16 KV
cache (up to 0.78 nats), while without flash attention, packing requests moves results by up to 0.38
nats even with an f32 cache. So this is the precision of the attention kernels on a small model
with large activations, not an error of the packing; compare scores computed with the same
settings (``df.attrs["scoring"]`` records them). A greedily generated token (generation runs without
flash attention) can therefore score as not greedy at a near tie.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ...text import move_trailing_whitespace
from ..base import ScoreRequest, ScoreResult
from .batchctx import SCORING_UBATCH, BatchContext, scoring_context
from .native import context_overflow

__all__ = ["all_logits", "encode", "encode_chat", "score_chat_requests", "score_requests", "score_requests_naive",
           "score_tokens", "score_tokens_naive"]

ROUND_CELLS = 1024  # KV cells per round (memory cleared between rounds): every row scans them all
_LOGIT_BLOCK = 64  # rows per numpy block (keeps the temporary arrays small for large vocabularies)
Progress = Callable[[int], None]


def encode(model: Any, request: ScoreRequest, *, move_whitespace: bool = True) -> tuple[list[int], list[int]]:
    """``(context tokens, continuation tokens)`` for a request, as lm-evaluation-harness splits them."""
    context, continuation = request.context, request.continuation
    if move_whitespace:
        context, continuation = move_trailing_whitespace(context, continuation)
    llm = model.llm
    if context == "":
        cont = model.tokenize(continuation)
        prefix = llm.token_bos() if llm.token_bos() != -1 else llm.token_eos()
        if cont and cont[0] == prefix:
            return cont[:1], cont[1:]
        return [prefix], cont
    bos = [llm.token_bos()] if llm._model.add_bos_token() and llm.token_bos() != -1 else []
    ctx = bos + model.tokenize(context)
    whole = bos + model.tokenize(context + continuation)
    return ctx, whole[len(ctx):]


def _encode_all(model: Any, requests: Sequence[ScoreRequest], move_whitespace: bool) -> list[tuple[list[int], list[int]]]:
    pairs = [encode(model, r, move_whitespace=move_whitespace) for r in requests]
    _check_fits(model, pairs)
    return pairs


def _check_fits(model: Any, pairs: Sequence[tuple[list[int], list[int]]]) -> None:
    for i, (ctx, cont) in enumerate(pairs):
        n = len(ctx) + len(cont) - 1  # the last token is never evaluated
        if n > model.n_ctx:
            raise context_overflow(model, f"Request {i}", n + 1, n + 1)


def score_requests(model: Any, requests: Sequence[ScoreRequest], *, move_whitespace: bool = True,
                   progress: Progress | None = None) -> list[ScoreResult]:
    """Log-likelihoods of many requests, fast (shared prefixes, many sequences per decode).

    Raises ContextOverflowError (before any work) when a request does not fit the context window.
    """
    return score_tokens(model, _encode_all(model, requests, move_whitespace), progress=progress)


def encode_chat(model: Any, request: ScoreRequest, *, system_prompt: str | None = None) -> tuple[list[int], list[int]]:
    """Tokens of the context sent as a user message through the chat template (as a generation would
    see it), and of the continuation as the assistant's answer; nothing moves across the boundary."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    rendered = model.render(messages + [{"role": "user", "content": request.context}])
    ctx = model.tokenize(rendered)
    return ctx, model.tokenize(rendered + request.continuation)[len(ctx):]


def score_chat_requests(model: Any, requests: Sequence[ScoreRequest], *, system_prompt: str | None = None,
                        progress: Progress | None = None) -> list[ScoreResult]:
    """Like :func:`score_requests`, with each context rendered as a chat prompt (:func:`encode_chat`)."""
    pairs = [encode_chat(model, r, system_prompt=system_prompt) for r in requests]
    _check_fits(model, pairs)
    return score_tokens(model, pairs, progress=progress)


def score_requests_naive(model: Any, requests: Sequence[ScoreRequest], *,
                         move_whitespace: bool = True) -> list[ScoreResult]:
    """The reference: each request alone, from an empty cache, logits for every token."""
    return score_tokens_naive(model, _encode_all(model, requests, move_whitespace))


# -- the reference ---------------------------------------------------------------------------------

def score_tokens_naive(model: Any, pairs: Sequence[tuple[list[int], list[int]]]) -> list[ScoreResult]:
    """Evaluate context + continuation of each pair on a fresh single-sequence context."""
    import numpy as np

    # The same kernels as the fast path (flash attention, small micro-batches), on a context of its own.
    longest = max((len(c) + len(k) for c, k in pairs), default=1)
    ctx = BatchContext(model, n_ctx=-(-longest // 256) * 256, n_seq_max=1, n_batch=SCORING_UBATCH,
                       kv_unified=False, flash_attn=True)
    results = []
    try:
        for context, cont in pairs:
            if not cont:
                results.append(ScoreResult(0.0, 0, True, ()))
                continue
            full = context + cont
            logits = all_logits(ctx, full).astype(np.float64)[len(context) - 1:len(full) - 1]
            logp = logits - logits.max(axis=1, keepdims=True)
            logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
            targets = np.array(cont)
            lps = logp[np.arange(len(cont)), targets]
            greedy = bool((logits.argmax(axis=1) == targets).all())
            results.append(ScoreResult(float(lps.sum()), len(cont), greedy, tuple(float(x) for x in lps)))
    finally:
        ctx.close()
    return results


def all_logits(ctx: BatchContext, tokens: Sequence[int]) -> Any:
    """Logits of every position of ``tokens`` evaluated alone from an empty cache (float32 rows)."""
    import numpy as np

    ctx.clear()
    rows = []
    for start, stop in _spans(len(tokens), ctx.n_batch):
        ctx.reset_batch()
        indices = [ctx.add(tokens[j], j, 0, True) for j in range(start, stop)]
        ctx.decode()
        rows.append(ctx.logits(indices))
    return np.concatenate(rows)


# -- the fast path ---------------------------------------------------------------------------------

@dataclass
class _Req:
    index: int
    full: list[int]  # context + continuation
    n_context: int

    @property
    def first_needed(self) -> int:  # the first position whose logits predict a continuation token
        return self.n_context - 1

    @property
    def last_eval(self) -> int:  # the last position to evaluate (the final token is never needed)
        return len(self.full) - 2


@dataclass
class _Group:
    """Requests sorted by their tokens, evaluated as a trie: ``links[i]`` is how many positions member ``i``
    shares with member ``i - 1`` (0 for the first); those cells are written once for both."""

    members: list[_Req]
    links: list[int]

    def cells(self) -> int:
        return sum(r.last_eval + 1 - link for r, link in zip(self.members, self.links))


def _lcp(a: list[int], b: list[int], limit: int) -> int:
    k = 0
    while k < limit and a[k] == b[k]:
        k += 1
    return k


def _groups(reqs: list[_Req], max_members: int, max_cells: int) -> list[_Group]:
    """Requests sorted by tokens, consecutive ones that share a prefix in one group (a trie costs no cell
    more than evaluating each member alone, so joining only has to fit)."""
    groups: list[_Group] = []
    for r in sorted(reqs, key=lambda r: r.full):
        if groups and len(groups[-1].members) < max_members:
            group, last = groups[-1], groups[-1].members[-1]
            link = _lcp(last.full, r.full, min(last.last_eval, r.last_eval) + 1)
            if link > 0 and group.cells() + r.last_eval + 1 - link <= max_cells:
                group.members.append(r)
                group.links.append(link)
                continue
        groups.append(_Group([r], [0]))
    return groups


def _rounds(groups: list[_Group], max_seqs: int, max_cells: int) -> list[list[_Group]]:
    """Groups packed into rounds that fit the sequence ids and KV cells of one context fill."""
    rounds: list[list[_Group]] = []
    seqs = cells = 0
    for g in groups:
        n, c = len(g.members), g.cells()
        if not rounds or seqs + n > max_seqs or cells + c > max_cells:
            rounds.append([])
            seqs = cells = 0
        rounds[-1].append(g)
        seqs += n
        cells += c
    return rounds


def score_tokens(model: Any, pairs: Sequence[tuple[list[int], list[int]]], *,
                 progress: Progress | None = None) -> list[ScoreResult]:
    """Log-likelihoods of token pairs with shared prefixes and many sequences per decode."""
    results: list[ScoreResult | None] = [None] * len(pairs)
    reqs = []
    for i, (context, cont) in enumerate(pairs):
        if cont:
            reqs.append(_Req(i, list(context) + list(cont), len(context)))
        else:
            results[i] = ScoreResult(0.0, 0, True, ())
    if reqs:
        ctx = scoring_context(model, n_cells=max([ROUND_CELLS] + [r.last_eval + 1 for r in reqs]))
        budget = ROUND_CELLS  # a longer request gets a round of its own
        logprobs: dict[int, list[float]] = {r.index: [0.0] * (len(r.full) - r.n_context) for r in reqs}
        greedy: dict[int, bool] = {r.index: True for r in reqs}
        for round_ in _rounds(_groups(reqs, ctx.n_seq_max, budget), ctx.n_seq_max, budget):
            _run_round(ctx, round_, logprobs, greedy)
            for g in round_:
                for r in g.members:
                    lps = logprobs.pop(r.index)
                    results[r.index] = ScoreResult(sum(lps), len(lps), greedy.pop(r.index), tuple(lps))
            if progress is not None:
                progress(sum(len(g.members) for g in round_))
    return results  # type: ignore[return-value]


def _run_round(ctx: BatchContext, round_: list[_Group], logprobs: dict[int, list[float]],
               greedy: dict[int, bool]) -> None:
    """Evaluate one round (memory cleared first); fill in the members' token log-probabilities."""
    # Each entry: (token, pos, seq ids, targets); targets: (request index, k-th continuation token, token).
    plan: list[tuple[int, int, Any, list[tuple[int, int, int]]]] = []
    seq = 0
    for g in round_:
        seqs = list(range(seq, seq + len(g.members)))
        seq += len(g.members)
        for i, r in enumerate(g.members):
            for pos in range(g.links[i], r.last_eval + 1):
                j = i  # members i..j agree with member i up to pos: one cell for all of them
                while j + 1 < len(g.members) and g.links[j + 1] > pos:
                    j += 1
                targets = [(m.index, pos + 1 - m.n_context, m.full[pos + 1]) for m in g.members[i:j + 1]
                           if m.first_needed <= pos <= m.last_eval]
                plan.append((r.full[pos], pos, seqs[i] if j == i else seqs[i:j + 1], targets))
    ctx.clear()
    for start, stop in _spans(len(plan), ctx.n_batch):
        ctx.reset_batch()
        wanted: list[list[tuple[int, int, int]]] = []
        indices: list[int] = []
        for token, pos, seqs_, targets in plan[start:stop]:
            index = ctx.add(token, pos, seqs_, bool(targets))
            if targets:
                wanted.append(targets)
                indices.append(index)
        ctx.decode()
        if wanted:
            _gather(ctx.logits(indices), wanted, logprobs, greedy)


def _gather(rows: Any, wanted: list[list[tuple[int, int, int]]], logprobs: dict[int, list[float]],
            greedy: dict[int, bool]) -> None:
    """Log-softmax the logits rows (float64 sums) and read the targets' log-probabilities."""
    import numpy as np

    for b0 in range(0, len(wanted), _LOGIT_BLOCK):
        block = rows[b0:b0 + _LOGIT_BLOCK]
        top = block.max(axis=1)
        lse = top.astype(np.float64) + np.log(np.exp(block - top[:, None]).sum(axis=1, dtype=np.float64))
        best = block.argmax(axis=1)
        for j, targets in enumerate(wanted[b0:b0 + _LOGIT_BLOCK]):
            row = block[j]
            for index, k, token in targets:
                logprobs[index][k] = float(row[token]) - float(lse[j])
                if best[j] != token:
                    greedy[index] = False


def _spans(n: int, size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` chunks of at most ``size`` items, never a chunk of one (a one-token micro-batch
    takes other kernels than the rest, which would change the numbers)."""
    spans = [(i, min(n, i + size)) for i in range(0, n, size)]
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] == 1:
        (a, b), (_, d) = spans[-2], spans[-1]
        spans[-2:] = [(a, b - 1), (b - 1, d)]
    return spans
