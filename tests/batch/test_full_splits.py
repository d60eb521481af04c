"""Full task splits through the real ``datasets`` library (saved folders on disk, an empty offline cache),
the paper's Table 1 under local models, paired verdicts, per-task checkpoints and bad input."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

import gpt4all_magic as g4
from gpt4all_magic.batch import sources
from gpt4all_magic.batch.compare import significance
from gpt4all_magic.batch.plot import plot_comparison
from gpt4all_magic.batch.tasks import load_sample
from gpt4all_magic.errors import BatchInputError, TaskDataError

datasets = pytest.importorskip("datasets", reason="the [eval] extra is not installed")
datasets.disable_progress_bars()


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A folder of saved datasets: ARC-Easy as a DatasetDict (test: the 8 sample items, validation: 3 of
    them), BoolQ's validation split in the layout OLMo's data uses (``google/boolq/none/validation``)."""
    root = tmp_path / "saved"
    arc = load_sample("arc_easy")
    datasets.DatasetDict({"test": datasets.Dataset.from_list(arc),
                          "validation": datasets.Dataset.from_list(arc[:3])}).save_to_disk(str(root / "arc_easy"))
    datasets.Dataset.from_list(load_sample("boolq")).save_to_disk(str(root / "google" / "boolq" / "none" / "validation"))
    return root


def test_evaluate_reads_the_harness_split_from_saved_datasets(manager, saved):
    full = g4.evaluate(["arc_easy", "boolq"], source=saved, manager=manager, progress=False)
    assert full["items"].tolist() == [8, 8]
    assert full.attrs["sources"]["arc_easy"]["split"] == "test"  # the harness evaluates ARC on test
    assert full.attrs["sources"]["boolq"]["split"] == "validation"
    assert full.attrs["sources"]["boolq"]["dataset"].endswith("google/boolq/none/validation")
    sample = g4.evaluate(["arc_easy", "boolq"], source="sample", manager=manager, progress=False)
    for column in ("acc", "acc_norm"):  # the same rows, read through `datasets`, give the same numbers
        assert full[column].fillna(-1).tolist() == sample[column].fillna(-1).tolist()
    assert (full["items_per_s"] > 0).all()
    val = g4.evaluate(["arc_easy"], source=saved, split="validation", manager=manager, progress=False)
    assert val.loc["arc_easy", "items"] == 3
    rows = sources.load_task_rows("arc_easy", source=saved, limit=2)
    assert len(rows) == 2 and sorted(rows["choices"].iloc[0]) == ["label", "text"]


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_bad_splits_schemas_and_names_are_one_line_errors(saved):
    with pytest.raises(TaskDataError) as exc:
        sources.load_task_rows("arc_easy", source=saved, split="train")
    assert "has no split 'train' for arc_easy (it has test, validation); pass split= one of them" in _one_line(exc)
    with pytest.raises(TaskDataError) as exc:
        sources.load_task_rows("piqa", source=saved)
    assert _one_line(exc).startswith(f"No saved validation split of piqa in {saved}; save it there with")
    broken = [{k: v for k, v in row.items() if k != "choices"} for row in load_sample("arc_challenge")]
    datasets.Dataset.from_list(broken).save_to_disk(str(saved / "arc_challenge" / "test"))
    with pytest.raises(TaskDataError) as exc:
        sources.load_task_rows("arc_challenge", source=saved)
    assert "does not follow the ai2_arc/ARC-Challenge schema that the arc_challenge adapter reads: no field " \
           "'choices'" in _one_line(exc)
    hidden = [dict(row, label=-1) for row in load_sample("piqa")]  # a test split: answers withheld
    datasets.Dataset.from_list(hidden).save_to_disk(str(saved / "piqa" / "test"))
    with pytest.raises(TaskDataError) as exc:
        sources.load_task_rows("piqa", source=saved, split="test")
    assert "has no labels (its answers are hidden), so accuracy cannot be measured; use split='validation'" \
           in _one_line(exc)
    with pytest.raises(BatchInputError, match="Unknown task 'arc_esy'. Did you mean 'arc_easy'?"):
        g4.evaluate(["arc_esy"], source=saved)
    with pytest.raises(TaskDataError, match="is not a folder of saved datasets"):
        g4.evaluate(["arc_easy"], source="nowhere")
    with pytest.raises(TaskDataError, match="bundled piqa sample has no split 'test'"):
        sources.load_task_rows("piqa", source="sample", split="test")


def test_a_split_missing_from_an_empty_cache_while_offline_names_the_command_that_fetches_it():
    # A real datasets.load_dataset against the empty Hugging Face cache of this test; the Hub is unreachable.
    with pytest.raises(TaskDataError) as exc:
        sources.load_task_rows("arc_easy", source="hub")
    text = _one_line(exc)
    assert text.startswith("arc_easy's test split is not in the Hugging Face cache and the Hub cannot be reached")
    assert "run `python -c \"import datasets; datasets.load_dataset('allenai/ai2_arc', 'ARC-Easy', split='test')\"` " \
           "once with network access, or pass source='sample'" in text


