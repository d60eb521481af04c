"""g4.map without a browser: the coordinates (PCA for tiny frames, UMAP otherwise) against independent
computations, the clusters, the colour column, and the selection the front end writes into the widget."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import gpt4all_magic as g4
from gpt4all_magic.errors import BatchInputError

PROMPTS = ["How do I brew green tea?", "What temperature for green tea?", "Best way to steep oolong tea?",
           "How do I sort a list in Python?", "Python: reverse a list", "Sort a dict by value in Python",
           "Tell me a joke about cats", "A funny story about a cat", "Why do cats purr?"]


@pytest.fixture
def pairs() -> pd.DataFrame:
    return pd.DataFrame({"prompt": PROMPTS, "response": ["ok, here it is"] * 9},
                        index=[f"p{i}" for i in range(len(PROMPTS))])


def test_a_small_map_is_pca_of_the_embeddings(manager, pairs):
    from sklearn.decomposition import PCA

    m = g4.map(pairs, "prompt")
    frame = m.frame
    assert list(frame.columns) == ["prompt", "response", "map_x", "map_y", "cluster"]
    assert frame.attrs["projection"] == "pca" and list(frame.index) == list(pairs.index)
    expected = PCA(n_components=2, svd_solver="full").fit_transform(g4.embed(PROMPTS).astype(np.float64))
    got = frame[["map_x", "map_y"]].to_numpy()
    for axis in range(2):  # the same axes up to their sign
        assert min(np.abs(got[:, axis] - expected[:, axis]).max(), np.abs(got[:, axis] + expected[:, axis]).max()) < 1e-4
    assert frame["cluster"].dtype == np.int64 and frame["cluster"].min() >= -1


def test_the_selection_the_front_end_writes_comes_back_as_rows(fake_manager, pairs):
    m = g4.map(pairs, "prompt")
    assert m.selection.empty
    m.widget.selection = np.array([4, 1], dtype=np.uint32)  # what a lasso in the browser sets
    assert list(m.selection.index) == ["p4", "p1"] and list(m.selection.columns)[-3:] == ["map_x", "map_y", "cluster"]
    m.select(["p2", "p7"])
    assert m.widget.selection.tolist() == [2, 7] and list(m.selection["prompt"]) == [PROMPTS[2], PROMPTS[7]]
    kept = pairs.drop(m.selection.index)
    assert len(kept) == 7 and "p7" not in kept.index
    assert "2 selected" in repr(m)
    assert m.clear().selection.empty


def test_points_are_coloured_by_a_column_or_by_curation_flags(fake_manager, pairs):
    pairs.loc["p8", "response"] = "As an AI language model, I cannot answer."
    flags = g4.curate(pairs, min_words=2).flags
    m = g4.map(pairs, "prompt", color=flags["reason"])
    shown = m.scatter.widget.data  # what travels to the browser: coordinates, colour, hover text
    assert list(shown.columns) == ["x", "y", "color", "text"] and list(shown["text"]) == PROMPTS
    assert shown["color"].tolist()[8] == "refusal" and shown["color"].tolist()[0] == "(none)"
    assert m.color_title == "reason"
    by_column = g4.map(pairs.assign(topic=["tea"] * 3 + ["python"] * 3 + ["cats"] * 3), "prompt", color="topic")
    assert sorted(set(by_column.scatter.widget.data["color"])) == ["cats", "python", "tea"]
    with pytest.raises(BatchInputError, match="No colour column 'topik'"):
        g4.map(pairs, "prompt", color="topik")


def test_given_vectors_skip_embedding(fake_manager, pairs):
    embedded = g4.embed(pairs, "prompt")
    calls = len(fake_manager.embedder.calls)
    m = g4.map(embedded, "prompt", vectors="embedding")
    assert len(fake_manager.embedder.calls) == calls and len(m.frame) == 9


def test_a_map_needs_three_rows(fake_manager, pairs):
    with pytest.raises(BatchInputError) as info:
        g4.map(pairs.head(2), "prompt")
    assert str(info.value) == "map needs at least 3 rows, got 2; add rows, or look at so few texts directly."


@pytest.mark.slow
def test_umap_separates_planted_groups_and_hdbscan_finds_them():
    """UMAP on 180 given vectors in three tight groups: the map keeps them apart and the clusters are
    those groups (numba compiles UMAP on first use: this test takes a while)."""
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(3)
    centres = rng.standard_normal((3, 48))
    groups = np.repeat(np.arange(3), 60)
    x = centres[groups] + 0.15 * rng.standard_normal((180, 48))
    df = pd.DataFrame({"text": [f"row {i}" for i in range(180)], "group": groups})
    m = g4.map(df, "text", color="group", vectors=x)
    assert m.frame.attrs["projection"] == "umap"
    assert adjusted_rand_score(groups, m.frame["cluster"]) > 0.95
    again = g4.map(df, "text", vectors=x)  # a fixed seed: the same vectors give the same map
    assert np.allclose(again.frame[["map_x", "map_y"]], m.frame[["map_x", "map_y"]])
