"""Labelling the rows of a DataFrame with one of a few labels.

By default (``method="loglik"``) nothing is generated: each label is scored as the model's answer to the
row's prompt (the chat template applied, the label as the assistant's reply), the log-likelihoods are
normalised over the labels into ``p_<label>`` columns, and ``label`` is their argmax. The labels of a
row share one evaluation of its prompt and many rows share each decode (the scorer of ``choose``).
``method="generate"`` lets the model answer under a grammar that allows only the labels.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import pandas as pd

from ..engines.base import ScoreRequest
from ..errors import BatchInputError
from ..manager import ModelManager, get_manager
from ..options import PARALLEL_ROWS, GenerationOptions
from ..structured.schema import Schema, check_labels
from ._job import Job, PathLike, check_frame, chunked, failed_row, reserved, row_key, run_chunk, sorted_by_length
from ._typed import Outcome
from .extract import run_rows, typed_job, typed_options
from .generate import row_prompts

__all__ = ["classify", "softmax"]

METHODS = ("loglik", "generate")


def softmax(logprobs: Sequence[float]) -> list[float]:
    """Probabilities from log-likelihoods, normalised over them (computed stably)."""
    top = max(logprobs)
    weights = [math.exp(x - top) for x in logprobs]
    total = sum(weights)
    return [w / total for w in weights]


def classify(df: pd.DataFrame, template: str | None = None, labels: Sequence[str] | str | None = None, *,
             prompt_column: str | None = None, method: str = "loglik", model: PathLike | None = None,
             system_prompt: str | None = None, options: GenerationOptions | None = None,
             manager: ModelManager | None = None, checkpoint: PathLike | None = None, progress: bool = True,
             chunk_size: int = 64, max_parallel: int = PARALLEL_ROWS, variables: Mapping[str, Any] | None = None,
             **option_values: Any) -> pd.DataFrame:
    """Give each row (a ``{column}`` template or a prompt column) one of ``labels``.

    ``method="loglik"`` adds ``label`` and one ``p_<label>`` column per label: the probability of
    each label as the answer, from log-likelihoods normalised over the labels (see the module doc).
    ``method="generate"`` adds ``label`` (the answer, constrained to the labels), ``response`` and
    ``retried``; options apply there (temp defaults to 0). Both add ``status`` and ``error``. Empty or
    duplicate labels and bad input are refused before any work; Ctrl-C and ``checkpoint=`` work as
    in the other batch functions.
    """
    check_frame(df)
    labels = check_labels(labels)
    if method not in METHODS:
        raise BatchInputError(f"method must be 'loglik' (probabilities from log-likelihoods) or 'generate' "
                              f"(constrained generation), got {method!r}.")
    prompts = row_prompts(df, template, prompt_column, variables)
    manager = manager or get_manager()
    if method == "generate":
        return _by_generation(df, prompts, labels, template, prompt_column, model, system_prompt, options,
                              manager, checkpoint, progress, chunk_size, max_parallel, option_values)
    if options is not None or option_values:
        raise BatchInputError("Generation options do not apply to method='loglik' (nothing is generated); drop "
                              "them, or use method='generate'.")
    return _by_loglik(df, prompts, labels, template, prompt_column, model, system_prompt, manager, checkpoint,
                      progress, chunk_size)


def _by_loglik(df: pd.DataFrame, prompts: list[str], labels: tuple[str, ...], template: str | None,
               prompt_column: str | None, model: PathLike | None, system_prompt: str | None,
               manager: ModelManager, checkpoint: PathLike | None, progress: bool, chunk_size: int) -> pd.DataFrame:
    """``classify(method="loglik")``: each label scored as the answer, normalised over the labels."""
    columns = ("label",) + tuple(f"p_{label}" for label in labels)
    reserved(df, columns)
    loaded = manager.ensure_loaded(model)
    spec = {"model": loaded.name, "labels": list(labels), "system_prompt": system_prompt,
            "prompt": template if template is not None else f"column {prompt_column or 'prompt'}"}
    keys = [row_key(label, p) for label, p in zip(df.index, prompts)]
    job = Job(df, "classify", spec, keys, checkpoint=checkpoint, progress=progress, desc="classify")
    for i in job.todo():
        if not prompts[i].strip():
            job.record(i, {**dict.fromkeys(columns), "status": "error",
                           "error": f"Row {df.index[i]!r}: the prompt is empty."})

    def on_row(i: int, results: list[Any]) -> None:
        probs = softmax([r.logprob for r in results])
        best = max(range(len(labels)), key=lambda k: (probs[k], -k))
        job.record(i, {"label": labels[best], **{f"p_{lab}": p for lab, p in zip(labels, probs)},
                       "status": "ok", "error": None}, tokens=sum(r.n_tokens for r in results))

    def work(chunk: list[int]) -> None:
        requests = [[ScoreRequest(prompts[i], label) for label in labels] for i in chunk]
        run_chunk(manager, model, chunk, requests, on_row,
                  lambda i, exc: job.record(i, failed_row(columns, exc, df.index[i], part="label")),
                  chat=True, system_prompt=system_prompt)

    job.run(chunked(sorted_by_length(prompts, job.todo()), chunk_size), work)
    frame = job.frame(columns, attrs={"kind": "classify", "method": "loglik", "model": loaded.name,
                                      "labels": list(labels), "scoring": manager.scoring_settings(model),
                                      "elapsed": job.elapsed})
    frame["label"] = pd.array(frame["label"].tolist(), dtype="string")
    for label in labels:
        frame[f"p_{label}"] = pd.array(frame[f"p_{label}"].tolist(), dtype="Float64")
    return frame


def _by_generation(df: pd.DataFrame, prompts: list[str], labels: tuple[str, ...], template: str | None,
                   prompt_column: str | None, model: PathLike | None, system_prompt: str | None,
                   options: GenerationOptions | None, manager: ModelManager, checkpoint: PathLike | None,
                   progress: bool, chunk_size: int, max_parallel: int,
                   option_values: Mapping[str, Any]) -> pd.DataFrame:
    """``classify(method="generate")``: the answer generated under a grammar that allows only the labels."""
    from ..engines.base import ResponseFormat

    spec = Schema.choice(labels)
    columns = ("label", "response", "retried")
    reserved(df, columns)
    opts = typed_options(options, option_values, checkpoint)
    if system_prompt is not None:
        opts = opts.replace(system_prompt=system_prompt)
    loaded = manager.ensure_loaded(model)
    manager.check_format(ResponseFormat(spec.json_schema, spec.name), model)
    job = typed_job(df, spec, opts, loaded.name, template, prompt_column, prompts, checkpoint, progress,
                    kind="classify", extra={"method": "generate"})

    def row(outcome: Outcome) -> dict[str, Any]:
        return {"label": outcome.value if outcome.status == "ok" else None, "response": outcome.text,
                "retried": outcome.retried, "status": outcome.status, "error": outcome.error}

    run_rows(job, manager, spec, opts, prompts, model, max_parallel, chunk_size, True, row)
    frame = job.frame(columns, attrs={"kind": "classify", "method": "generate", "model": loaded.name,
                                      "labels": list(labels), "options": opts.to_dict(), "elapsed": job.elapsed})
    frame["label"] = pd.array(frame["label"].tolist(), dtype="string")
    return frame
