"""Batch work on DataFrames: generate over rows, score continuations, evaluate perplexity.

Every function takes a DataFrame and returns a new one: the input columns, the result columns, and
``status`` (``"ok"``, ``"too_long"``, ``"error"``, ``"interrupted"``, ``"not_run"``) with ``error`` (the
one-line reason). Rows run grouped by shared prefix and length, several per llama.cpp batch, and come
back in input order. A progress bar shows rows/s and tokens/s; Ctrl-C returns the rows finished so far;
``checkpoint="file.jsonl"`` makes a rerun of the same call skip them. Multiple-choice evaluation lives
in :mod:`.batch_eval`, curation in :mod:`.curation`. Importing any of them registers ``df.gpt4all``.

>>> out = generate_rows(df, "Summarize in one line: {text}", temp=0, max_tokens=60)  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import re
from typing import Any, Iterator, Mapping, Sequence

import pandas as pd

from .backends.base import ScoreRequest
from .batch_runner import Job, check_columns, check_frame, chunked, peek_checkpoint, reserved, row_key, text_cells
from .errors import (
    BatchInputError,
    ContextOverflowError,
    Gpt4AllError,
    RemoteAuthError,
    RemoteConnectionError,
    RemoteTimeoutError,
    ScoringNotSupportedError,
)
from .manager import ModelManager, get_manager
from .options import GenerationOptions
from .prompts import fields, fill

__all__ = ["GENERATE_COLUMNS", "SCORE_COLUMNS", "generate_rows", "perplexity", "render_template", "score"]

GENERATE_COLUMNS = ("prompt_tokens", "completion_tokens", "tokens_per_second", "finish_reason")
SCORE_COLUMNS = ("logprob", "n_tokens", "mean_logprob", "perplexity", "is_greedy")
PathLike = str | os.PathLike[str]


# -- prompts from rows ------------------------------------------------------------------------------

def template_fields(template: str) -> list[str]:
    """The ``{name}`` / ``{name.attr}`` fields a template fills (not ``{{name}}``, not those inside code)."""
    return fields(template)


def render_template(df: pd.DataFrame, template: str, variables: Mapping[str, Any] | None = None) -> list[str]:
    """One prompt per row: ``{column}`` fields filled from the row (numbers are written as text), other
    fields from ``variables``; the rules are :mod:`.prompts`' (braces in code, JSON or CSS stay)."""
    if not isinstance(template, str) or not template.strip():
        raise BatchInputError("The template is empty; write a prompt with {column} fields, e.g. "
                              "'Translate to French: {text}'.")
    variables = variables or {}
    found = template_fields(template)
    heads = [h for h in dict.fromkeys(f.split(".")[0] for f in found) if h in df.columns or h not in variables]
    if not heads:
        raise BatchInputError("The template has no {column} field, so every row would get the same prompt; "
                              "name a column, e.g. 'Summarize: {text}' (write {{ and }} for literal braces).")
    check_columns(df, heads, lead="The template names {{{name}}}, but the DataFrame has no column '{name}' "
                                  "(write {{{{ and }}}} for literal braces).")
    columns: dict[str, list[Any]] = {}
    for head in heads:
        if any(f.startswith(head + ".") for f in found):
            columns[head] = df[head].tolist()  # {date.year}: attributes of any value
        else:
            columns[head] = text_cells(df, head, allow_numbers=True)
    return [fill(template, collections.ChainMap({h: columns[h][i] for h in heads}, variables)).text
            for i in range(len(df))]


def _prompts(df: pd.DataFrame, template: str | None, prompt_column: str | None,
             variables: Mapping[str, Any] | None = None) -> list[str]:
    if template is not None and prompt_column is not None:
        raise BatchInputError("Pass either a template or prompt_column, not both.")
    if template is None:
        if prompt_column is None:
            if "prompt" not in df.columns:
                raise BatchInputError("Pass a template with {column} fields (e.g. 'Summarize: {text}') or "
                                      "prompt_column='name of the column holding the prompts'.")
            prompt_column = "prompt"
        check_columns(df, [prompt_column])
        return text_cells(df, prompt_column)
    return render_template(df, template, variables)


# -- models -----------------------------------------------------------------------------------------

def _loaded(manager: ModelManager, model: str | os.PathLike[str] | None) -> Any:
    with manager.acquire("batch"):
        return manager.ensure_loaded(model)


@contextlib.contextmanager
def each_model(manager: ModelManager, models: Sequence[Any] | None) -> Iterator[list[Any]]:
    """Yield the models to run (None: the one loaded now); afterwards, load again what was loaded before."""
    before = manager.current
    again = None
    if before is not None:
        again = before.ref.path if before.ref.source == "file" and before.ref.path else before.ref.name
    names = [again if m is None else m for m in models] if models else [again]
    try:
        yield names
    finally:
        current = manager.current
        if before is not None and (current is None or current.ref != before.ref):
            manager.load(again, n_ctx=before.n_ctx)


