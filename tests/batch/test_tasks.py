"""The Table 1 task formats and metrics, checked against lm-evaluation-harness's definitions (no model)."""

from __future__ import annotations

import math

import pytest

from gpt4all_magic.batch.choose import score_item
from gpt4all_magic.batch.tasks import TASKS, Item, generic_item, get_task, load_sample, task_names
from gpt4all_magic.errors import BatchInputError


def test_the_seven_tasks_in_table_order_each_with_a_bundled_sample():
    assert task_names() == ["boolq", "piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa"]
    assert [t.title for t in TASKS.values()] == ["BoolQ", "PIQA", "HellaSwag", "WinoGrande", "ARC-e", "ARC-c", "OBQA"]
    for name in task_names():
        rows = load_sample(name)
        assert len(rows) == 8
        items = [get_task(name).item(r) for r in rows]
        assert all(it.gold is not None for it in items)
        golds = {it.gold for it in items}
        assert len(golds) > 1, f"{name}: the sample's answers should not all be the same choice"


def test_boolq_prompt_and_both_label_schemas():
    row = {"passage": "Bats fly at night.", "question": "can bats fly", "label": 1}
    item = get_task("boolq").item(row)
    assert item.contexts == ("Bats fly at night.\nQuestion: can bats fly?\nAnswer:",) * 2
    assert item.continuations == (" no", " yes") and item.choices == ("no", "yes") and item.gold == 1
    google = {"passage": "Bats fly at night.", "question": "can bats fly", "answer": False}
    assert get_task("boolq").item(google).gold == 0


def test_piqa_and_arc_prompts():
    piqa = get_task("piqa").item({"goal": "Dry shoes", "sol1": "Use paper.", "sol2": "Use water.", "label": 0})
    assert piqa.contexts[0] == "Question: Dry shoes\nAnswer:" and piqa.continuations == (" Use paper.", " Use water.")
    row = {"question": "Which is a star?", "choices": {"text": ["the Sun", "the Moon", "Mars"], "label": ["1", "2", "3"]},
           "answerKey": "1"}
    arc = get_task("arc_challenge").item(row)
    assert arc.contexts[0] == "Question: Which is a star?\nAnswer:" and arc.gold == 0
    assert arc.continuations == (" the Sun", " the Moon", " Mars")


def test_openbookqa_uses_the_bare_stem_and_strips_the_answer_key():
    row = {"question_stem": "A magnet sticks to", "choices": {"text": ["wood", "iron"], "label": ["A", "B"]},
           "answerKey": " B"}
    item = get_task("obqa").item(row)
    assert item.contexts == ("A magnet sticks to",) * 2 and item.gold == 1


def test_hellaswag_preprocessing_matches_the_harness():
    row = {"activity_label": "Home and Garden", "ctx_a": "[header] How to water a plant [title] Check the soil.",
           "ctx_b": "if it feels DRY,", "endings": [" pour water  slowly. [step] ", "paint it [blue]."], "label": "0"}
    item = get_task("hellaswag").item(row)
    # ctx_b.capitalize() lower-cases the rest; " [title]" becomes ". "; other [tags] go; double spaces collapse.
    assert item.contexts[0] == "Home and Garden: How to water a plant. Check the soil. If it feels dry,"
    # The harness strips before removing tags, so a trailing tag leaves its space behind.
    assert item.choices == ("pour water slowly. ", "paint it .")
    assert item.continuations == (" pour water slowly. ", " paint it .") and item.gold == 0


def test_winogrande_partial_evaluation():
    row = {"sentence": "The cup fell off the table because the _ was slippery.", "option1": "cup",
           "option2": "table", "answer": "2"}
    item = get_task("winogrande").item(row)
    assert item.contexts == ("The cup fell off the table because the cup", "The cup fell off the table because the table")
    assert item.continuations == (" was slippery.",) * 2
    assert item.choices == item.contexts  # the harness normalises by the contexts' lengths
    assert item.gold == 1


def test_unlabelled_rows_have_no_gold():
    assert get_task("hellaswag").item({"activity_label": "A", "ctx_a": "b", "ctx_b": "c", "endings": ["d", "e"],
                                       "label": ""}).gold is None
    assert get_task("piqa").item({"goal": "g", "sol1": "a", "sol2": "b", "label": -1}).gold is None


