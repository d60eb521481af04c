"""Accuracy over tasks and models: :func:`evaluate` summarizes tasks for one model, :func:`compare` lays
several models out as Table 1 of the GPT4All paper (acc for BoolQ and WinoGrande, acc_norm for the
others, as the paper reports them) with the paper's rows under them on request and a paired test
between every two models, and :func:`plot_comparison` (in :mod:`.plot`) draws it.

Items come from each task's full split (the split lm-evaluation-harness evaluates) through the
``datasets`` library, from a folder of saved datasets, or from the bundled samples (:mod:`.sources`).
"""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from ..errors import BatchInputError
from ..manager import ModelManager, get_manager
from ._job import PathLike, each_model
from .choose import choose
from .plot import plot_comparison
from .reference import describe, reference_rows
from .significance import ALPHA, paired_tests
from .sources import load_task_rows, resolve_source
from .tasks import Task, get_task, task_names

__all__ = ["METRICS", "compare", "evaluate", "plot_comparison", "significance"]


def _stderr(values: pd.Series) -> float:
    """The harness's ``mean_stderr``: sample standard deviation over sqrt(n)."""
    n = len(values)
    return float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan


def _task_frames(tasks: Any, *, split: str | None = None, source: Any = "auto",
                 limit: int | None = None) -> list[tuple[Task, pd.DataFrame]]:
    """Each task with its rows: a given DataFrame, or its split read from ``source``."""
    if tasks is None:
        tasks = task_names()
    if isinstance(tasks, (str, Task)):
        tasks = [tasks]
    pairs = list(tasks.items()) if isinstance(tasks, Mapping) else [(t, None) for t in tasks]
    if not pairs:
        raise BatchInputError("No tasks given; pass task names like ['arc_easy', 'piqa'] or {name: DataFrame}.")
    resolved = [(get_task(name), data) for name, data in pairs]  # unknown names fail before any loading
    where = resolve_source(source) if any(data is None for _, data in resolved) else None
    frames = []
    for task, data in resolved:
        if data is None:
            frame = load_task_rows(task, split=split, source=where, limit=limit)
        else:
            frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(list(data))
            frame = frame.head(limit) if limit is not None else frame
        frames.append((task, frame))
    return frames


def _checkpoint(folder: PathLike | None, task: Task, model: str | None = None) -> Path | None:
    """One checkpoint file per task (and model) inside the ``checkpoint`` folder."""
    if folder is None:
        return None
    base = Path(folder).expanduser()
    if model is not None:
        base = base / re.sub(r"[^\w.-]+", "_", model)
    return base / f"{task.name}.jsonl"


def evaluate(tasks: Any = None, *, split: str | None = None, source: Any = "auto", limit: int | None = None,
             model: PathLike | None = None, manager: ModelManager | None = None, checkpoint: PathLike | None = None,
             progress: bool = True) -> pd.DataFrame:
    """Accuracy of one model on several tasks, one row per task.

    ``tasks``: task names, ``{name: DataFrame in the task's Hugging Face schema}``, or None for all seven
    Table 1 tasks. A name's items come from ``source``: ``"hub"`` (the full split through the
    ``datasets`` library, from the Hugging Face cache; offline once cached), ``"sample"`` (8 bundled
    items per task), a folder of datasets saved with ``save_to_disk``, or ``"auto"`` (the default:
    ``"hub"`` where ``datasets`` is installed, else ``"sample"`` with a note). ``split`` overrides the
    harness's split (validation for BoolQ, PIQA, HellaSwag, WinoGrande; test for ARC-e, ARC-c, OBQA);
    ``limit`` keeps the first rows. ``checkpoint`` is a folder holding one checkpoint per task, so an
    interrupted run resumes where it stopped. Columns: ``title``, ``items``, ``acc``, ``acc_stderr``,
    ``acc_norm``, ``acc_norm_stderr`` (NaN where the harness does not report it), ``table1_metric``,
    ``failed``, ``items_per_s``. After Ctrl-C the tasks finished so far come back, the one cut short
    with the items it finished, and ``.attrs["interrupted"]`` / ``.attrs["cut"]`` say so.
    """
    frames = _task_frames(tasks, split=split, source=source, limit=limit)
    return _evaluate(frames, model=model, manager=manager, progress=progress, note=True, checkpoint=checkpoint)


