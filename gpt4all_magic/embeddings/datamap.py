"""``g4.map``: the Atlas workflow in the notebook. Embed a text column, project it to 2-D, cluster it, and
show an interactive map (jupyter-scatter: WebGL, its JavaScript ships in the wheel, no CDN) where hovering
shows a row's text, points are coloured by a column (curation flags, labels, clusters), and a lasso or
box selection comes back to Python as :attr:`DataMap.selection`, a DataFrame of those rows."""

from __future__ import annotations

import os
from typing import Any

from ..errors import BatchInputError, MissingDependencyError
from ..manager import ModelManager
from .layout import clusters, project
from .vectors import vectors_of

__all__ = ["CLUSTER", "MIN_ROWS", "X", "Y", "DataMap", "data_map"]

X, Y, CLUSTER = "map_x", "map_y", "cluster"
MIN_ROWS = 3
UNSET = "(none)"  # how a missing colour value (e.g. curate's reason for a kept row) is labelled


def data_map(df: Any, column: str, color: Any = None, *, vectors: Any = None, method: str | None = None,
             tool: str = "box", height: int = 480, model: str | os.PathLike[str] | None = None,
             manager: ModelManager | None = None) -> DataMap:
    """Embed ``df[column]``, project it to 2-D (UMAP; PCA under 50 rows), cluster the map (HDBSCAN) and
    return a :class:`DataMap` that shows the interactive map.

    ``color``: a column name or a Series on ``df``'s index (e.g. ``curate(...).flags["reason"]``); default:
    the clusters. ``vectors``: use these instead of embedding (a matrix, or a column such as the
    ``embedding`` column of ``g4.embed(df, column)``). ``tool``: "box" or "lasso" for selecting.
    """
    if tool not in ("box", "lasso"):
        raise BatchInputError(f"tool must be 'box' or 'lasso', got {tool!r}.")
    if model is not None and vectors is None:
        from ..manager import get_manager

        (manager or get_manager()).load_embedder(model)
    matrix, _ = vectors_of(df, column, vectors, min_rows=MIN_ROWS, manager=manager, what="map")
    colors = _color_values(df, color)
    coords, used = project(matrix, method=method)
    frame = df.copy()
    frame[X], frame[Y] = coords[:, 0], coords[:, 1]
    frame[CLUSTER] = clusters(coords)
    frame.attrs["projection"] = used
    return DataMap(frame, column, colors, tool=tool, height=height)


def _color_values(df: Any, color: Any) -> tuple[str, Any] | None:
    """(title, values aligned with df's rows) for the colour encoding, or None for the clusters."""
    import pandas as pd

    if color is None:
        return None
    if isinstance(color, str):
        from ..frames import check_columns

        check_columns(df, [color], role="colour column")
        return color, df[color]
    if isinstance(color, pd.Series):
        if not color.index.equals(df.index):
            if not color.index.isin(df.index).all() or not df.index.isin(color.index).all():
                raise BatchInputError("color must be a column name or a Series with the DataFrame's index (e.g. "
                                      "curate(df).flags['reason']).")
            color = color.reindex(df.index)
        return str(color.name or "color"), color
    raise BatchInputError(f"color must be a column name or a pandas Series, got {type(color).__name__}.")


class DataMap:
    """The map of a DataFrame: ``frame`` (the rows plus ``map_x``, ``map_y`` and ``cluster``), ``selection``
    (the rows selected with the lasso or box, as a DataFrame) and the jupyter-scatter ``widget``."""

    def __init__(self, frame: Any, column: str, colors: tuple[str, Any] | None, *, tool: str = "box",
                 height: int = 480):
        self.frame = frame
        self.column = column
        self.color_title = colors[0] if colors else CLUSTER
        self._scatter = _scatter(frame, column, colors, tool=tool, height=height)

    @property
    def scatter(self) -> Any:
        """The underlying ``jscatter.Scatter`` (for its own API: zoom, filter, legend …)."""
        return self._scatter

    @property
    def widget(self) -> Any:
        """The anywidget the notebook shows; its ``selection`` trait holds the selected row positions."""
        return self._scatter.widget

    @property
    def positions(self) -> Any:
        """Row positions (0-based) of the selected points."""
        import numpy as np

        return np.asarray(self._scatter.selection(), dtype=np.int64)

    @property
    def selection(self) -> Any:
        """The selected rows of :attr:`frame` (empty when nothing is selected)."""
        return self.frame.iloc[self.positions]

    def select(self, labels: Any) -> DataMap:
        """Select rows by index label, as a lasso in the browser would (sets the widget's selection)."""
        import numpy as np

        positions = self.frame.index.get_indexer(list(labels))
        if (positions < 0).any():
            missing = [label for label, p in zip(labels, positions) if p < 0][:3]
            raise BatchInputError(f"No row(s) {missing} in the map's DataFrame; select index labels of map.frame.")
        self.widget.selection = np.asarray(sorted(positions), dtype=np.uint32)
        return self

    def clear(self) -> DataMap:
        """Select nothing."""
        import numpy as np

        self.widget.selection = np.zeros(0, dtype=np.uint32)
        return self

    def show(self) -> Any:
        """The widget with its toolbar (pan/zoom, lasso, full screen, reset)."""
        return self._scatter.show()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.show())

    def __repr__(self) -> str:
        return (f"DataMap: {len(self.frame)} rows of '{self.column}' ({self.frame.attrs.get('projection')}), "
                f"{self.frame[CLUSTER].max() + 1} clusters, coloured by {self.color_title}; "
                f"{len(self.positions)} selected")


def _scatter(frame: Any, column: str, colors: tuple[str, Any] | None, *, tool: str, height: int) -> Any:
    import pandas as pd

    try:
        import jscatter
    except ImportError:
        raise MissingDependencyError.for_extra("jupyter-scatter", "map", "The data map") from None
    title, values = colors if colors else (CLUSTER, frame[CLUSTER])
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values) or colors is None:
        values = pd.Categorical(["(none)" if _missing(v) else str(v) for v in values])
    # Only what the map shows travels to the browser: coordinates, the colour and the hover text.
    data = pd.DataFrame({"x": frame[X].to_numpy(), "y": frame[Y].to_numpy(), "color": values,
                         "text": frame[column].astype(str).to_numpy()})
    scatter = jscatter.Scatter(data=data, x="x", y="y", x_scale=_padded(data["x"]), y_scale=_padded(data["y"]),
                               size=6 if len(data) < 2000 else 3, color_by="color", height=height, legend=True,
                               tooltip=True, tooltip_properties=["color"], tooltip_preview="text",
                               tooltip_preview_type="text", tooltip_preview_text_lines=8,
                               lasso_type="rectangle" if tool == "box" else "freeform", axes=False)
    scatter.color(labeling={"variable": title})
    return scatter


def _padded(values: Any) -> tuple[float, float]:
    """The axis range with a 6% margin: points on the very edge of the canvas are hard to see and select."""
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * 0.06 or 1.0
    return lo - pad, hi + pad


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
