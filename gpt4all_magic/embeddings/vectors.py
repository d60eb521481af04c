"""``g4.embed``: texts in, one L2-normalised float32 vector per text out; a DataFrame in, the frame plus a
vector column out. The vectors come from the manager's embedding model (many texts per decode)."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..errors import BatchInputError
from ..frames import check_columns, check_frame, text_cells
from ..manager import ModelManager, get_manager
from ..results import Embedding

__all__ = ["NOTE_COLUMN", "VECTOR_COLUMN", "embed", "embed_column", "vectors_of"]

VECTOR_COLUMN = "embedding"
NOTE_COLUMN = "embedding_note"


def embed(data: Any, column: str | None = None, *, model: str | os.PathLike[str] | None = None,
          pooling: str | None = None, kind: str = "document", long: str = "truncate",
          manager: ModelManager | None = None) -> Any:
    """Embed a list of texts (a float32 matrix, one row each) or a DataFrame's text ``column`` (the frame
    plus an ``embedding`` column of vectors and an ``embedding_note`` column for texts cut to the context).

    ``model``: an embedding model (default: nomic-embed-text-v1.5 when downloaded, else the bundled model
    with mean pooling); ``kind``: "document" (texts to map or search) or "query" (questions), which picks
    the model's task prefix; ``long``: "truncate" to the context with a note, or "chunk" to average the
    pieces of a long text.
    """
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return embed_column(data, column, model=model, pooling=pooling, kind=kind, long=long, manager=manager)
    if column is not None:
        raise BatchInputError(f"column={column!r} is for a DataFrame, but embed got {type(data).__name__}; "
                              "pass embed(df, column) or embed(list_of_texts).")
    if isinstance(data, pd.Series):
        data = data.tolist()
    result = (manager or get_manager()).embed(data, model=model, pooling=pooling, kind=kind, long=long)
    _print_notes(result)
    return result.vectors


def embed_column(df: Any, column: str | None, *, model: str | os.PathLike[str] | None = None,
                 pooling: str | None = None, kind: str = "document", long: str = "truncate",
                 manager: ModelManager | None = None) -> Any:
    """The frame plus ``embedding`` (one float32 vector per row) and ``embedding_note`` (None, or why the
    row's text was cut or pieced together)."""
    check_frame(df)
    if column is None:
        raise BatchInputError("embed(df) needs the text column to embed: embed(df, 'prompt').")
    check_columns(df, [column])
    texts = text_cells(df, column)
    result = (manager or get_manager()).embed(texts, model=model, pooling=pooling, kind=kind, long=long)
    notes: list[str | None] = [None] * len(df)
    for position, note in zip(result.cut, result.notes):
        notes[position] = note.replace(f"text {position} ", f"row {df.index[position]!r} ", 1)
    import pandas as pd

    out = df.copy()
    out[VECTOR_COLUMN] = pd.Series(list(result.vectors), index=df.index, dtype=object)
    out[NOTE_COLUMN] = pd.Series(notes, index=df.index, dtype=object)
    out.attrs["embedding_model"] = result.model
    out.attrs["embedding_pooling"] = result.pooling
    return out


def vectors_of(df: Any, column: str | None, vectors: Any = None, *, min_rows: int = 1,
               manager: ModelManager | None = None, what: str = "map") -> tuple[Any, Embedding | None]:
    """The row vectors for ``df``: given (``vectors``: a matrix, or the name of a column of vectors such as
    ``embedding``), else embedded from the text ``column``. Returns (float32 matrix, the Embedding made
    here or None)."""
    import numpy as np

    check_frame(df)
    if len(df) < min_rows:
        raise BatchInputError(f"{what} needs at least {min_rows} rows, got {len(df)}; add rows, or look at so few "
                              "texts directly.")
    if vectors is None:
        if column is None:
            raise BatchInputError(f"{what} needs the text column to embed (e.g. 'prompt'), or vectors=.")
        check_columns(df, [column])
        texts = text_cells(df, column)
        result = (manager or get_manager()).embed(texts)
        _print_notes(result)
        return result.vectors, result
    if isinstance(vectors, str):
        check_columns(df, [vectors], role="vector column")
        vectors = list(df[vectors])
    try:
        matrix = np.asarray(np.stack([np.asarray(v, dtype=np.float32) for v in vectors]) if isinstance(vectors, list)
                            else vectors, dtype=np.float32)
    except (TypeError, ValueError):
        raise BatchInputError("vectors must be a matrix with one row per DataFrame row (or a column of equal-length "
                              "vectors, such as the 'embedding' column g4.embed adds).") from None
    if matrix.ndim != 2 or matrix.shape[0] != len(df):
        raise BatchInputError(f"vectors has shape {matrix.shape} but the DataFrame has {len(df)} rows; give one "
                              "vector per row.")
    if not np.isfinite(matrix).all():
        raise BatchInputError("vectors contain NaN or infinite values; embed the texts again.")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0), None


def _print_notes(result: Embedding) -> None:
    """One line on stderr for texts that were cut or pieced (the matrix itself cannot carry notes)."""
    if not result.notes:
        return
    shown = ", ".join(map(str, result.cut[:8])) + (" …" if len(result.cut) > 8 else "")
    first = result.notes[0]
    how = "averaged in pieces" if "averaged" in first else "cut to the model's context (long='chunk' averages all)"
    print(f"note: {len(result.cut)} text(s) longer than {result.model}'s context were {how}: position(s) {shown}.",
          file=sys.stderr, flush=True)
