"""Log-likelihood scoring of DataFrame rows (a continuation after a context), and ground-truth
perplexity per model as the GPT4All paper reports it. Rows are scored through the manager, several
per engine call, with a failing row marked on its own."""

from __future__ import annotations

import math
from typing import Any, Sequence

import pandas as pd

from ..engines.base import ScoreRequest
from ..manager import ModelManager, get_manager
from ._job import (
    Job,
    PathLike,
    check_columns,
    check_frame,
    chunked,
    each_model,
    estimate_seconds,
    failed_row,
    reserved,
    row_key,
    run_chunk,
    sorted_by_length,
    text_cells,
)

__all__ = ["SCORE_COLUMNS", "perplexity", "score"]

SCORE_COLUMNS = ("logprob", "n_tokens", "mean_logprob", "perplexity", "is_greedy")


def score(df: pd.DataFrame, context: str = "prompt", continuation: str = "response", *, chat: bool = False,
          system_prompt: str | None = None, model: PathLike | None = None,
          manager: ModelManager | None = None, checkpoint: PathLike | None = None, progress: bool = True,
          chunk_size: int = 64) -> pd.DataFrame:
    """Log-likelihood of each row's continuation after its context.

    Adds ``logprob`` (sum, nats), ``n_tokens``, ``mean_logprob``, ``perplexity``
    (``exp(-mean_logprob)``), ``is_greedy`` (every token is the model's top choice), ``status`` and
    ``error``. With ``chat=False`` the texts are raw and split as lm-evaluation-harness does (the
    context's trailing whitespace moves to the continuation); with ``chat=True`` the context is sent
    as a user message through the model's chat template and the continuation is scored as the answer.
    """
    check_frame(df)
    check_columns(df, [context, continuation])
    contexts = text_cells(df, context)
    continuations = text_cells(df, continuation)
    reserved(df, SCORE_COLUMNS)
    manager = manager or get_manager()
    loaded = manager.ensure_loaded(model)
    spec = {"model": loaded.name, "chat": chat, "system_prompt": system_prompt, "context": context,
            "continuation": continuation}
    keys = [row_key(label, [c, r]) for label, c, r in zip(df.index, contexts, continuations)]
    job = Job(df, "score", spec, keys, checkpoint=checkpoint, progress=progress, desc="score")
    if progress:
        job.estimate = estimate_seconds(manager, model, [contexts[i] + continuations[i] for i in job.todo()])
    requests = [ScoreRequest(c, r) for c, r in zip(contexts, continuations)]

    def work(chunk: list[int]) -> None:
        run_chunk(manager, model, chunk, [[requests[i]] for i in chunk],
                  lambda i, results: job.record(i, _score_row(results[0]), tokens=results[0].n_tokens),
                  lambda i, exc: job.record(i, failed_row(SCORE_COLUMNS, exc, df.index[i])),
                  chat=chat, system_prompt=system_prompt)

    job.run(chunked(sorted_by_length(contexts, job.todo()), chunk_size), work)
    return job.frame(SCORE_COLUMNS, attrs={"kind": "score", "model": loaded.name, "chat": chat,
                                           "scoring": manager.scoring_settings(model), "elapsed": job.elapsed})


def _score_row(result: Any) -> dict[str, Any]:
    n = result.n_tokens
    mean = result.logprob / n if n else math.nan
    return {"logprob": result.logprob, "n_tokens": n, "mean_logprob": mean,
            "perplexity": math.exp(-mean) if n else math.nan, "is_greedy": result.is_greedy,
            "status": "ok", "error": None}


# -- perplexity evaluation --------------------------------------------------------------------------

def perplexity(df: pd.DataFrame, prompt: str = "prompt", response: str = "response", *,
               models: Sequence[PathLike] | None = None, clip: float | None = 100.0,
               chat: bool = True, system_prompt: str | None = None, manager: ModelManager | None = None,
               progress: bool = True) -> pd.DataFrame:
    """Ground-truth perplexity of each response given its prompt, summarized per model.

    As in the GPT4All paper, each row's perplexity (``exp`` of minus the mean log-probability of the
    response tokens) is clipped at ``clip`` (100) before averaging. Columns: ``rows``, ``tokens``,
    ``mean_perplexity`` (clipped), ``median_perplexity``, ``corpus_perplexity`` (``exp`` of minus the
    mean over all tokens), ``clipped_rows`` and ``failed_rows``. ``chat=True`` (the default) scores
    each response as the answer to its prompt under the model's chat template. Per-row values:
    :func:`score`.
    """
    manager = manager or get_manager()
    rows = []
    with each_model(manager, models) as names:
        for name in names:
            scored = score(df, prompt, response, chat=chat, system_prompt=system_prompt, model=name,
                           manager=manager, progress=progress)
            rows.append(_perplexity_summary(scored, clip))
            if scored.attrs.get("interrupted"):
                break
    return pd.DataFrame(rows).set_index("model")


def _perplexity_summary(scored: pd.DataFrame, clip: float | None) -> dict[str, Any]:
    ok = scored[(scored["status"] == "ok") & (scored["n_tokens"].fillna(0) > 0)]
    ppl = ok["perplexity"].astype(float)
    clipped = ppl.clip(upper=clip) if clip is not None else ppl
    tokens = int(ok["n_tokens"].sum())
    return {"model": scored.attrs["model"], "rows": len(ok), "tokens": tokens,
            "mean_perplexity": float(clipped.mean()) if len(ok) else math.nan,
            "median_perplexity": float(ppl.median()) if len(ok) else math.nan,
            "corpus_perplexity": math.exp(-float(ok["logprob"].sum()) / tokens) if tokens else math.nan,
            "clipped_rows": int((ppl > clip).sum()) if clip is not None else 0,
            "failed_rows": int(len(scored) - len(ok))}