def test_acc_acc_norm_acc_bytes_follow_the_harness():
    item = Item(("q",) * 3, (" a", " bbbb", " é"), ("a", "bbbb", "é"), gold=1)
    # acc: argmax of sums; acc_norm: divided by len() in characters; acc_bytes: by UTF-8 bytes.
    row = score_item(item, [-2.0, -4.0, -1.5])
    # sums: -1.5 wins; per character: -2, -1, -1.5 -> "bbbb"; per byte: -2, -1, -0.75 -> "é".
    assert (row["pred"], row["pred_norm"], row["acc"], row["acc_norm"], row["acc_bytes"]) == (2, 1, 0.0, 1.0, 0.0)
    assert row["logprobs"] == [-2.0, -4.0, -1.5] and row["gold_index"] == 1
    tie = score_item(Item(("q",) * 2, (" x", " y"), ("x", "y"), gold=1), [-1.0, -1.0])
    assert tie["pred"] == 0 and tie["acc"] == 0.0  # numpy.argmax: the first of equal values
    nogold = score_item(Item(("q",) * 2, (" x", " y"), ("x", "y"), gold=None), [-1.0, -2.0])
    assert math.isnan(nogold["acc"]) and nogold["gold_index"] is None


def test_task_names_aliases_and_errors():
    assert get_task("ARC-e").name == "arc_easy" and get_task("obqa").name == "openbookqa"
    with pytest.raises(BatchInputError, match="Unknown task 'hellaswg'. Did you mean 'hellaswag'"):
        get_task("hellaswg")
    with pytest.raises(BatchInputError, match="missing: endings"):
        get_task("hellaswag").item({"activity_label": "a", "ctx_a": "b", "ctx_b": "c"})
    with pytest.raises(BatchInputError, match="does not follow the ai2_arc/ARC-Easy schema"):
        get_task("arc_easy").item({"question": "q", "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "Z"})


def test_generic_items_check_their_cells():
    item = generic_item("Question: 2+2?\nAnswer:", ["4", "5"], 0)
    assert item.continuations == (" 4", " 5") and item.gold == 0
    with pytest.raises(BatchInputError, match="question must be text, got float"):
        generic_item(float("nan"), ["a", "b"])
    with pytest.raises(BatchInputError, match="at least two non-empty texts"):
        generic_item("q", ["a"])
    with pytest.raises(BatchInputError, match="choices must be a list of texts, got str"):
        generic_item("q", "a,b")
    with pytest.raises(BatchInputError, match=r"gold must be the index of the right choice \(0-1\)"):
        generic_item("q", ["a", "b"], 2)


def test_table1_reports_acc_norm_except_for_boolq_and_winogrande():
    assert {t.title: t.table1_metric for t in TASKS.values()} == {
        "BoolQ": "acc", "PIQA": "acc_norm", "HellaSwag": "acc_norm", "WinoGrande": "acc", "ARC-e": "acc_norm",
        "ARC-c": "acc_norm", "OBQA": "acc_norm"}


def test_a_missing_gold_is_an_unlabelled_row_in_every_schema():
    nan = float("nan")
    choices = {"text": ["a", "b"], "label": ["A", "B"]}
    rows = {"boolq": [{"passage": "p", "question": "q", "label": nan}, {"passage": "p", "question": "q"}],
            "piqa": [{"goal": "g", "sol1": "a", "sol2": "b", "label": None}],
            "hellaswag": [{"activity_label": "A", "ctx_a": "b", "ctx_b": "c", "endings": ["d", "e"], "label": nan}],
            "winogrande": [{"sentence": "The _ fell.", "option1": "cup", "option2": "plate", "answer": nan}],
            "arc_easy": [{"question": "q", "choices": choices, "answerKey": nan}],
            "openbookqa": [{"question_stem": "q", "choices": choices, "answerKey": None}]}
    for name, items in rows.items():
        for row in items:
            assert get_task(name).item(row).gold is None, (name, row)
    # Whole floats (an int column with a gap becomes float in pandas) are indices.
    assert get_task("winogrande").item({**rows["winogrande"][0], "answer": 2.0}).gold == 1
    assert get_task("piqa").item({**rows["piqa"][0], "label": 1.0}).gold == 1
    assert generic_item("q", ["a", "b"], nan).gold is None and generic_item("q", ["a", "b"], 1.0).gold == 1


def test_a_fractional_gold_is_refused_naming_the_row():
    with pytest.raises(BatchInputError, match=r"^Row 'r2' does not follow the piqa schema: label 1\.5 is not a "
                                              r"whole number; give the index of the right choice \(0-1\)") as info:
        get_task("piqa").item({"goal": "g", "sol1": "a", "sol2": "b", "label": 1.5}, "r2")
    assert "\n" not in str(info.value)
    with pytest.raises(BatchInputError, match=r"answer 1\.5 is not a whole number.*\(1-2\)"):
        get_task("winogrande").item({"sentence": "The _ fell.", "option1": "a", "option2": "b", "answer": 1.5})
    with pytest.raises(BatchInputError, match=r"gold must be the index of the right choice \(0-2\) or empty, got 1\.5"):
        generic_item("q", ["a", "b", "c"], 1.5)
    with pytest.raises(BatchInputError, match="answerKey 'E' is not one of the choice labels A, B"):
        get_task("arc_easy").item({"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]},
                                   "answerKey": "E"}, "r3")
