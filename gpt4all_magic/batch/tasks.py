"""The zero-shot multiple-choice tasks of the GPT4All paper's Table 1, as lm-evaluation-harness formats them.

Each task turns a row of its Hugging Face dataset (boolq, piqa, hellaswag, winogrande, ai2_arc,
openbookqa) into an :class:`Item`: one (context, continuation) log-likelihood request per choice, the
texts whose lengths normalise ``acc_norm``, and the gold index. The prompt texts follow the harness's
task definitions (``lm_eval/tasks/*``), so accuracies are comparable with numbers it reports. Small
item sets in each dataset's schema ship in ``gpt4all_magic/batch/data`` for tests and examples; they are
written for this package, not taken from the datasets.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable, Mapping, Sequence

from ..errors import BatchInputError

__all__ = ["TASKS", "Item", "Task", "generic_item", "get_task", "load_sample", "task_names"]

DELIMITER = " "  # lm-evaluation-harness's target_delimiter


@dataclass(frozen=True)
class Item:
    """One multiple-choice question as log-likelihood requests."""

    contexts: tuple[str, ...]  # one per choice (the same text except for partial evaluation)
    continuations: tuple[str, ...]  # one per choice
    choices: tuple[str, ...]  # the harness's doc_to_choice: their lengths normalise acc_norm
    gold: int | None

    def __post_init__(self) -> None:
        if not (len(self.contexts) == len(self.continuations) == len(self.choices)):
            raise ValueError("contexts, continuations and choices must have the same length")


@dataclass(frozen=True)
class Task:
    """A zero-shot task: how to read one dataset row, and which metrics the harness reports for it."""

    name: str
    title: str  # column title in the Table 1 layout
    dataset: str  # the Hugging Face dataset (and config) the adapter reads
    fields: tuple[str, ...]  # columns a row must have
    metrics: tuple[str, ...]
    adapt: Callable[[Mapping[str, Any]], Item]
    split: str = "validation"  # the split lm-evaluation-harness evaluates
    hub: tuple[tuple[str, str | None], ...] = ()  # (path, config) on the Hub: the harness's first, then aliases
    gold: tuple[str, ...] = ()  # the label column (any one of these); without it no item has a gold answer

    @property
    def table1_metric(self) -> str:
        """The metric the GPT4All paper's Table 1 reports: acc_norm where the harness has it, else acc."""
        return "acc_norm" if "acc_norm" in self.metrics else "acc"

    def item(self, row: Mapping[str, Any], label: Any = None) -> Item:
        """The row as an :class:`Item`; a malformed row raises BatchInputError naming ``label``."""
        where = f"Row {label!r}" if label is not None else f"A {self.name} row"
        missing = [f for f in self.fields if f not in row]
        if missing:
            raise BatchInputError(
                f"{where} needs the columns {', '.join(self.fields)} ({self.dataset} schema); "
                f"missing: {', '.join(missing)}.")
        try:
            return self.adapt(row)
        except (KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
            raise BatchInputError(f"{where} does not follow the {self.dataset} schema: {_reason(exc)}; "
                                  f"check the columns {', '.join(self.fields)}.") from None


def _reason(exc: Exception) -> str:
    # str(KeyError('x')) is "'x'": say which key is missing.
    return f"no {exc}" if isinstance(exc, KeyError) else str(exc)


def _list(value: Any) -> list[Any]:
    """A list from a list, tuple or numpy array (HF rows in pandas hold arrays)."""
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return list(value)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be text, got {type(value).__name__}")
    return value


def _missing(value: Any) -> bool:
    """None, NaN, pandas.NA or blank text: an unlabelled (test-split) row."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and math.isnan(value)


def _gold(value: Any, n: int, column: str = "gold", *, first: int = 0) -> int | None:
    """The index (0-based) of the right choice from an int, a whole float, a numeric string or a bool,
    counted from ``first``; None for unlabelled rows (missing, or piqa's -1)."""
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()  # numpy scalars
    if _missing(value):
        return None
    what = f"{column} {value!r}"
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"{what} is not a choice index; give the index of the right choice "
                             f"({first}-{first + n - 1}), or leave it empty for an unlabelled row") from None
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{what} is not a whole number; give the index of the right choice "
                             f"({first}-{first + n - 1}), or leave it empty for an unlabelled row")
        value = int(value)
    if not isinstance(value, int):  # bool is an int
        raise TypeError(f"{what} is a {type(value).__name__}, not the index of the right choice "
                        f"({first}-{first + n - 1})")
    if value == -1 and first == 0:  # piqa's and super_glue's unlabelled test rows
        return None
    if not first <= value < first + n:
        raise ValueError(f"{what} is not one of the {n} choices ({first}-{first + n - 1})")
    return int(value) - first


