"""Accuracy over tasks and models: :func:`evaluate` summarizes tasks for one model, :func:`compare` lays
several models out as Table 1 of the GPT4All paper (acc for BoolQ and WinoGrande, acc_norm for the
others, as the paper reports them), and :func:`plot_comparison` draws it."""

from __future__ import annotations

import math
import os
import sys
from typing import Any, Mapping, Sequence

import pandas as pd

from ..errors import BatchInputError
from ..manager import ModelManager, get_manager
from ._job import PathLike, each_model
from .choose import choose
from .tasks import Task, get_task, load_sample, task_names

__all__ = ["METRICS", "compare", "evaluate", "plot_comparison"]


def _stderr(values: pd.Series) -> float:
    """The harness's ``mean_stderr``: sample standard deviation over sqrt(n)."""
    n = len(values)
    return float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan


def _task_frames(tasks: Any) -> list[tuple[Task, pd.DataFrame]]:
    if tasks is None:
        tasks = task_names()
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
    out.attrs.update({"kind": "evaluate", "model": manager.ensure_loaded(model).name, "interrupted": cut is not None,
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