def _evaluate(frames: list[tuple[Task, pd.DataFrame]], *, model: PathLike | None, manager: ModelManager | None,
              progress: bool, note: bool, checkpoint: PathLike | None, label: str | None = None) -> pd.DataFrame:
    manager = manager or get_manager()
    rows, per_item = [], {}
    cut: dict[str, Any] | None = None
    for task, frame in frames:
        try:
            result = choose(frame, task=task, model=model, manager=manager, progress=progress,
                            checkpoint=_checkpoint(checkpoint, task, label))
        except KeyboardInterrupt:  # before any row ran (loading the model, reading the rows)
            cut = {"task": task.title, "items": 0, "of": len(frame)}
            break
        ok = result["status"] == "ok"
        rows.append(_summary(task, result, ok))
        per_item[task.name] = {m: result[m].where(ok).astype(float).to_numpy() for m in ("acc", "acc_norm")}
        if result.attrs.get("interrupted"):
            cut = {"task": task.title, "items": int(ok.sum()), "of": len(result)}
            break
    out = pd.DataFrame(rows, columns=_EVALUATE_COLUMNS).set_index("task")
    sources = {t.name: f.attrs.get("source", {"kind": "dataframe", "rows": len(f)}) for t, f in frames}
    out.attrs.update({"kind": "evaluate", "model": manager.ensure_loaded(model).name, "interrupted": cut is not None,
                      "cut": cut, "per_item": per_item, "sources": sources})
    if cut is not None and note:
        print(f"note: evaluate was interrupted during {cut['task']} ({cut['items']} of {cut['of']} items "
              "finished); the table holds the tasks finished so far.", file=sys.stderr)
    return out


def _summary(task: Task, result: pd.DataFrame, ok: pd.Series) -> dict[str, Any]:
    done = result[ok]
    acc, acc_norm = done["acc"].astype(float), done["acc_norm"].astype(float)
    has_norm = "acc_norm" in task.metrics
    elapsed = result.attrs.get("elapsed") or 0.0
    ran = len(done) - result.attrs.get("resumed_rows", 0)
    return {"task": task.name, "title": task.title, "items": len(done),
            "acc": float(acc.mean()) if len(done) else math.nan, "acc_stderr": _stderr(acc),
            "acc_norm": float(acc_norm.mean()) if has_norm and len(done) else math.nan,
            "acc_norm_stderr": _stderr(acc_norm) if has_norm else math.nan,
            "table1_metric": task.table1_metric, "failed": int(len(result) - len(done)),
            "items_per_s": ran / elapsed if elapsed > 0 and ran > 0 else math.nan}


_EVALUATE_COLUMNS = ("task", "title", "items", "acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "table1_metric",
                     "failed", "items_per_s")
METRICS = ("table1", "acc", "acc_norm")


def _metric(task: Task, metric: str) -> str:
    """The metric a compare table shows for ``task``: Table 1's choice, or the one asked for where the
    harness reports it (BoolQ and WinoGrande have only acc)."""
    if metric == "table1":
        return task.table1_metric
    return metric if metric in task.metrics else "acc"


def _check_compare_args(models: Any, metric: str, reference: str | None) -> None:
    if metric not in METRICS:
        raise BatchInputError(f"metric must be 'acc' or 'acc_norm' for one metric on every task, or 'table1' for "
                              f"the paper's choice per task (acc_norm where the harness reports it); got {metric!r}.")
    if isinstance(models, (str, os.PathLike)) or not isinstance(models, Sequence) or not models:
        raise BatchInputError("models must be a list of model names or .gguf paths, e.g. "
                              "['smollm2-135m-instruct', 'qwen2.5-0.5b-instruct'].")
    if reference is not None:
        reference_rows(reference, [])  # an unknown name fails before any model runs