def _key(row: Mapping[str, Any], labels: Sequence[str], strip: bool = False) -> int | None:
    """The index of ``answerKey`` among the choice labels; None when it is missing."""
    key = row.get("answerKey")
    if hasattr(key, "item") and not isinstance(key, str):
        key = key.item()
    if _missing(key):
        return None
    text = str(key).strip() if strip else str(key)
    if text not in labels:
        raise ValueError(f"answerKey {key!r} is not one of the choice labels {', '.join(labels)}")
    return labels.index(text)


def _same_context(context: str, choices: Sequence[str], gold: int | None) -> Item:
    choices = tuple(_text(c, "each choice") for c in choices)
    return Item((context,) * len(choices), tuple(DELIMITER + c for c in choices), choices, gold)


def _boolq(row: Mapping[str, Any]) -> Item:
    # super_glue: label 0/1 (-1 in the test split); google/boolq: answer true/false; neither: unlabelled.
    column = "label" if "label" in row else "answer"
    context = f"{_text(row['passage'], 'passage')}\nQuestion: {_text(row['question'], 'question')}?\nAnswer:"
    return _same_context(context, ["no", "yes"], _gold(row.get(column), 2, column))


def _piqa(row: Mapping[str, Any]) -> Item:
    return _same_context(f"Question: {_text(row['goal'], 'goal')}\nAnswer:", [row["sol1"], row["sol2"]],
                         _gold(row.get("label"), 2, "label"))


def _hellaswag_clean(text: str) -> str:
    text = text.strip()
    text = text.replace(" [title]", ". ")  # WikiHow artifacts
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def _hellaswag(row: Mapping[str, Any]) -> Item:
    # str.capitalize() also lower-cases the rest, exactly as the harness does.
    ctx = _text(row["ctx_a"], "ctx_a") + " " + _text(row["ctx_b"], "ctx_b").capitalize()
    query = _hellaswag_clean(_text(row["activity_label"], "activity_label") + ": " + ctx)
    endings = [_hellaswag_clean(_text(e, "each ending")) for e in _list(row["endings"])]
    return _same_context(query, endings, _gold(row.get("label"), len(endings), "label"))


def _winogrande(row: Mapping[str, Any]) -> Item:
    # Partial evaluation: each option fills the blank in the context; the rest of the sentence is the
    # shared continuation, and acc_norm's lengths are those of the contexts (the harness's doc_to_choice).
    sentence = _text(row["sentence"], "sentence")
    blank = sentence.index("_")
    contexts = tuple(sentence[:blank] + _text(o, "option") for o in (row["option1"], row["option2"]))
    rest = sentence[blank + 1:].strip()
    return Item(contexts, (DELIMITER + rest,) * 2, contexts, _gold(row.get("answer"), 2, "answer", first=1))


def _arc(row: Mapping[str, Any]) -> Item:
    choices = row["choices"]
    labels, texts = [str(x) for x in _list(choices["label"])], _list(choices["text"])
    return _same_context(f"Question: {_text(row['question'], 'question')}\nAnswer:", texts, _key(row, labels))


def _openbookqa(row: Mapping[str, Any]) -> Item:
    choices = row["choices"]
    labels, texts = [str(x) for x in _list(choices["label"])], _list(choices["text"])
    return _same_context(_text(row["question_stem"], "question_stem"), texts, _key(row, labels, strip=True))


