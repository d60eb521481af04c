"""Multiple-choice evaluation over DataFrames on the real bundled model: choose, evaluate, compare."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import gpt4all_magic as g4
from gpt4all_magic.backends.base import ScoreRequest
from gpt4all_magic.backends.llama_scoring import score_requests_naive
from gpt4all_magic.batch_eval import plot_comparison, score_item
from gpt4all_magic.errors import BatchInputError
from gpt4all_magic.tasks import get_task, load_sample


def test_choose_on_a_task_schema_matches_the_reference_item_by_item(manager):
    rows = load_sample("arc_easy")
    df = pd.DataFrame(rows)
    out = g4.choose(df, task="arc_easy", manager=manager, progress=False)
    assert list(out.columns[:len(df.columns)]) == list(df.columns)
    task = get_task("arc_easy")
    for row, result in zip(rows, out.itertuples()):
        item = task.item(row)
        naive = score_requests_naive(manager.current, [ScoreRequest(c, k) for c, k in
                                                        zip(item.contexts, item.continuations)])
        expected = score_item(item, [r.logprob for r in naive])
        assert result.logprobs == pytest.approx(expected["logprobs"], abs=1e-4)
        assert (result.pred, result.pred_norm, result.acc, result.acc_norm, result.acc_bytes) == \
               (expected["pred"], expected["pred_norm"], expected["acc"], expected["acc_norm"], expected["acc_bytes"])
        assert result.gold_index == item.gold and result.status == "ok"
    assert out["acc"].mean() >= 0.5  # the bundled model knows most of these easy items


def test_choose_on_plain_columns_with_and_without_gold(manager):
    df = pd.DataFrame({"question": ["Question: What colour is the sky on a clear day?\nAnswer:",
                                    "Question: How many legs does a spider have?\nAnswer:"],
                       "choices": [["blue", "green", "purple"], ["eight", "two"]],
                       "gold": [0, 0]})
    out = df.gpt4all.choose(manager=manager, progress=False)
    assert [len(x) for x in out["logprobs"]] == [3, 2]
    assert out["acc"].tolist() == [float(p == 0) for p in out["pred"]]
    blind = g4.choose(df.drop(columns="gold"), manager=manager, progress=False)
    assert blind["pred"].tolist() == out["pred"].tolist() and blind["acc"].isna().all()


def test_choose_errors_name_the_row_and_the_fix(manager):
    df = pd.DataFrame({"question": ["q1", "q2"], "choices": [["a", "b"], "a or b"]}, index=["x", "y"])
    with pytest.raises(BatchInputError, match="Row 'y': choices must be a list of texts, got str"):
        g4.choose(df, manager=manager, progress=False)
    with pytest.raises(BatchInputError, match="No column 'choices'"):
        g4.choose(pd.DataFrame({"question": ["q"]}), manager=manager, progress=False)
    with pytest.raises(BatchInputError, match=r"hellaswag column \(hellaswag schema\) 'endings'"):
        g4.choose(pd.DataFrame({"activity_label": ["a"], "ctx_a": ["b"], "ctx_b": ["c"]}), task="hellaswag",
                  manager=manager, progress=False)


def test_evaluate_and_compare_give_the_table_1_layout(manager):
    summary = g4.evaluate(["boolq", "winogrande"], manager=manager, limit=4, progress=False)
    assert list(summary.index) == ["boolq", "winogrande"] and (summary["items"] == 4).all()
    assert summary["acc_norm"].isna().all()  # the harness reports only acc for these two
    assert summary.loc["boolq", "acc_stderr"] == pytest.approx(
        g4.choose(pd.DataFrame(load_sample("boolq")[:4]), task="boolq", manager=manager, progress=False)["acc"]
        .std(ddof=1) / 2)

    path = manager.current.ref.path
    table = g4.compare(["smollm2-135m-instruct", path], ["arc_easy", "piqa"], manager=manager, limit=4,
                       progress=False)
    assert list(table.columns) == ["ARC-e", "PIQA", "Average"]
    assert list(table.index) == ["smollm2-135m-instruct", path.name]
    assert table.iloc[0].tolist() == table.iloc[1].tolist()  # the same weights give the same numbers
    assert table.loc["smollm2-135m-instruct", "Average"] == pytest.approx(
        round((table.iloc[0, 0] + table.iloc[0, 1]) / 2, 1))
    assert manager.current.ref.source == "bundled"  # the model loaded before is back

    import matplotlib

    matplotlib.use("Agg")
    ax = plot_comparison(table)
    assert len(ax.patches) == 2 * 3 and ax.get_ylabel() == "acc (%)"
    with pytest.raises(BatchInputError, match="metric must be 'acc' or 'acc_norm'"):
        g4.compare(["x"], metric="f1")
    with pytest.raises(BatchInputError, match="models must be a list"):
        g4.compare("smollm2-135m-instruct")
    assert not math.isnan(table.loc[path.name, "PIQA"])
