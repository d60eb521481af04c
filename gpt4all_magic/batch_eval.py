"""Zero-shot multiple-choice evaluation on DataFrames, scored as lm-evaluation-harness scores it.

:func:`choose` scores every choice of every row (one log-likelihood request per choice; the choices
of a question share its context, which is evaluated once) and adds the harness's per-item metrics:
``acc`` (argmax of the summed log-probabilities), ``acc_norm`` (argmax after dividing by the choice's
length in characters), ``acc_bytes`` (… in UTF-8 bytes). :func:`evaluate` summarizes tasks for one
model, :func:`compare` lays several models out as Table 1 of the GPT4All paper (acc for BoolQ and
WinoGrande, acc_norm for the others, as the paper reports them), and :func:`plot_comparison` draws it.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any, Mapping, Sequence

import pandas as pd

from .backends.base import ScoreRequest
from .batch import _failed_row, _loaded, _scoring_settings, each_model, run_chunk
from .batch_runner import Job, check_columns, check_frame, chunked, reserved, row_key
from .errors import BatchInputError
from .manager import ModelManager, get_manager
from .tasks import Item, Task, generic_item, get_task, load_sample

__all__ = ["CHOICE_COLUMNS", "METRICS", "choose", "compare", "evaluate", "plot_comparison", "score_item"]

CHOICE_COLUMNS = ("logprobs", "pred", "pred_norm", "gold_index", "acc", "acc_norm", "acc_bytes")
PathLike = str | os.PathLike[str]


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
    :func:`gpt4all_magic.tasks.task_names`), formatted with the harness's zero-shot prompt, or plain
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
    loaded = _loaded(manager, model)
    spec = {"model": loaded.name, "task": get_task(task).name if task is not None else None}
    keys = [row_key(label, [it.contexts, it.continuations, it.gold]) for label, it in zip(df.index, items)]
    job = Job(df, "choose", spec, keys, checkpoint=checkpoint, progress=progress, desc=spec["task"] or "choose")
    requests = [[ScoreRequest(c, k) for c, k in zip(it.contexts, it.continuations)] for it in items]

    def on_row(i: int, results: list[Any]) -> None:
        row = score_item(items[i], [r.logprob for r in results])
        row.update(status="ok", error=None)
        job.record(i, row, tokens=sum(r.n_tokens for r in results))

    def on_error(i: int, exc: Exception) -> None:
        job.record(i, _failed_row(CHOICE_COLUMNS, exc, df.index[i], part="choice"))

    def work(chunk: list[int]) -> None:
        run_chunk(manager, model, chunk, [requests[i] for i in chunk], lambda m, rs: m.score(rs), on_row, on_error)

    # Longest contexts first, equal contexts together (their choices already share one pass).
    order = sorted(job.todo(), key=lambda i: (-len(items[i].contexts[0]) // 64, items[i].contexts[0]))
    job.run(chunked(order, chunk_size), work)
    return job.frame(CHOICE_COLUMNS, attrs={"kind": "choose", "model": loaded.name, "task": spec["task"],
                                            "scoring": _scoring_settings(loaded), "elapsed": job.elapsed})


def _stderr(values: pd.Series) -> float:
    """The harness's ``mean_stderr``: sample standard deviation over sqrt(n)."""
    n = len(values)
    return float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan


def _task_frames(tasks: Any) -> list[tuple[Task, pd.DataFrame]]:
    if tasks is None:
        tasks = list(_all_tasks())
    if isinstance(tasks, (str, Task)):
        tasks = [tasks]
    if isinstance(tasks, Mapping):
        pairs = list(tasks.items())
    else:
        pairs = [(t, None) for t in tasks]
    frames = []
    for name, data in pairs:
        task = get_task(name)
        if data is None:
            data = load_sample(task)
        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(list(data))
        frames.append((task, frame))
    if not frames:
        raise BatchInputError("No tasks given; pass task names like ['arc_easy', 'piqa'] or {name: DataFrame}.")
    return frames


def _all_tasks() -> list[str]:
    from .tasks import task_names

    return task_names()