TASKS: dict[str, Task] = {t.name: t for t in (
    # Splits and Hub ids as lm-evaluation-harness 0.4 reads them (lm_eval/tasks/*/*.yaml): the test split
    # where the task has a labelled one, else validation. The older ids hold the same data.
    Task("boolq", "BoolQ", "super_glue/boolq (or google/boolq)", ("passage", "question"), ("acc",), _boolq,
         hub=(("aps/super_glue", "boolq"), ("super_glue", "boolq"), ("google/boolq", None)),
         gold=("label", "answer")),
    Task("piqa", "PIQA", "piqa", ("goal", "sol1", "sol2"), ("acc", "acc_norm"), _piqa,
         hub=(("baber/piqa", None), ("ybisk/piqa", None), ("piqa", None)), gold=("label",)),
    Task("hellaswag", "HellaSwag", "hellaswag", ("activity_label", "ctx_a", "ctx_b", "endings"),
         ("acc", "acc_norm"), _hellaswag, hub=(("Rowan/hellaswag", None), ("hellaswag", None)), gold=("label",)),
    Task("winogrande", "WinoGrande", "winogrande/winogrande_xl", ("sentence", "option1", "option2"), ("acc",),
         _winogrande, hub=(("allenai/winogrande", "winogrande_xl"), ("winogrande", "winogrande_xl")),
         gold=("answer",)),
    Task("arc_easy", "ARC-e", "ai2_arc/ARC-Easy", ("question", "choices"), ("acc", "acc_norm"), _arc, split="test",
         hub=(("allenai/ai2_arc", "ARC-Easy"), ("ai2_arc", "ARC-Easy")), gold=("answerKey",)),
    Task("arc_challenge", "ARC-c", "ai2_arc/ARC-Challenge", ("question", "choices"), ("acc", "acc_norm"), _arc,
         split="test", hub=(("allenai/ai2_arc", "ARC-Challenge"), ("ai2_arc", "ARC-Challenge")),
         gold=("answerKey",)),
    Task("openbookqa", "OBQA", "openbookqa/main", ("question_stem", "choices"), ("acc", "acc_norm"), _openbookqa,
         split="test", hub=(("allenai/openbookqa", "main"), ("openbookqa", "main")), gold=("answerKey",)),
)}
_ALIASES = {"arc_e": "arc_easy", "arc-e": "arc_easy", "arc_c": "arc_challenge", "arc-c": "arc_challenge",
            "obqa": "openbookqa", "wino": "winogrande", "winogrande_xl": "winogrande"}


def task_names() -> list[str]:
    """The seven Table 1 tasks, in the paper's column order."""
    return list(TASKS)


def get_task(name: str | Task) -> Task:
    """A task by name (``"arc_easy"``, ``"ARC-e"``, ``"obqa"`` …); unknown names raise BatchInputError."""
    if isinstance(name, Task):
        return name
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    for task in TASKS.values():
        if key in (task.name, task.title.lower()):
            return task
    import difflib

    close = difflib.get_close_matches(key, list(TASKS) + list(_ALIASES), n=1)
    hint = f" Did you mean '{_ALIASES.get(close[0], close[0])}'?" if close else ""
    raise BatchInputError(f"Unknown task '{name}'.{hint} Tasks: {', '.join(TASKS)}.")


def generic_item(question: Any, choices: Any, gold: Any = None) -> Item:
    """An item from plain columns: the question text is the context, each choice follows one space."""
    if not isinstance(question, str):
        raise BatchInputError(f"question must be text, got {type(question).__name__}; convert the column "
                              "with .astype(str) or fill its missing values.")
    if isinstance(choices, str) or not hasattr(choices, "__iter__"):
        raise BatchInputError(f"choices must be a list of texts, got {type(choices).__name__}.")
    choices = list(choices)
    if len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
        raise BatchInputError(f"choices must be a list of at least two non-empty texts, got {choices!r}.")
    try:
        g = _gold(gold, len(choices))
    except (TypeError, ValueError):
        raise BatchInputError(f"gold must be the index of the right choice (0-{len(choices) - 1}) or empty, "
                              f"got {gold!r}.") from None
    return _same_context(question, choices, g)


def load_sample(task: str | Task) -> list[dict[str, Any]]:
    """The small item set shipped for ``task``, as rows in its Hugging Face schema."""
    task = get_task(task)
    text = resources.files("gpt4all_magic.batch.data").joinpath(f"{task.name}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]
