"""Paired significance: McNemar's exact test and the paired bootstrap against independent computations."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from gpt4all_magic.batch.significance import mcnemar_exact, paired_bootstrap, paired_tests, verdict

# Fixed per-item correctness of two models on 60 items: 9 only A got right, 2 only B, 30 both, 19 neither.
A = [1] * 9 + [0] * 2 + [1] * 30 + [0] * 19
B = [0] * 9 + [1] * 2 + [1] * 30 + [0] * 19


def _hand_mcnemar(b: int, c: int) -> float:
    """Two-sided exact p by enumerating every outcome of Binomial(b + c, 1/2) as likely as, or less
    likely than, the one observed."""
    n = b + c
    probs = [Fraction(math.comb(n, k), 2 ** n) for k in range(n + 1)]
    observed = probs[b]
    return float(min(Fraction(1), sum(p for p in probs if p <= observed)))


@pytest.mark.parametrize("b,c", [(9, 2), (2, 9), (0, 0), (5, 5), (0, 7), (30, 12), (1, 0), (120, 151)])
def test_mcnemar_matches_scipy_and_a_hand_enumeration(b, c):
    from scipy.stats import binomtest

    a_vec = [1] * b + [0] * c + [1] * 4 + [0] * 3
    b_vec = [0] * b + [1] * c + [1] * 4 + [0] * 3
    result = mcnemar_exact(a_vec, b_vec)
    assert (result["b"], result["c"], result["n"]) == (b, c, b + c + 7)
    expected = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    assert result["p_value"] == pytest.approx(expected, rel=1e-12)
    assert result["p_value"] == pytest.approx(_hand_mcnemar(b, c), rel=1e-12)


def test_mcnemar_leaves_out_items_either_model_did_not_answer():
    a_vec = A + [float("nan"), 1.0]
    b_vec = B + [1.0, None]
    assert mcnemar_exact(a_vec, b_vec) == mcnemar_exact(A, B)
    assert mcnemar_exact(A, B)["p_value"] == pytest.approx(0.06542968750, abs=1e-11)  # 2 * (1 + 11 + 55) / 2**11


def test_bootstrap_equals_an_independent_numpy_recomputation_with_the_same_seed():
    got = paired_bootstrap(A, B, resamples=5000, seed=123)
    # The documented algorithm, written out again: resample the per-item differences as multinomial counts.
    d = np.array(A) - np.array(B)
    n = len(d)
    rng = np.random.default_rng(123)
    counts = rng.multinomial(n, [np.mean(d == -1), np.mean(d == 0), np.mean(d == 1)], size=5000)
    diffs = (counts[:, 2] - counts[:, 0]) / n
    assert got["diff"] == pytest.approx(d.mean())
    assert (got["ci_low"], got["ci_high"]) == tuple(np.percentile(diffs, [2.5, 97.5]))


def test_bootstrap_agrees_with_index_resampling_and_the_exact_bootstrap_distribution():
    # Resampling item indices (the textbook paired bootstrap) gives the same interval up to Monte Carlo error.
    a, b = np.array(A), np.array(B)
    rng = np.random.default_rng(7)
    idx = rng.integers(0, len(a), size=(20000, len(a)))
    by_index = np.percentile(a[idx].mean(axis=1) - b[idx].mean(axis=1), [2.5, 97.5])
    got = paired_bootstrap(A, B, resamples=20000, seed=1)
    assert got["ci_low"] == pytest.approx(by_index[0], abs=0.02)
    assert got["ci_high"] == pytest.approx(by_index[1], abs=0.02)
    # On 8 items the bootstrap distribution can be enumerated: every (n_-1, n_0, n_+1) with its probability.
    small_a, small_b = [1, 1, 1, 0, 1, 0, 0, 1], [0, 0, 1, 0, 1, 1, 0, 1]
    d = [x - y for x, y in zip(small_a, small_b)]
    n, p = len(d), [d.count(-1) / len(d), d.count(0) / len(d), d.count(1) / len(d)]
    dist: dict[float, float] = {}
    for k_minus, k_plus in itertools.product(range(n + 1), repeat=2):
        if k_minus + k_plus > n:
            continue
        k_zero = n - k_minus - k_plus
        prob = math.factorial(n) / (math.factorial(k_minus) * math.factorial(k_zero) * math.factorial(k_plus))
        prob *= p[0] ** k_minus * p[1] ** k_zero * p[2] ** k_plus
        dist[(k_plus - k_minus) / n] = dist.get((k_plus - k_minus) / n, 0.0) + prob
    values = sorted(dist)
    cdf = np.cumsum([dist[v] for v in values])
    low = values[int(np.searchsorted(cdf, 0.025))]
    high = values[int(np.searchsorted(cdf, 0.975))]
    got = paired_bootstrap(small_a, small_b, resamples=200000, seed=5)
    assert got["ci_low"] == pytest.approx(low, abs=1 / n) and got["ci_high"] == pytest.approx(high, abs=1 / n)


def test_verdicts_and_the_table_of_pairs():
    assert verdict("A", "B", 0.05, 0.003, True) == "A > B (p=0.003)"
    assert verdict("A", "B", -0.05, 0.0004, True) == "B > A (p=4.0e-04)"
    assert verdict("A", "B", 0.05, 0.2, False) == "no significant difference"
    strong_a = [1] * 40 + [0] * 2 + [1] * 30 + [0] * 28
    strong_b = [0] * 40 + [1] * 2 + [1] * 30 + [0] * 28
    tests = paired_tests({"m1": {"ARC-e": strong_a, "PIQA": A}, "m2": {"ARC-e": strong_b, "PIQA": B},
                          "m3": {"ARC-e": strong_a, "PIQA": A}})
    assert len(tests) == 6 and set(tests["task"]) == {"ARC-e", "PIQA"}
    row = tests[(tests["a"] == "m1") & (tests["b"] == "m2") & (tests["task"] == "ARC-e")].iloc[0]
    assert row["significant"] and row["verdict"].startswith("m1 > m2 (p=")
    assert row["diff"] == pytest.approx(38.0) and row["ci_low"] > 0 and (row["a_only"], row["b_only"]) == (40, 2)
    same = tests[(tests["a"] == "m1") & (tests["b"] == "m3")]
    assert (same["verdict"] == "no significant difference").all() and (same["p_value"] == 1.0).all()
    piqa = tests[(tests["a"] == "m1") & (tests["b"] == "m2") & (tests["task"] == "PIQA")].iloc[0]
    assert piqa["p_value"] > 0.05 and piqa["verdict"] == "no significant difference"
    assert piqa["ci_low"] <= 0 <= piqa["ci_high"] or not piqa["significant"]
