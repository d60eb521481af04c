"""Zero-shot multiple-choice answers on DataFrames, scored as lm-evaluation-harness scores them.

:func:`choose` scores every choice of every row (one log-likelihood request per choice; the choices
of a question share its context, which is evaluated once) and adds the harness's per-item metrics:
``acc`` (argmax of the summed log-probabilities), ``acc_norm`` (argmax after dividing by the choice's
length in characters), ``acc_bytes`` (… in UTF-8 bytes). Summaries over tasks and models are
:mod:`.compare`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import pandas as pd

from ..engines.base import ScoreRequest
from ..errors import BatchInputError
from ..manager import ModelManager, get_manager
from ._job import (
    Job,
    PathLike,
    check_columns,
    check_frame,
    chunked,
    estimate_seconds,
    failed_row,
    reserved,
    row_key,
    run_chunk,
)
from .tasks import Item, Task, generic_item, get_task

__all__ = ["CHOICE_COLUMNS", "choose", "score_item"]

CHOICE_COLUMNS = ("logprobs", "pred", "pred_norm", "gold_index", "acc", "acc_norm", "acc_bytes")


def _argmax(values: Sequence[float]) -> int:
    """Index of the largest value, the first on ties (``numpy.argmax``)."""
    best = 0
    for k in range(1, len(values)):
        if values[k] > values[best]:
            best = k
    return best


def score_item(item: Item, logprobs: Sequence[float]) -> dict[str, Any]:
    """The harness's per-item metrics from the choices' summed log-probabilities."""
    lls = [float(x) for x in logprobs]
    pred = _argmax(lls)
    pred_norm = _argmax([ll / float(len(c)) for ll, c in zip(lls, item.choices)])
    pred_bytes = _argmax([ll / float(len(c.encode("utf-8"))) for ll, c in zip(lls, item.choices)])
    gold = item.gold
    hit = (lambda p: float(p == gold)) if gold is not None else (lambda p: math.nan)
    return {"logprobs": lls, "pred": pred, "pred_norm": pred_norm, "gold_index": gold,
            "acc": hit(pred), "acc_norm": hit(pred_norm), "acc_bytes": hit(pred_bytes)}


def _items(df: pd.DataFrame, task: str | Task | None, question: str, choices: str, gold: str | None) -> list[Item]:
    if task is not None:
        t = get_task(task)
        check_columns(df, t.fields, role=f"{t.name} column ({t.dataset} schema)")
        return [t.item(row, label) for label, row in zip(df.index, df.to_dict("records"))]
    check_columns(df, [question, choices])
    if gold == "gold" and gold not in df.columns:
        gold = None  # the default name is optional: no such column means unlabelled rows
    elif gold is not None:
        check_columns(df, [gold], "gold column", lead="No gold column '{name}' in the DataFrame; name it with "
                                                      "gold='...', or pass gold=None for unlabelled rows.")
    golds = df[gold].tolist() if gold else [None] * len(df)
    items = []
    for label, q, c, g in zip(df.index, df[question].tolist(), df[choices].tolist(), golds):
        try:
            items.append(generic_item(q, c, g))
        except BatchInputError as exc:
            raise BatchInputError(f"Row {label!r}: {exc}") from None
    return items


def choose(df: pd.DataFrame, *, task: str | Task | None = None, question: str = "question",
           choices: str = "choices", gold: str | None = "gold", model: PathLike | None = None,
           manager: ModelManager | None = None, checkpoint: PathLike | None = None, progress: bool = True,
           chunk_size: int = 32) -> pd.DataFrame:
    """Pick an answer for each multiple-choice row by log-likelihood.

    Rows are either a task's Hugging Face schema (``task="hellaswag"``, ``"arc_easy"`` … see
    :func:`.tasks.task_names`), formatted with the harness's zero-shot prompt, or plain
    columns: ``question`` (the context, used as is), ``choices`` (a list of texts, each scored after
    one space) and ``gold``, the index of the right choice (the default column ``"gold"`` is optional;
    another name must be a column; None ignores golds). A missing gold (None, NaN, empty) in a row
    makes it unlabelled: it is scored, with NaN accuracies. Adds ``logprobs`` (one sum per choice), ``pred``,
    ``pred_norm``, ``gold_index``, ``acc``, ``acc_norm``, ``acc_bytes`` (NaN without a gold index),
    ``status`` and ``error``.
    """
    check_frame(df)
    items = _items(df, task, question, choices, gold)
    reserved(df, CHOICE_COLUMNS)
    manager = manager or get_manager()
    loaded = manager.ensure_loaded(model)
    spec = {"model": loaded.name, "task": get_task(task).name if task is not None else None}
    keys = [row_key(label, [it.contexts, it.continuations, it.gold]) for label, it in zip(df.index, items)]
    job = Job(df, "choose", spec, keys, checkpoint=checkpoint, progress=progress, desc=spec["task"] or "choose",
              unit="item" if task is not None else "row")
    if progress:  # a question's contexts are evaluated once, then each continuation
        job.estimate = estimate_seconds(manager, model, [t for i in job.todo() for t in
                                                         (*dict.fromkeys(items[i].contexts), *items[i].continuations)])
    requests = [[ScoreRequest(c, k) for c, k in zip(it.contexts, it.continuations)] for it in items]

    def on_row(i: int, results: list[Any]) -> None:
        row = score_item(items[i], [r.logprob for r in results])
        row.update(status="ok", error=None)
        job.record(i, row, tokens=sum(r.n_tokens for r in results))

    def on_error(i: int, exc: Exception) -> None:
        job.record(i, failed_row(CHOICE_COLUMNS, exc, df.index[i], part="choice"))

    def work(chunk: list[int]) -> None:
        run_chunk(manager, model, chunk, [requests[i] for i in chunk], on_row, on_error)

    # Longest contexts first, equal contexts together (their choices already share one pass).
    order = sorted(job.todo(), key=lambda i: (-len(items[i].contexts[0]) // 64, items[i].contexts[0]))
    job.run(chunked(order, chunk_size), work)
    return job.frame(CHOICE_COLUMNS, attrs={"kind": "choose", "model": loaded.name, "task": spec["task"],
                                            "scoring": manager.scoring_settings(model), "elapsed": job.elapsed})
