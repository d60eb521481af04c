"""classify(): labels from log-likelihoods normalised over the labels (checked against each label scored
alone, one request at a time, then a softmax), or from generation under a grammar of the labels."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import gpt4all_magic as g4
from gpt4all_magic.engines.base import ScoreRequest
from gpt4all_magic.engines.llama.scoring import encode_chat, score_tokens_naive
from gpt4all_magic.errors import BatchInputError, SchemaError
from gpt4all_magic.structured.schema import Schema

LABELS = ["positive", "negative", "neutral"]
TEMPLATE = "Is the sentiment of this review positive, negative or neutral? Answer with one word.\n\n{review}"
REVIEWS = pd.DataFrame({"review": ["I love this kettle, it is perfect.", "Broke after one day. Awful.",
                                   "It is a kettle. It boils water.", "Best purchase of the year!",
                                   "The lid is loose and it leaks, very disappointing."]},
                       index=[10, 11, 12, 13, 14])


def test_probabilities_equal_labels_scored_one_at_a_time_then_softmaxed(manager):
    out = g4.classify(REVIEWS, TEMPLATE, LABELS, progress=False)
    assert list(out.index) == list(REVIEWS.index) and (out["status"] == "ok").all()
    model = manager.current
    checked = 0
    for (_, row), review in zip(out.iterrows(), REVIEWS["review"]):
        prompt = TEMPLATE.format(review=review)
        lls = [score_tokens_naive(model, [encode_chat(model, ScoreRequest(prompt, label))])[0].logprob
               for label in LABELS]  # each label alone, from an empty cache
        top = max(lls)
        expected = [math.exp(x - top) / sum(math.exp(y - top) for y in lls) for x in lls]
        got = [row[f"p_{label}"] for label in LABELS]
        assert max(abs(a - b) for a, b in zip(got, expected)) < 1e-4, (got, expected)
        assert abs(sum(got) - 1) < 1e-9
        assert row["label"] == LABELS[max(range(3), key=lambda k: expected[k])]
        checked += 1
    assert checked == len(REVIEWS)
    assert str(out["label"].dtype) == "string" and all(str(out[f"p_{x}"].dtype) == "Float64" for x in LABELS)


def test_generate_method_answers_with_a_label_like_a_single_constrained_call(manager):
    out = REVIEWS.gpt4all.classify(TEMPLATE, LABELS, method="generate", progress=False)
    agree = 0
    for (_, row), review in zip(out.iterrows(), REVIEWS["review"]):
        assert row["status"] == "ok" and row["label"] in LABELS
        single = g4.generate(TEMPLATE.format(review=review), schema=Schema.choice(LABELS), max_tokens=200).data
        agree += single == row["label"]
    assert agree == len(REVIEWS)
    assert "p_positive" not in out.columns


def test_a_checkpoint_makes_a_rerun_skip_finished_rows(manager, tmp_path):
    path = tmp_path / "labels.jsonl"
    first = g4.classify(REVIEWS, TEMPLATE, LABELS, progress=False, checkpoint=path)
    again = g4.classify(REVIEWS, TEMPLATE, LABELS, progress=False, checkpoint=path)
    assert again.attrs["resumed_rows"] == len(REVIEWS)
    assert list(again["label"]) == list(first["label"])
    assert again["p_neutral"].tolist() == first["p_neutral"].tolist()


@pytest.mark.parametrize("labels, words", [
    ([], "Give the labels as a list"),
    (None, "Give the labels as a list"),
    (["yes", "yes"], "given twice"),
    (["yes", ""], "non-empty"),
    (["only"], "at least two labels"),
    (["a", 3], "non-empty texts"),
])
def test_bad_labels_are_refused_before_any_work(fake_manager, labels, words):
    with pytest.raises(SchemaError) as info:
        g4.classify(REVIEWS, TEMPLATE, labels, progress=False)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert fake_manager.backend.calls == [] and fake_manager.backend.loads == []


def test_bad_method_options_and_columns_are_refused(fake_manager):
    with pytest.raises(BatchInputError, match="method must be 'loglik'"):
        g4.classify(REVIEWS, TEMPLATE, LABELS, method="vote")
    with pytest.raises(BatchInputError, match="do not apply to method='loglik'"):
        g4.classify(REVIEWS, TEMPLATE, LABELS, temp=0.5)
    with pytest.raises(BatchInputError, match="no column 'reveiw'|Did you mean 'review'"):
        g4.classify(REVIEWS, "{reveiw}", LABELS)
    with pytest.raises(BatchInputError, match="already has"):
        g4.classify(REVIEWS.assign(label="x"), TEMPLATE, LABELS)
    assert fake_manager.backend.calls == []
