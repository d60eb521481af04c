"""Paired significance of accuracy differences between two models on the same items.

- :func:`mcnemar_exact`: McNemar's exact test on per-item correctness. Only discordant items count:
  ``b`` items model A got right and B wrong, ``c`` the reverse; under "no difference" ``b`` is
  Binomial(b + c, 1/2), and the two-sided p-value is ``min(1, 2 * P(X <= min(b, c)))`` (the same as
  ``scipy.stats.binomtest(b, b + c).pvalue``), computed in exact integer arithmetic.
- :func:`paired_bootstrap`: a percentile bootstrap CI of the accuracy difference, resampling items with
  replacement. Only the per-item difference (-1, 0 or 1) matters, so each resample is drawn as the
  multinomial counts of those three values (the same distribution as resampling indices, without an
  n x B index matrix): ``numpy.random.default_rng(seed).multinomial(n, [p_-1, p_0, p_+1], size=B)``.
- :func:`paired_tests`: both for every pair of models and every task of a :func:`.compare.compare`
  table, with a verdict per task: ``"A > B (p=0.003)"`` or ``"no significant difference"``. A
  difference counts as significant when McNemar's p < 0.05 and the 95% interval leaves out 0.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from typing import Any, Mapping, Sequence

__all__ = ["ALPHA", "mcnemar_exact", "paired_bootstrap", "paired_tests", "significant", "verdict"]

ALPHA = 0.05
RESAMPLES = 10_000
SEED = 0


def _pairs(a: Sequence[float], b: Sequence[float]) -> list[tuple[int, int]]:
    """Per-item correctness of both models as 0/1, items where either has none (NaN) left out."""
    if len(a) != len(b):
        raise ValueError(f"paired tests need the same items for both models ({len(a)} vs {len(b)})")
    out = []
    for x, y in zip(a, b):
        if x is None or y is None or (isinstance(x, float) and math.isnan(x)) or (isinstance(y, float) and math.isnan(y)):
            continue
        out.append((int(bool(x)), int(bool(y))))
    return out


def mcnemar_exact(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """McNemar's exact test: ``{"n", "b", "c", "p_value"}`` (``b``: A right and B wrong; ``c``: the reverse)."""
    pairs = _pairs(a, b)
    only_a = sum(1 for x, y in pairs if x and not y)
    only_b = sum(1 for x, y in pairs if y and not x)
    n = only_a + only_b
    tail, term = 0, 1  # sum of C(n, k) for k <= min(b, c), exactly
    for k in range(min(only_a, only_b) + 1):
        tail += term
        term = term * (n - k) // (k + 1)
    p = min(Fraction(1), Fraction(2 * tail, 2 ** n)) if n else Fraction(1)
    return {"n": len(pairs), "b": only_a, "c": only_b, "p_value": float(p)}


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, resamples: int = RESAMPLES, seed: int = SEED,
                     level: float = 0.95) -> dict[str, float]:
    """The accuracy difference A - B on the shared items and its percentile bootstrap interval."""
    import numpy as np

    pairs = _pairs(a, b)
    n = len(pairs)
    if n == 0:
        return {"diff": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    d = [x - y for x, y in pairs]
    probs = [d.count(-1) / n, d.count(0) / n, d.count(1) / n]
    counts = np.random.default_rng(seed).multinomial(n, probs, size=resamples)
    diffs = (counts[:, 2] - counts[:, 0]) / n
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return {"diff": sum(d) / n, "ci_low": float(low), "ci_high": float(high)}


def significant(p_value: float, ci_low: float, ci_high: float, alpha: float = ALPHA) -> bool:
    """McNemar's test rejects "no difference" at ``alpha`` and the bootstrap interval leaves out 0 (where
    the two disagree, at the edge, the difference is called not significant)."""
    return bool(p_value < alpha and (ci_low > 0 or ci_high < 0))


def verdict(a: str, b: str, diff: float, p_value: float, is_significant: bool) -> str:
    """``"A > B (p=0.003)"`` for a significant difference, else ``"no significant difference"``."""
    if not is_significant or math.isnan(diff) or diff == 0:
        return "no significant difference"
    hi, lo = (a, b) if diff > 0 else (b, a)
    return f"{hi} > {lo} (p={_p(p_value)})"


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def paired_tests(per_item: Mapping[str, Mapping[str, Sequence[float]]], *, alpha: float = ALPHA,
                 resamples: int = RESAMPLES, seed: int = SEED) -> Any:
    """One row per (task, pair of models): items, accuracies, difference and its CI (in points), the
    discordant counts, McNemar's p-value, and the verdict. ``per_item``: {model: {task: 0/1 per item}},
    the same items in the same order for every model."""
    import pandas as pd

    rows = []
    models = list(per_item)
    for m_a, m_b in itertools.combinations(models, 2):
        for task in per_item[m_a]:
            if task not in per_item[m_b]:
                continue
            a, b = per_item[m_a][task], per_item[m_b][task]
            if len(a) != len(b):
                continue  # a partial (interrupted) run: not the same items
            test = mcnemar_exact(a, b)
            boot = paired_bootstrap(a, b, resamples=resamples, seed=seed)
            pairs = _pairs(a, b)
            acc_a = 100 * sum(x for x, _ in pairs) / len(pairs) if pairs else math.nan
            acc_b = 100 * sum(y for _, y in pairs) / len(pairs) if pairs else math.nan
            sig = significant(test["p_value"], boot["ci_low"], boot["ci_high"], alpha)
            rows.append({"task": task, "a": m_a, "b": m_b, "items": test["n"], "acc_a": acc_a, "acc_b": acc_b,
                         "diff": 100 * boot["diff"], "ci_low": 100 * boot["ci_low"], "ci_high": 100 * boot["ci_high"],
                         "a_only": test["b"], "b_only": test["c"], "p_value": test["p_value"], "significant": sig,
                         "verdict": verdict(m_a, m_b, boot["diff"], test["p_value"], sig)})
    columns = ["task", "a", "b", "items", "acc_a", "acc_b", "diff", "ci_low", "ci_high", "a_only", "b_only",
               "p_value", "significant", "verdict"]
    return pd.DataFrame(rows, columns=columns)
