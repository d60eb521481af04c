"""Where a task's items come from: the bundled samples, the full split through the ``datasets`` library
(the Hugging Face cache; offline once cached), or a folder of datasets saved with ``save_to_disk``.

:func:`load_task_rows` returns a task's rows in its Hugging Face schema as a DataFrame, checked against
the adapter (a missing field, a split that does not exist, a split without labels: one line each).
The split is the one lm-evaluation-harness evaluates (:attr:`.tasks.Task.split`) unless given.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..errors import TaskDataError
from .tasks import Task, get_task, load_sample

__all__ = ["SOURCES", "datasets_available", "default_source", "fetch_command", "load_task_rows", "resolve_source"]

SOURCES = ("auto", "hub", "sample")  # or a folder of saved datasets
INSTALL = "pip install 'gpt4all-magic[eval]'"


def datasets_available() -> bool:
    """True when the ``datasets`` library can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("datasets") is not None


def default_source() -> str:
    """``hub`` (the full splits) where ``datasets`` is installed, else ``sample``."""
    return "hub" if datasets_available() else "sample"


def resolve_source(source: Any, *, note: bool = True) -> str | Path:
    """``"sample"``, ``"hub"`` or a folder path; ``"auto"``/None picks :func:`default_source` and says
    so when that means the samples."""
    if source is None or source == "auto":
        chosen = default_source()
        if chosen == "sample" and note:
            print(f"note: the `datasets` library is not installed, so this runs on the 8 bundled sample items per "
                  f"task (not comparable with published numbers); `{INSTALL}` for the full splits.",
                  file=sys.stderr)
        return chosen
    if isinstance(source, os.PathLike) or (isinstance(source, str) and source not in SOURCES):
        path = Path(source).expanduser()
        if not path.is_dir():
            raise TaskDataError(f"source={str(source)!r} is not a folder of saved datasets; pass 'hub' (the "
                                "Hugging Face cache), 'sample' (the bundled items) or a folder written with "
                                "Dataset.save_to_disk.")
        return path
    return str(source)


def fetch_command(task: Task, split: str) -> str:
    """The command that puts ``task``'s split into the Hugging Face cache (run once with network access)."""
    path, config = task.hub[0]
    args = f"{path!r}" + (f", {config!r}" if config else "")
    return f"python -c \"import datasets; datasets.load_dataset({args}, split={split!r})\""


def load_task_rows(task: str | Task, *, split: str | None = None, source: Any = "auto",
                   limit: int | None = None) -> Any:
    """The rows of ``task``'s ``split`` (default: the harness's) from ``source``, as a DataFrame in the
    task's Hugging Face schema; ``limit`` keeps the first rows."""
    import pandas as pd

    task = get_task(task)
    where = resolve_source(source)
    if where == "sample":
        if split not in (None, task.split, "sample"):
            raise TaskDataError(f"The bundled {task.name} sample has no split {split!r}; leave split unset, or "
                                "use source='hub' for the dataset's splits.")
        frame = pd.DataFrame(load_sample(task))
        frame.attrs["source"] = {"kind": "sample", "split": "sample", "rows": len(frame)}
        return frame.head(limit) if limit is not None else frame
    if where != "hub" and not isinstance(where, Path):
        raise TaskDataError(f"Unknown source {where!r}; use 'hub' (the full splits through `datasets`), "
                            "'sample' (the bundled items) or a folder of saved datasets.")
    split = split or task.split
    dataset, origin = (_from_folder(task, split, where) if isinstance(where, Path) else _from_hub(task, split))
    _check_schema(task, dataset.column_names, origin)
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    frame = dataset.to_pandas()
    _check_labelled(task, frame, split, origin)
    frame.attrs["source"] = {"kind": "hub" if where == "hub" else "folder", "dataset": origin, "split": split,
                             "rows": len(frame)}
    return frame


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise TaskDataError(f"Full task splits need the `datasets` library: `{INSTALL}` (or pass "
                            "source='sample' for the bundled items).") from None
    datasets.disable_progress_bars()
    return datasets


def _from_hub(task: Task, split: str) -> tuple[Any, str]:
    """The split from the Hugging Face cache (or the Hub when online), trying the harness's id first."""
    datasets = _import_datasets()
    unreachable = None
    for path, config in task.hub:
        origin = path + (f" {config}" if config else "")
        try:
            return datasets.load_dataset(path, config, split=split), origin
        except ValueError as exc:
            if "split" in str(exc).lower():
                raise TaskDataError(f"{task.name} ({origin}) has no split {split!r}: {_first_line(exc)}; the "
                                    f"harness evaluates {task.split!r}.") from None
            raise TaskDataError(f"Could not read {origin} for {task.name}: {_first_line(exc)}.") from None
        except (ConnectionError, OSError, RuntimeError) as exc:
            # Not cached and the Hub cannot be reached (or the id is gone): try the next id of the same data.
            unreachable = unreachable or exc
            continue
    raise TaskDataError(f"{task.name}'s {split} split is not in the Hugging Face cache and the Hub cannot be "
                        f"reached ({_first_line(unreachable)}); run `{fetch_command(task, split)}` once with "
                        "network access, or pass source='sample' for the bundled items.")


def _from_folder(task: Task, split: str, root: Path) -> tuple[Any, str]:
    """The split from a folder of saved datasets: ``root/<task>/<split>``, ``root/<task>`` (a saved
    DatasetDict), or ``root/<hub path>/<config or none>/<split>`` (the layout OLMo's data uses)."""
    datasets = _import_datasets()
    candidates = [root / task.name / split, root / task.name]
    candidates += [root / path / (config or "none") / split for path, config in task.hub]
    candidates += [root / path.split("/")[-1] / (config or "none") / split for path, config in task.hub]
    for place in candidates:
        if not (place / "dataset_info.json").is_file() and not (place / "dataset_dict.json").is_file():
            continue
        loaded = datasets.load_from_disk(str(place))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise TaskDataError(f"{place} has no split {split!r} for {task.name} (it has "
                                    f"{', '.join(loaded)}); pass split= one of them.")
            loaded = loaded[split]
        return loaded, str(place)
    others = sorted(p.name for p in (root / task.name).iterdir()) if (root / task.name).is_dir() else []
    has = f" ({root / task.name} has {', '.join(others)})" if others else ""
    raise TaskDataError(f"No saved {split} split of {task.name} in {root}{has}; save it there with "
                        f"dataset.save_to_disk('{root / task.name / split}'), or pass split=.")


def _check_schema(task: Task, columns: list[str], origin: str) -> None:
    missing = [f for f in task.fields if f not in columns]
    if task.gold and not any(g in columns for g in task.gold):
        missing.append(" or ".join(task.gold))
    if missing:
        raise TaskDataError(f"{origin} does not follow the {task.dataset} schema that the {task.name} adapter "
                            f"reads: no field {', '.join(repr(m) for m in missing)} (it has {', '.join(columns)}); "
                            "point source= at that dataset.")


def _check_labelled(task: Task, frame: Any, split: str, origin: str) -> None:
    if not len(frame):
        raise TaskDataError(f"The {split} split of {task.name} ({origin}) is empty; use the harness's "
                            f"{task.split!r} split.")
    first = frame.head(50)
    items = [task.item(row, label) for label, row in zip(first.index, first.to_dict("records"))]
    if all(item.gold is None for item in items):
        raise TaskDataError(f"The {split} split of {task.name} ({origin}) has no labels (its answers are "
                            f"hidden), so accuracy cannot be measured; use split={task.split!r}.")


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "unknown error").strip().splitlines()
    return text[0] if text else type(exc).__name__
