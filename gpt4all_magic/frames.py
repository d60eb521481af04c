"""Checks on the DataFrames users hand to batch work, embeddings and maps: one line naming the fix for a
frame that is not one, a column that is missing (with a close match), or cells that are not text."""

from __future__ import annotations

import difflib
import math
from typing import Any, Iterable, Sequence

from .errors import BatchInputError

__all__ = ["check_columns", "check_frame", "text_cells"]


def check_frame(df: Any, what: str = "df") -> Any:
    """``df`` if it is a non-empty DataFrame, else a BatchInputError naming the fix."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise BatchInputError(f"{what} must be a pandas DataFrame, got {type(df).__name__}; "
                              "e.g. pd.DataFrame({'prompt': [...]}).")
    if len(df) == 0:
        raise BatchInputError(f"The DataFrame {what} is empty (0 rows); nothing to do.")
    return df


def check_columns(df: Any, names: Iterable[str], role: str = "column", *, lead: str | None = None) -> None:
    """Every name must be a column of ``df`` (with a did-you-mean for the first that is not); ``lead``
    (with ``{name}``) replaces the start of the message."""
    columns = [str(c) for c in df.columns]
    for name in names:
        if name not in df.columns:
            close = difflib.get_close_matches(str(name), columns, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            first = lead.format(name=name) if lead else f"No {role} '{name}' in the DataFrame."
            raise BatchInputError(f"{first}{hint} Columns: {_short(columns)}.")


def text_cells(df: Any, column: str, *, allow_numbers: bool = False) -> list[str]:
    """The column's cells as text; any other value (None, NaN, a list …) raises, naming the rows."""
    values = df[column].tolist()
    bad = []
    out = []
    for label, value in zip(df.index, values):
        if isinstance(value, str):
            out.append(value)
        elif allow_numbers and isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
            out.append(str(value))
        else:
            bad.append((label, value))
            out.append("")
    if bad:
        rows = ", ".join(repr(label) for label, _ in bad[:5]) + (" …" if len(bad) > 5 else "")
        kinds = sorted({_kind(v) for _, v in bad})
        raise BatchInputError(
            f"Column '{column}' has {len(bad)} cell(s) that are not text ({', '.join(kinds)}) in row(s) {rows}; "
            f"fill or convert them first, e.g. df['{column}'] = df['{column}'].fillna('').astype(str).")
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return type(value).__name__


def _short(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" … ({len(names)} in all)" if len(names) > limit else "")
