"""Multiple-choice evaluation over DataFrames on the real bundled model: choose, evaluate, compare."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import gpt4all_magic as g4
from gpt4all_magic.batch import _job as batch_runner
from gpt4all_magic.batch import compare as batch_eval
from gpt4all_magic.batch.choose import score_item
from gpt4all_magic.batch.compare import plot_comparison
from gpt4all_magic.batch.tasks import get_task, load_sample
from gpt4all_magic.engines.base import ScoreRequest
from gpt4all_magic.engines.llama.scoring import score_requests_naive
from gpt4all_magic.errors import BatchInputError


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
    summary = g4.evaluate(["boolq", "winogrande"], source="sample", manager=manager, limit=4, progress=False)
    assert list(summary.index) == ["boolq", "winogrande"] and (summary["items"] == 4).all()
    assert summary["acc_norm"].isna().all()  # the harness reports only acc for these two
    assert summary.loc["boolq", "acc_stderr"] == pytest.approx(
        g4.choose(pd.DataFrame(load_sample("boolq")[:4]), task="boolq", manager=manager, progress=False)["acc"]
        .std(ddof=1) / 2)

    path = manager.current.ref.path
    table = g4.compare(["smollm2-135m-instruct", path], ["arc_easy", "piqa"], metric="acc", source="sample",
                       manager=manager, limit=4, progress=False)
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


def test_compare_defaults_to_the_metric_table_1_reports_per_task(manager):
    tasks = ["boolq", "piqa", "arc_challenge"]
    summary = g4.evaluate(tasks, source="sample", manager=manager, limit=4, progress=False)
    assert summary["table1_metric"].tolist() == ["acc", "acc_norm", "acc_norm"]
    table = g4.compare([None], tasks, source="sample", manager=manager, limit=4, progress=False)
    assert table.attrs["metric"] == "table1"
    assert table.attrs["metrics"] == {"BoolQ": "acc", "PIQA": "acc_norm", "ARC-c": "acc_norm"}
    by_acc = g4.compare([None], tasks, metric="acc", source="sample", manager=manager, limit=4, progress=False)
    assert set(by_acc.attrs["metrics"].values()) == {"acc"}
    for task in tasks:
        title, s = get_task(task).title, summary.loc[task]
        assert table.iloc[0][title] == round(100 * s[get_task(task).table1_metric], 1)
        assert by_acc.iloc[0][title] == round(100 * s["acc"], 1)
    # On these samples the two metrics differ, so the default is not acc under another name.
    assert (summary["acc"] != summary["acc_norm"]).loc[["piqa", "arc_challenge"]].any()
    assert table.iloc[0].tolist() != by_acc.iloc[0].tolist()

    import matplotlib

    matplotlib.use("Agg")
    ax = plot_comparison(table)
    assert ax.get_ylabel() == "accuracy (%)" and "Table 1 metrics" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["BoolQ\nacc", "PIQA\nacc_norm", "ARC-c\nacc_norm",
                                                             "Average"]


def _ctrl_c_after(n_rows, monkeypatch):
    """Ctrl-C (a KeyboardInterrupt in the main thread) once ``n_rows`` rows are recorded."""
    seen = []
    real_record = batch_runner.Job.record

    def record(self, pos, row, **kwargs):
        real_record(self, pos, row, **kwargs)
        seen.append(row)
        if len(seen) == n_rows:
            raise KeyboardInterrupt

    monkeypatch.setattr(batch_runner.Job, "record", record)
    return seen


def test_ctrl_c_stops_compare_and_marks_the_table_partial(manager, monkeypatch, capsys):
    path = manager.current.ref.path
    seen = _ctrl_c_after(6, monkeypatch)  # all 4 ARC-e items, then 2 of the 4 PIQA items of the first model
    try:
        table = g4.compare([None, path], ["arc_easy", "piqa"], source="sample", manager=manager, limit=4,
                           progress=False)
    except KeyboardInterrupt:  # pragma: no cover - would mean compare lost the finished rows
        pytest.fail("KeyboardInterrupt escaped compare")
    assert len(seen) == 6  # the second model never ran
    assert list(table.index) == ["smollm2-135m-instruct"]
    assert table.attrs["interrupted"] is True
    assert table.attrs["cut"] == {"model": "smollm2-135m-instruct", "task": "PIQA", "items": 2, "of": 4}
    assert not math.isnan(table.loc["smollm2-135m-instruct", "ARC-e"])  # what finished is kept
    assert not math.isnan(table.loc["smollm2-135m-instruct", "PIQA"])
    assert math.isnan(table.loc["smollm2-135m-instruct", "Average"])
    err = capsys.readouterr().err
    assert "compare was interrupted on smollm2-135m-instruct during PIQA (2 of 4 items finished)" in err
    assert f"not run: {path.name}" in err
    assert manager.current.ref.source == "bundled"
    monkeypatch.undo()

    # Ctrl-C outside a task's rows (here: as the second task starts) stops the same way.
    calls = []
    real_choose = batch_eval.choose

    def choose(*args, **kwargs):
        calls.append(kwargs["task"].name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_choose(*args, **kwargs)

    monkeypatch.setattr(batch_eval, "choose", choose)
    table = g4.compare([None, path], ["arc_easy", "piqa"], source="sample", manager=manager, limit=4, progress=False)
    assert calls == ["arc_easy", "piqa"] and table.attrs["cut"]["task"] == "PIQA"
    assert table.attrs["interrupted"] is True and list(table.index) == ["smollm2-135m-instruct"]
    monkeypatch.undo()
    whole = g4.compare([None], ["arc_easy"], source="sample", manager=manager, limit=2, progress=False)
    assert whole.attrs["interrupted"] is False and whole.attrs["cut"] is None


def test_choose_names_a_missing_gold_column_and_the_row_of_a_bad_task_row(manager):
    df = pd.DataFrame({"question": ["Question: 2+2?\nAnswer:"], "choices": [["4", "5"]], "answer": [0]})
    with pytest.raises(BatchInputError, match=r"^No gold column 'label' in the DataFrame; name it with gold='...', "
                                              r"or pass gold=None for unlabelled rows\. Columns: question, choices, "
                                              r"answer\.$"):
        g4.choose(df, gold="label", manager=manager, progress=False)
    rows = pd.DataFrame(load_sample("piqa")[:3], index=["r0", "r1", "r2"])
    rows["label"] = rows["label"].astype(float)
    rows.loc["r2", "label"] = 1.5
    with pytest.raises(BatchInputError, match=r"^Row 'r2' does not follow the piqa schema: label 1\.5 is not a "
                                              r"whole number"):
        g4.choose(rows, task="piqa", manager=manager, progress=False)


def test_a_missing_gold_is_an_unlabelled_row_that_is_still_scored(manager):
    rows = pd.DataFrame(load_sample("arc_easy")[:3], index=["a", "b", "c"])
    rows.loc["b", "answerKey"] = None
    out = g4.choose(rows, task="arc_easy", manager=manager, progress=False)
    assert (out["status"] == "ok").all() and out["pred"].notna().all()
    assert math.isnan(out.loc["b", "acc"]) and math.isnan(out.loc["b", "acc_norm"])
    assert out["acc"].drop("b").notna().all() and pd.isna(out.loc["b", "gold_index"])
    plain = pd.DataFrame({"question": ["Question: 2+2?\nAnswer:"] * 2, "choices": [["4", "5"]] * 2,
                          "gold": [0, float("nan")]})
    scored = g4.choose(plain, manager=manager, progress=False)
    assert scored["acc"].tolist()[0] in (0.0, 1.0) and math.isnan(scored["acc"].tolist()[1])


def test_a_row_too_long_for_the_context_is_named_by_its_label(manager):
    long_text = "word " * 3000  # > the 2,048-token window
    mc = pd.DataFrame({"question": ["Question: 2+2?\nAnswer:", long_text, "Question: 3+3?\nAnswer:"],
                       "choices": [["4", "5"], ["a", "b"], ["6", "7"]]}, index=["first", "long", "last"])
    out = g4.choose(mc, manager=manager, progress=False)
    assert out["status"].tolist() == ["ok", "too_long", "ok"]
    assert out.loc["long", "error"].startswith("Row 'long' (choice 0) is 3,0")
    assert "Request" not in out.loc["long", "error"] and "\n" not in out.loc["long", "error"]
    pairs = pd.DataFrame({"prompt": ["Name a colour.", long_text], "response": ["Blue.", "Red."]}, index=["ok", "long"])
    scored = g4.score(pairs, manager=manager, progress=False)
    assert scored["status"].tolist() == ["ok", "too_long"]
    assert scored.loc["long", "error"].startswith("Row 'long' is 3,0") and "Request" not in scored.loc["long", "error"]
