"""Near-duplicate search through the faiss index, checked against a brute-force numpy computation of the
same rule on given vectors (random unit vectors with planted near duplicates), and curate's semantic mode."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import gpt4all_magic as g4
from gpt4all_magic.embeddings.neighbours import first_of_groups, similar_pairs
from gpt4all_magic.errors import BatchInputError, InvalidOptionError

THRESHOLD = 0.95


def planted(n: int = 2000, dim: int = 64, seed: int = 7) -> np.ndarray:
    """Random unit vectors; 300 of them replaced by noisy copies of others at cosines from 0.90 to 0.999,
    some copies of copies (chains) and several copies of one row (groups), some right at the threshold."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    targets = rng.choice(np.arange(100, n), 300, replace=False)
    for k, t in enumerate(targets):
        source = targets[k - 1] if k % 10 == 0 and k else rng.integers(0, 60 if k % 7 == 0 else t)
        cos = [0.90, 0.94, 0.949, 0.951, 0.96, 0.98, 0.999][k % 7]
        noise = rng.standard_normal(dim)
        noise -= noise @ x[source] * x[source]
        x[t] = cos * x[source] + np.sqrt(1 - cos**2) * noise / np.linalg.norm(noise)
    return x.astype(np.float32)


def brute_force(x: np.ndarray, threshold: float) -> dict[int, int]:
    """The rule, computed directly: going down the rows, a row repeats the earliest earlier kept row whose
    cosine similarity is at least the threshold."""
    sims = x.astype(np.float64) @ x.astype(np.float64).T
    found: dict[int, int] = {}
    for j in range(len(x)):
        earlier = [i for i in np.nonzero(sims[:j, j] >= threshold)[0] if i not in found]
        if earlier:
            found[j] = int(earlier[0])
    return found


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return planted()


def test_pairs_equal_brute_force_on_2000_rows(vectors):
    i, j, sims = similar_pairs(vectors, THRESHOLD)
    full = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    want_i, want_j = np.nonzero(np.triu(full >= THRESHOLD, k=1))
    assert sorted(zip(i.tolist(), j.tolist())) == sorted(zip(want_i.tolist(), want_j.tolist()))
    assert len(i) > 150  # the planted pairs are there (and the ones just under the threshold are not)
    assert np.allclose(sims, full[i, j], atol=1e-6)


def test_flags_equal_brute_force_and_the_indexed_search_agrees(vectors):
    expected = brute_force(vectors, THRESHOLD)
    i, j, _ = similar_pairs(vectors, THRESHOLD)
    assert first_of_groups(len(vectors), i, j) == expected
    # The inverted-file path (used above 20,000 rows) finds the same pairs here; it can only miss, never add.
    ai, aj, _ = similar_pairs(vectors, THRESHOLD, exact=False)
    assert first_of_groups(len(vectors), ai, aj) == expected


def test_curate_flags_semantic_near_duplicates_from_given_vectors(vectors):
    n = len(vectors)
    df = pd.DataFrame({"prompt": [f"prompt {k}" for k in range(n)], "response": ["a fine long answer"] * n},
                      index=[f"r{k}" for k in range(n)])
    df.loc["r5", "prompt"] = df.loc["r3", "prompt"]  # an exact duplicate stays 'duplicate'
    cur = g4.curate(df, near_duplicates=THRESHOLD, vectors=vectors)
    expected = {j: i for j, i in brute_force(np.delete(vectors, 5, axis=0), THRESHOLD).items()}
    labels = [label for label in df.index if label != "r5"]
    want = {labels[j]: labels[i] for j, i in expected.items()}
    flags = cur.flags
    got = {label: flags.loc[label, "duplicate_of"] for label in flags.index[flags["near_duplicate"]]}
    assert got == want
    assert flags.loc["r5", "reason"] == "duplicate" and flags.loc["r5", "duplicate_of"] == "r3"
    assert all(d.startswith("cosine ") and float(d.split()[1]) >= THRESHOLD
               for d in flags.loc[flags["near_duplicate"], "detail"])
    assert cur.counts["near_duplicate"] == len(want)


def test_curate_embeds_the_prompts_when_no_vectors_are_given(fake_manager):
    df = pd.DataFrame({"prompt": ["the cat sat on the mat", "The cat sat on the mat!", "a dog barked loudly",
                                  "quantum computers use qubits", "cat the mat on sat the"],
                       "response": ["a long enough answer"] * 5})
    cur = g4.curate(df, near_duplicates=0.99)
    # The fake engine's vectors are bags of words: the same words in another order are the same meaning.
    assert cur.flags["duplicate_of"].tolist() == [None, None, None, None, 0]
    assert cur.flags.loc[4, "near_duplicate"] and not cur.flags.loc[1, "near_duplicate"]
    assert fake_manager.embedder is not None and fake_manager.embedder.calls


@pytest.mark.parametrize("value, expected", [
    (0.2, "a cosine similarity between 0.5 and 1"),
    ("yes", "near_duplicates must be True"),
])
def test_bad_thresholds_are_one_line(value, expected):
    df = pd.DataFrame({"prompt": ["a", "b", "c"], "response": ["x y z"] * 3})
    with pytest.raises(BatchInputError, match=expected):
        g4.curate(df, near_duplicates=value)
    with pytest.raises(InvalidOptionError, match=r"must be in \(0, 1\]"):
        similar_pairs(np.eye(3, dtype=np.float32), 1.5)


def test_vectors_of_the_wrong_shape_are_refused():
    df = pd.DataFrame({"prompt": ["a", "b", "c"], "response": ["x y z"] * 3})
    with pytest.raises(BatchInputError, match=r"vectors has shape \(2, 4\) but the DataFrame has 3 rows"):
        g4.curate(df, near_duplicates=0.9, vectors=np.ones((2, 4)))