def evaluate(tasks: Any = None, *, model: PathLike | None = None, manager: ModelManager | None = None,
             limit: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Accuracy of one model on several tasks, one row per task.

    ``tasks``: task names (their bundled sample items), ``{name: DataFrame in the task's Hugging Face
    schema}``, or None for all seven Table 1 tasks. Columns: ``title``, ``items``, ``acc``,
    ``acc_stderr``, ``acc_norm``, ``acc_norm_stderr`` (NaN where the harness does not report it),
    ``table1_metric`` (the one the GPT4All paper's Table 1 reports), ``failed``. ``limit`` keeps the
    first rows of each task. After Ctrl-C the tasks finished so far come back, the one cut short with
    the items it finished, and ``.attrs["interrupted"]`` / ``.attrs["cut"]`` say so.
    """
    return _evaluate(tasks, model=model, manager=manager, limit=limit, progress=progress, note=True)


def _evaluate(tasks: Any, *, model: PathLike | None, manager: ModelManager | None, limit: int | None,
              progress: bool, note: bool) -> pd.DataFrame:
    manager = manager or get_manager()
    rows = []
    cut: dict[str, Any] | None = None
    for task, frame in _task_frames(tasks):
        if limit is not None:
            frame = frame.head(limit)
        try:
            result = choose(frame, task=task, model=model, manager=manager, progress=progress)
        except KeyboardInterrupt:  # before any row ran (loading the model, reading the rows)
            cut = {"task": task.title, "items": 0, "of": len(frame)}
            break
        ok = result[result["status"] == "ok"]
        acc, acc_norm = ok["acc"].astype(float), ok["acc_norm"].astype(float)
        has_norm = "acc_norm" in task.metrics
        rows.append({"task": task.name, "title": task.title, "items": len(ok),
                     "acc": float(acc.mean()) if len(ok) else math.nan, "acc_stderr": _stderr(acc),
                     "acc_norm": float(acc_norm.mean()) if has_norm and len(ok) else math.nan,
                     "acc_norm_stderr": _stderr(acc_norm) if has_norm else math.nan,
                     "table1_metric": task.table1_metric, "failed": int(len(result) - len(ok))})
        if result.attrs.get("interrupted"):
            cut = {"task": task.title, "items": len(ok), "of": len(result)}
            break
    out = pd.DataFrame(rows, columns=_EVALUATE_COLUMNS).set_index("task")
    out.attrs.update({"kind": "evaluate", "model": _loaded(manager, model).name, "interrupted": cut is not None,
                      "cut": cut})
    if cut is not None and note:
        print(f"note: evaluate was interrupted during {cut['task']} ({cut['items']} of {cut['of']} items "
              "finished); the table holds the tasks finished so far.", file=sys.stderr)
    return out


_EVALUATE_COLUMNS = ("task", "title", "items", "acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "table1_metric",
                     "failed")
METRICS = ("table1", "acc", "acc_norm")


def _metric(task: Task, metric: str) -> str:
    """The metric a compare table shows for ``task``: Table 1's choice, or the one asked for where the
    harness reports it (BoolQ and WinoGrande have only acc)."""
    if metric == "table1":
        return task.table1_metric
    return metric if metric in task.metrics else "acc"


def compare(models: Sequence[PathLike], tasks: Any = None, *, metric: str = "table1",
            manager: ModelManager | None = None, limit: int | None = None, progress: bool = True,
            plot: bool = False) -> pd.DataFrame:
    """Table 1 of the GPT4All paper for local models: one row per model, one column per task, plus the
    average, in percent.

    ``metric="table1"`` (the default) reports what the paper's Table 1 does: acc for BoolQ and
    WinoGrande, acc_norm for PIQA, HellaSwag, ARC-e, ARC-c and OBQA; ``"acc"`` or ``"acc_norm"`` use
    one metric everywhere (BoolQ and WinoGrande, which have no acc_norm, show acc). ``.attrs["metrics"]``
    names the metric of each column. The model loaded before is loaded again afterwards. Ctrl-C stops
    (no further model runs); the rows finished so far come back with ``.attrs["interrupted"]`` True,
    ``.attrs["cut"]`` naming the model and task cut short, and a note on stderr.
    """
    if metric not in METRICS:
        raise BatchInputError(f"metric must be 'acc' or 'acc_norm' for one metric on every task, or 'table1' for "
                              f"the paper's choice per task (acc_norm where the harness reports it); got {metric!r}.")
    if isinstance(models, (str, os.PathLike)) or not isinstance(models, Sequence) or not models:
        raise BatchInputError("models must be a list of model names or .gguf paths, e.g. "
                              "['smollm2-135m-instruct', 'qwen2.5-0.5b-instruct'].")
    manager = manager or get_manager()
    frames = _task_frames(tasks)
    table: dict[str, dict[str, float]] = {}
    labels = _labels(models, manager)
    cut: dict[str, Any] | None = None
    with each_model(manager, models) as names:
        for label, name in zip(labels, names):
            try:
                summary = _evaluate({t.name: f for t, f in frames}, model=name, manager=manager, limit=limit,
                                    progress=progress, note=False)
            except KeyboardInterrupt:  # loading the model, between tasks
                cut = {"model": label, "task": None, "items": 0, "of": 0}
                break
            row = {}
            for t, _ in frames:
                s = summary.loc[t.name] if t.name in summary.index else None
                value = math.nan if s is None else s[_metric(t, metric)]
                row[t.title] = math.nan if math.isnan(value) else round(100.0 * float(value), 1)
            values = [v for v in row.values() if not math.isnan(v)]
            row["Average"] = round(sum(values) / len(values), 1) if values else math.nan
            if summary.attrs["interrupted"]:
                cut = {"model": label, **summary.attrs["cut"]}
                row["Average"] = math.nan  # over some tasks only: not comparable with the other rows
            table[label] = row
            if cut is not None:
                break
    out = pd.DataFrame.from_dict(table, orient="index")
    out.index.name = "model"
    out.attrs.update({"kind": "compare", "metric": metric, "metrics": {t.title: _metric(t, metric) for t, _ in frames},
                      "items": {t.title: len(f) if limit is None else min(limit, len(f)) for t, f in frames},
                      "interrupted": cut is not None, "cut": cut})
    if cut is not None:
        rest = labels[labels.index(cut["model"]) + 1:]
        where = f" during {cut['task']} ({cut['items']} of {cut['of']} items finished)" if cut["task"] else ""
        partial = (f" ({cut['model']}'s row is partial, its Average left empty)" if cut["model"] in table
                   else "")
        print(f"note: compare was interrupted on {cut['model']}{where}; the table holds what finished{partial}"
              + (f"; not run: {', '.join(rest)}" if rest else "") + ". Run compare again for complete numbers.",
              file=sys.stderr)
    if plot and len(out):
        plot_comparison(out)
    return out


def _labels(models: Sequence[PathLike | None], manager: ModelManager) -> list[str]:
    """Row labels: the name given (a file name for paths; None is the loaded model), made unique."""
    labels: list[str] = []
    for m in models:
        if m is None:
            base = manager.current.name if manager.current else manager.resolve(None).name
        else:
            base = os.path.basename(str(m)) if str(m).endswith(".gguf") else str(m)
        label, k = base, 2
        while label in labels:
            label, k = f"{base} #{k}", k + 1
        labels.append(label)
    return labels


def plot_comparison(table: pd.DataFrame, ax: Any = None, *, title: str | None = None) -> Any:
    """A grouped bar chart of a :func:`compare` table (tasks on the x axis, one bar per model)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise BatchInputError("Plotting needs matplotlib: `pip install matplotlib`.") from None
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * len(table.columns) + 2, 3.6))
    n = max(1, len(table.index))
    width = 0.8 / n
    xs = range(len(table.columns))
    for k, (model, row) in enumerate(table.iterrows()):
        ax.bar([x - 0.4 + width * (k + 0.5) for x in xs], row.values, width, label=str(model))
    metric = table.attrs.get("metric", "acc")
    per_task = table.attrs.get("metrics", {})
    # Each column whose metric is not the one on the y axis names its own (every column under table1).
    ticks = [f"{c}\n{per_task[c]}" if c in per_task and (metric == "table1" or per_task[c] != metric) else str(c)
             for c in table.columns]
    ax.set_xticks(list(xs))
    ax.set_xticklabels(ticks, rotation=0)
    what = "accuracy" if metric == "table1" else metric
    ax.set_ylabel(f"{what} (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title or (f"Zero-shot {what} per task" + (" (Table 1 metrics)" if metric == "table1" else "")))
    ax.legend(loc="upper right", fontsize="small")
    return ax