def compare(models: Sequence[PathLike], tasks: Any = None, *, split: str | None = None, source: Any = "auto",
            metric: str = "table1", reference: str | None = None, manager: ModelManager | None = None,
            limit: int | None = None, checkpoint: PathLike | None = None, progress: bool = True,
            plot: bool = False, alpha: float = ALPHA) -> pd.DataFrame:
    """Table 1 of the GPT4All paper for local models: one row per model, one column per task, plus the
    average, in percent.

    ``tasks``, ``split``, ``source`` and ``limit`` choose the items as in :func:`evaluate`; every model
    answers the same items. ``metric="table1"`` (the default) reports what the paper's Table 1 does:
    acc for BoolQ and WinoGrande, acc_norm for PIQA, HellaSwag, ARC-e, ARC-c and OBQA; ``"acc"`` or
    ``"acc_norm"`` use one metric everywhere (BoolQ and WinoGrande show acc). ``reference="gpt4all-paper"``
    adds the paper's rows under the local ones (``.attrs["reference"]`` names them and cites the paper).
    Between every two local models, ``.attrs["significance"]`` holds McNemar's exact test and a paired
    bootstrap 95% CI of the difference per task, and :func:`significance` the verdicts ("A > B
    (p=0.003)" or "no significant difference"). ``checkpoint``: a folder with one checkpoint per model
    and task, so a rerun resumes. The model loaded before is loaded again afterwards. Ctrl-C stops (no
    further model runs); the rows finished so far come back with ``.attrs["interrupted"]`` True,
    ``.attrs["cut"]`` naming the model and task cut short, and a note on stderr.
    """
    _check_compare_args(models, metric, reference)
    manager = manager or get_manager()
    frames = _task_frames(tasks, split=split, source=source, limit=limit)
    table: dict[str, dict[str, float]] = {}
    per_item: dict[str, dict[str, Any]] = {}
    labels = _labels(models, manager)
    cut: dict[str, Any] | None = None
    with each_model(manager, models) as names:
        for label, name in zip(labels, names):
            try:
                summary = _evaluate(frames, model=name, manager=manager, progress=progress, note=False,
                                    checkpoint=checkpoint, label=label if checkpoint is not None else None)
            except KeyboardInterrupt:  # loading the model, between tasks
                cut = {"model": label, "task": None, "items": 0, "of": 0}
                break
            table[label] = _table_row(frames, summary, metric)
            per_item[label] = {t.title: summary.attrs["per_item"][t.name][_metric(t, metric)]
                               for t, _ in frames if t.name in summary.attrs["per_item"]}
            if summary.attrs["interrupted"]:
                cut = {"model": label, **summary.attrs["cut"]}
                table[label]["Average"] = math.nan  # over some tasks only: not comparable with the other rows
                break
    out = pd.DataFrame.from_dict(table, orient="index")
    out.index.name = "model"
    first = frames[0][1].attrs.get("source", {}) if frames else {}
    out.attrs.update({"kind": "compare", "metric": metric, "metrics": {t.title: _metric(t, metric) for t, _ in frames},
                      "items": {t.title: len(f) for t, f in frames}, "source": first.get("kind", "dataframe"),
                      "splits": {t.title: f.attrs.get("source", {}).get("split") for t, f in frames},
                      "interrupted": cut is not None, "cut": cut, "per_item": per_item, "reference": None,
                      "significance": paired_tests(per_item, alpha=alpha)})
    if reference is not None:
        out = _with_reference(out, reference)
    if cut is not None:
        _note_cut(cut, labels, table)
    if plot and len(out):
        plot_comparison(out)
    return out


def _table_row(frames: list[tuple[Task, pd.DataFrame]], summary: pd.DataFrame, metric: str) -> dict[str, float]:
    row = {}
    for t, _ in frames:
        s = summary.loc[t.name] if t.name in summary.index else None
        value = math.nan if s is None else s[_metric(t, metric)]
        row[t.title] = math.nan if math.isnan(value) else round(100.0 * float(value), 1)
    values = [v for v in row.values() if not math.isnan(v)]
    row["Average"] = round(sum(values) / len(values), 1) if values else math.nan
    return row


def _with_reference(table: pd.DataFrame, reference: str) -> pd.DataFrame:
    """The table with the reference's rows appended (same columns), named in ``.attrs["reference"]``."""
    titles = [c for c in table.columns if c != "Average"] or list(table.attrs["metrics"])
    rows, _ = reference_rows(reference, titles)
    extra = pd.DataFrame.from_dict(rows, orient="index")[titles + ["Average"]]
    attrs = dict(table.attrs)
    out = pd.concat([table.reindex(columns=titles + ["Average"]), extra]) if len(table) else extra
    out.index.name = "model"
    out.attrs.update(attrs)
    out.attrs["reference"] = {**describe(reference), "rows": list(rows)}
    return out


def _note_cut(cut: dict[str, Any], labels: list[str], table: dict[str, Any]) -> None:
    rest = labels[labels.index(cut["model"]) + 1:]
    where = f" during {cut['task']} ({cut['items']} of {cut['of']} items finished)" if cut["task"] else ""
    partial = f" ({cut['model']}'s row is partial, its Average left empty)" if cut["model"] in table else ""
    print(f"note: compare was interrupted on {cut['model']}{where}; the table holds what finished{partial}"
          + (f"; not run: {', '.join(rest)}" if rest else "") + ". Run compare again for complete numbers.",
          file=sys.stderr)


def significance(table: pd.DataFrame) -> pd.DataFrame:
    """The verdict of the paired test per task (rows) and pair of local models (columns "A vs B") of a
    :func:`compare` table: ``"A > B (p=0.003)"`` or ``"no significant difference"``."""
    tests = table.attrs.get("significance")
    if tests is None:
        raise BatchInputError("significance() needs a table made by compare(); this one has no paired tests.")
    if not len(tests):
        return pd.DataFrame(index=pd.Index([], name="task"))
    tests = tests.assign(pair=tests["a"] + " vs " + tests["b"])
    wide = tests.pivot(index="task", columns="pair", values="verdict")
    order = [t for t in table.attrs.get("metrics", {}) if t in wide.index]
    wide = wide.reindex(order)
    wide.columns.name = None
    return wide


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