def _sorted_by_length(texts: Sequence[str], positions: Sequence[int]) -> list[int]:
    """Longest first, equal prefixes together: rows that finish together share a chunk."""
    return sorted(positions, key=lambda i: (-len(texts[i]) // 64, texts[i]))


# -- generation -------------------------------------------------------------------------------------

def generate_rows(df: pd.DataFrame, template: str | None = None, *, prompt_column: str | None = None,
                  output_column: str = "response", model: str | os.PathLike[str] | None = None,
                  system_prompt: str | None = None, options: GenerationOptions | None = None,
                  manager: ModelManager | None = None, checkpoint: PathLike | None = None, progress: bool = True,
                  max_parallel: int = 32, chunk_size: int = 128, variables: Mapping[str, Any] | None = None,
                  **option_values: Any) -> pd.DataFrame:
    """Answer one prompt per row (a ``{column}`` template or a prompt column), as :func:`generate` would.

    Returns the input frame plus ``response`` (``output_column``), ``prompt_tokens``,
    ``completion_tokens``, ``tokens_per_second``, ``finish_reason``, ``status`` and ``error``. Each
    row gets the chat template and options of a single ``generate()`` call with the same seed (one
    seed for the whole run, recorded in ``.attrs["options"]``). A row too long for the context
    window is marked ``"too_long"`` and the others still run. Template fields that name no column are
    filled from ``variables`` (``%%gpt4all --df`` passes the notebook's).
    """
    check_frame(df)
    for name, value in (("max_parallel", max_parallel), ("chunk_size", chunk_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BatchInputError(f"{name} must be a whole number >= 1, got {value!r}.")
    prompts = _prompts(df, template, prompt_column, variables)
    result_columns = (output_column,) + GENERATE_COLUMNS
    reserved(df, result_columns)
    opts = GenerationOptions.from_mapping(option_values, base=options)
    if system_prompt is not None:
        opts = opts.replace(system_prompt=system_prompt)
    header = peek_checkpoint(checkpoint)
    if opts.seed is None and header is not None and isinstance(header.get("seed"), int):
        opts = opts.replace(seed=header["seed"])  # a resumed run keeps the first run's seed
    opts = opts.with_seed()
    manager = manager or get_manager()
    loaded = _loaded(manager, model)
    # The seed is part of the job: resuming with another one would mix two seeds' answers in one frame.
    job_spec = {"model": loaded.name, "options": {k: v for k, v in opts.to_dict().items() if k != "seed"},
                "seed": opts.seed,
                "prompt": template if template is not None else f"column {prompt_column or 'prompt'}"}
    if template is not None and variables:  # the variables' values are part of the job, as the template is
        used = [f for f in fields(template) if f.split(".")[0] not in df.columns and f.split(".")[0] in variables]
        if used:
            job_spec["variables"] = {f: fill(f"{{{f}}}", variables).text for f in used}
    keys = [row_key(label, p) for label, p in zip(df.index, prompts)]
    job = Job(df, "generate", job_spec, keys, checkpoint=checkpoint, progress=progress, desc="generate",
              header={"seed": opts.seed})
    for i in job.todo():
        if not prompts[i].strip():
            job.record(i, _row(output_column, error="The prompt is empty.", status="error"))
    todo = _sorted_by_length(prompts, job.todo())
    system = [{"role": "system", "content": opts.system_prompt}] if opts.system_prompt else []

    def work(chunk: list[int]) -> None:
        messages = [system + [{"role": "user", "content": prompts[i]}] for i in chunk]

        def on_result(j: int, text: str, stats: Any, error: Exception | None) -> None:
            row = _generation_row(output_column, text, stats, error)
            job.record(chunk[j], row, tokens=stats.completion_tokens)

        with manager.acquire("batch generation"):
            current = manager.ensure_loaded(model)
            current.generate_many(messages, opts, on_result, max_parallel=max_parallel)

    job.run(chunked(todo, chunk_size), work)
    _count_usage(manager, job)
    return job.frame(result_columns, attrs={"kind": "generate", "model": loaded.name, "options": opts.to_dict(),
                                            "elapsed": job.elapsed, "tokens": job.tokens})


def _row(output_column: str, *, error: str | None, status: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {output_column: None, **{c: None for c in GENERATE_COLUMNS}}
    row.update(values)
    row.update(status=status, error=error)
    return row


def _generation_row(output_column: str, text: str, stats: Any, error: Exception | None) -> dict[str, Any]:
    if error is not None:
        status = "too_long" if isinstance(error, ContextOverflowError) else "error"
        return _row(output_column, error=str(error), status=status, prompt_tokens=stats.prompt_tokens or None)
    tps = None
    if stats.t_first_token is not None and stats.t_last_token is not None and stats.completion_tokens > 1:
        span = stats.t_last_token - stats.t_first_token
        tps = (stats.completion_tokens - 1) / span if span > 0 else None
    status = "interrupted" if stats.finish_reason == "interrupted" else "ok"
    return _row(output_column, error=None, status=status, **{
        output_column: text, "prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens,
        "tokens_per_second": tps, "finish_reason": stats.finish_reason})


def _count_usage(manager: ModelManager, job: Job) -> None:
    totals = manager.totals
    done = [r for r in job.results.values() if r.get("status") in ("ok", "interrupted")]
    totals.generations += len(done)
    totals.prompt_tokens += sum(r.get("prompt_tokens") or 0 for r in done)
    totals.completion_tokens += sum(r.get("completion_tokens") or 0 for r in done)
    totals.generation_seconds += job.elapsed


# -- scoring ----------------------------------------------------------------------------------------

def score(df: pd.DataFrame, context: str = "prompt", continuation: str = "response", *, chat: bool = False,
          system_prompt: str | None = None, model: str | os.PathLike[str] | None = None,
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
    loaded = _loaded(manager, model)
    spec = {"model": loaded.name, "chat": chat, "system_prompt": system_prompt, "context": context,
            "continuation": continuation}
    keys = [row_key(label, [c, r]) for label, c, r in zip(df.index, contexts, continuations)]
    job = Job(df, "score", spec, keys, checkpoint=checkpoint, progress=progress, desc="score")
    requests = [ScoreRequest(c, r) for c, r in zip(contexts, continuations)]

    def run(model_: Any, reqs: list[ScoreRequest]) -> list[Any]:
        return model_.score_chat(reqs, system_prompt=system_prompt) if chat else model_.score(reqs)

    def work(chunk: list[int]) -> None:
        run_chunk(manager, model, chunk, [[requests[i]] for i in chunk], run,
                  lambda i, results: job.record(i, _score_row(results[0]), tokens=results[0].n_tokens),
                  lambda i, exc: job.record(i, _failed_row(SCORE_COLUMNS, exc, df.index[i])))

    job.run(chunked(_sorted_by_length(contexts, job.todo()), chunk_size), work)
    return job.frame(SCORE_COLUMNS, attrs={"kind": "score", "model": loaded.name, "chat": chat,
                                           "scoring": _scoring_settings(loaded), "elapsed": job.elapsed})


def run_chunk(manager: ModelManager, model: Any, positions: list[int], requests: list[list[ScoreRequest]],
              run: Any, on_row: Any, on_error: Any) -> None:
    """Score the requests of several rows in one call; if a row fails (too long, a server error for
    that text), score row by row so only that row is marked. Errors that are not about a row (the
    server cannot score, went away, timed out, refused the key) end the job; its Job keeps the rows
    finished so far."""
    flat = [r for rs in requests for r in rs]
    with manager.acquire("batch scoring"):
        current = manager.ensure_loaded(model)
        try:
            results = run(current, flat)
        except _JOB_ERRORS:
            raise
        except Gpt4AllError:
            results = None
        if results is not None:
            k = 0
            for pos, rs in zip(positions, requests):
                on_row(pos, results[k:k + len(rs)])
                k += len(rs)
            return
        for pos, rs in zip(positions, requests):
            try:
                on_row(pos, run(current, rs))
            except _JOB_ERRORS:
                raise
            except Gpt4AllError as exc:
                on_error(pos, exc)


# Errors about the whole job rather than one row: retrying row by row would only repeat them.
_JOB_ERRORS = (ScoringNotSupportedError, RemoteConnectionError, RemoteAuthError, RemoteTimeoutError)


def _score_row(result: Any) -> dict[str, Any]:
    n = result.n_tokens
    mean = result.logprob / n if n else math.nan
    return {"logprob": result.logprob, "n_tokens": n, "mean_logprob": mean,
            "perplexity": math.exp(-mean) if n else math.nan, "is_greedy": result.is_greedy,
            "status": "ok", "error": None}


def _failed_row(columns: Sequence[str], exc: Exception, label: Any, part: str | None = None) -> dict[str, Any]:
    """A row that could not be done, its error naming the DataFrame row ``label``. The scorer numbers
    the requests of one call ("Request 2 is 3,001 tokens …"): a row's ``part`` (its choices) when
    given, else the row itself, scored alone."""
    text = str(exc)
    match = _REQUEST.match(text)
    if match:
        where = f" ({part} {match.group(1)})" if part else ""
        error = f"Row {label!r}{where}{text[match.end():]}"
    else:
        error = f"Row {label!r}: {text}"
    row: dict[str, Any] = {c: None for c in columns}
    row.update(status="too_long" if isinstance(exc, ContextOverflowError) else "error", error=error)
    return row


_REQUEST = re.compile(r"Request (\d+)(?= is )")


def _scoring_settings(loaded: Any) -> dict[str, Any]:
    holder = getattr(loaded, "_scorer", None)
    return holder.describe().get("scoring", {}) if holder is not None and hasattr(holder, "describe") else {}


# -- perplexity evaluation --------------------------------------------------------------------------

def perplexity(df: pd.DataFrame, prompt: str = "prompt", response: str = "response", *,
               models: Sequence[str | os.PathLike[str]] | None = None, clip: float | None = 100.0,
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
