"""The bar chart of a :func:`.compare.compare` table: local models in full colour, reference rows (the
paper's) muted, and a bracket marked "n.s." over two local models whose difference on a task is not
significant (McNemar's p >= 0.05 or a 95% bootstrap interval that holds 0)."""

from __future__ import annotations

from typing import Any

from ..errors import BatchInputError

__all__ = ["plot_comparison"]


def plot_comparison(table: Any, ax: Any = None, *, title: str | None = None) -> Any:
    """A grouped bar chart of a :func:`compare` table (tasks on the x axis, one bar per model)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise BatchInputError("Plotting needs matplotlib: `pip install matplotlib`.") from None
    reference = set((table.attrs.get("reference") or {}).get("rows", []))
    n = max(1, len(table.index))
    if ax is None:
        _, ax = plt.subplots(figsize=(max(1.1, 0.12 * n + 0.6) * len(table.columns) + 2, 3.6))
    width = 0.8 / n
    xs = list(range(len(table.columns)))
    local_colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    muted = plt.get_cmap("tab20")
    centers: dict[str, list[float]] = {}
    k_local = k_ref = 0
    for k, (model, row) in enumerate(table.iterrows()):
        where = [x - 0.4 + width * (k + 0.5) for x in xs]
        centers[str(model)] = where
        if model in reference:
            color, alpha, k_ref = muted(2 * (k_ref % 10) + 1), 0.55, k_ref + 1
        else:
            color, alpha, k_local = local_colors[k_local % len(local_colors)], 1.0, k_local + 1
        ax.bar(where, row.values, width, label=str(model), color=color, alpha=alpha)
    _mark_not_significant(ax, table, centers)
    metric = table.attrs.get("metric", "acc")
    per_task = table.attrs.get("metrics", {})
    # Each column whose metric is not the one on the y axis names its own (every column under table1).
    ticks = [f"{c}\n{per_task[c]}" if c in per_task and (metric == "table1" or per_task[c] != metric) else str(c)
             for c in table.columns]
    ax.set_xticks(xs)
    ax.set_xticklabels(ticks, rotation=0)
    what = "accuracy" if metric == "table1" else metric
    ax.set_ylabel(f"{what} (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title or (f"Zero-shot {what} per task" + (" (Table 1 metrics)" if metric == "table1" else "")))
    if reference:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="x-small",
                  title="muted: the GPT4All paper", title_fontsize="x-small")
    else:
        ax.legend(loc="upper right", fontsize="small")
    return ax


def _mark_not_significant(ax: Any, table: Any, centers: dict[str, list[float]]) -> None:
    """A bracket labelled "n.s." over each pair of local models whose difference on a task is not
    significant."""
    tests = table.attrs.get("significance")
    if tests is None or not len(tests):
        return
    columns = list(table.columns)
    stacked: dict[str, int] = {}
    for test in tests.itertuples():
        if test.significant or test.task not in columns or test.a not in centers or test.b not in centers:
            continue
        col = columns.index(test.task)
        x0, x1 = sorted((centers[test.a][col], centers[test.b][col]))
        top = max(float(table.loc[test.a, test.task]), float(table.loc[test.b, test.task]))
        level = stacked.get(test.task, 0)
        stacked[test.task] = level + 1
        y = min(top + 3 + 6 * level, 93)
        ax.plot([x0, x0, x1, x1], [y - 1.5, y, y, y - 1.5], color="0.3", linewidth=0.8)
        ax.text((x0 + x1) / 2, y + 0.5, "n.s.", ha="center", va="bottom", fontsize="x-small", color="0.3")
