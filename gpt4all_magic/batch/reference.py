"""Published rows to show under local models in a :func:`.compare.compare` table.

``"gpt4all-paper"``: Table 1 of the GPT4All technical report (Anand et al., "GPT4All: An Ecosystem of
Open Source Compressed Language Models", NLP-OSS 2023, arXiv:2311.04931), shipped as
``batch/data/table1_gpt4all_paper.csv`` with its citation in the file's header.
"""

from __future__ import annotations

import csv
import difflib
from importlib import resources
from typing import Any

from ..errors import BatchInputError
from .tasks import get_task

__all__ = ["REFERENCES", "reference_rows"]

REFERENCES = {
    "gpt4all-paper": ("table1_gpt4all_paper.csv",
                      'Table 1 of the GPT4All technical report (Anand et al., "GPT4All: An Ecosystem of Open Source '
                      'Compressed Language Models", NLP-OSS 2023, arXiv:2311.04931)'),
}


def _read(file: str) -> list[dict[str, str]]:
    text = resources.files("gpt4all_magic.batch.data").joinpath(file).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(lines))


def reference_rows(name: str, titles: list[str]) -> tuple[dict[str, dict[str, float]], str]:
    """``({model: {title: value, …, "Average": value}}, citation)`` for the task columns ``titles``.

    With all seven tasks the average is the paper's own; with fewer it is the mean over those shown
    (the paper's would not be comparable with the local rows').
    """
    key = str(name).strip().lower()
    if key not in REFERENCES:
        close = difflib.get_close_matches(key, list(REFERENCES), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise BatchInputError(f"Unknown reference {name!r}.{hint} Available: {', '.join(REFERENCES)} (or None for "
                              "local models only).")
    file, citation = REFERENCES[key]
    rows: dict[str, dict[str, float]] = {}
    for record in _read(file):
        values: dict[str, float] = {}
        for column, text in record.items():
            if column in ("model", "average"):
                continue
            title = get_task(column).title
            if title in titles:
                values[title] = float(text)
        shown = [values[t] for t in titles if t in values]
        if len(shown) == 7:
            values["Average"] = float(record["average"])
        else:
            values["Average"] = round(sum(shown) / len(shown), 1) if shown else float("nan")
        rows[record["model"]] = values
    return rows, citation


def describe(name: str) -> dict[str, Any]:
    """What a reference is: its citation (for ``.attrs``)."""
    return {"name": name, "citation": REFERENCES[name][1]}