def test_without_datasets_the_samples_are_the_default_with_a_note(manager, monkeypatch, capsys):
    monkeypatch.setattr(sources, "datasets_available", lambda: False)
    out = g4.evaluate(["piqa"], limit=2, manager=manager, progress=False)
    assert out.loc["piqa", "items"] == 2 and out.attrs["sources"]["piqa"]["kind"] == "sample"
    err = capsys.readouterr().err
    assert "`datasets` library is not installed, so this runs on the 8 bundled sample items per task" in err
    assert "pip install 'gpt4all-magic[eval]'" in err
    with pytest.raises(TaskDataError, match=r"Full task splits need the `datasets` library: `pip install"):
        monkeypatch.setitem(__import__("sys").modules, "datasets", None)
        sources.load_task_rows("piqa", source="hub")


def test_a_checkpoint_folder_resumes_each_task(manager, tmp_path, monkeypatch):
    folder = tmp_path / "run"
    first = g4.evaluate(["arc_easy", "piqa"], source="sample", limit=3, checkpoint=folder, manager=manager,
                        progress=False)
    assert sorted(p.name for p in folder.iterdir()) == ["arc_easy.jsonl", "piqa.jsonl"]

    def no_scoring(*args, **kwargs):
        raise AssertionError("a resumed task scored again")

    monkeypatch.setattr(manager, "score", no_scoring)
    again = g4.evaluate(["arc_easy", "piqa"], source="sample", limit=3, checkpoint=folder, manager=manager,
                        progress=False)
    assert again[["acc", "acc_norm"]].fillna(-1).equals(first[["acc", "acc_norm"]].fillna(-1))


def test_compare_adds_the_papers_rows_and_pairs_models(manager):
    path = manager.current.ref.path
    with pytest.raises(BatchInputError, match=r"^Unknown reference 'gpt4all-papr'\. Did you mean 'gpt4all-paper'\? "
                                              r"Available: gpt4all-paper"):
        g4.compare([None], ["piqa"], source="sample", reference="gpt4all-papr", manager=manager)
    table = g4.compare([None, path], source="sample", limit=2, reference="gpt4all-paper", manager=manager,
                       progress=False)
    titles = ["BoolQ", "PIQA", "HellaSwag", "WinoGrande", "ARC-e", "ARC-c", "OBQA"]
    assert list(table.columns) == titles + ["Average"]
    assert list(table.index[:2]) == ["smollm2-135m-instruct", path.name] and len(table) == 17
    paper = table.loc["GPT4All-J 6B v1.0*"]
    assert paper.tolist() == [73.4, 74.8, 63.4, 64.7, 54.9, 36.0, 40.2, 58.2]  # the paper's average, as printed
    assert table.loc["text-davinci-003", "Average"] == 75.7
    assert "arXiv:2311.04931" in table.attrs["reference"]["citation"]
    assert table.attrs["reference"]["rows"][0] == "GPT4All-J 6B v1.0*"
    verdicts = significance(table)
    assert list(verdicts.columns) == [f"smollm2-135m-instruct vs {path.name}"]
    assert list(verdicts.index) == titles
    assert (verdicts.iloc[:, 0] == "no significant difference").all()  # the same weights answer alike
    tests = table.attrs["significance"]
    assert (tests["p_value"] == 1.0).all() and (tests["items"] == 2).all()

    import matplotlib

    matplotlib.use("Agg")
    ax = plot_comparison(table)
    alphas = {p.get_alpha() for p in ax.patches}
    assert alphas == {None, 0.55} or alphas == {1.0, 0.55}  # local bars solid, the paper's muted
    assert sum(t.get_text() == "n.s." for t in ax.texts) == 7  # one bracket per task: no difference anywhere
    assert ax.get_legend().get_title().get_text() == "muted: the GPT4All paper"

    subset = g4.compare([None], ["piqa", "arc_easy"], source="sample", limit=2, reference="gpt4all-paper",
                        manager=manager, progress=False)
    row = subset.loc["GPT4All-J 6B v1.0*"]
    assert row["Average"] == round((74.8 + 54.9) / 2, 1)  # over the tasks shown, like the local rows
    assert not math.isnan(subset.iloc[0]["Average"])


def test_the_plot_marks_only_pairs_that_do_not_differ(manager):
    import matplotlib

    matplotlib.use("Agg")
    from gpt4all_magic.batch.significance import paired_tests

    table = pd.DataFrame({"ARC-e": [70.0, 40.0], "PIQA": [52.0, 50.0], "Average": [61.0, 45.0]},
                         index=pd.Index(["big", "small"], name="model"))
    strong = {"big": {"ARC-e": [1] * 70 + [0] * 30, "PIQA": [1] * 52 + [0] * 48},
              "small": {"ARC-e": [1] * 40 + [0] * 60, "PIQA": [1] * 50 + [0] * 50}}
    table.attrs.update({"metric": "table1", "metrics": {"ARC-e": "acc_norm", "PIQA": "acc_norm"},
                        "significance": paired_tests(strong)})
    ax = plot_comparison(table)
    marks = [t for t in ax.texts if t.get_text() == "n.s."]
    assert len(marks) == 1 and 0.5 < marks[0].get_position()[0] < 1.5  # over PIQA only
    assert significance(table).loc["ARC-e", "big vs small"].startswith("big > small (p=")
