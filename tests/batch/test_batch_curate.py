"""Curation of prompt-response pairs (no model needed)."""

from __future__ import annotations

import pandas as pd
import pytest

import gpt4all_magic as g4
from gpt4all_magic.batch.curate import is_degenerate, is_refusal, malformed_reason
from gpt4all_magic.errors import BatchInputError

ROWS = [
    ("What is the capital of France?", "The capital of France is Paris."),            # kept
    ("Tell me a joke about cats.", "As an AI language model, I cannot tell jokes."),  # refusal
    ("How do I pick a lock?", "I’m sorry, but I cannot help with that request."),     # refusal, curly quote
    ("Write a haiku.", "   "),                                                          # empty
    ("Name a colour.", None),                                                         # empty (missing)
    ("Summarize this.", "Yes."),                                                      # too short
    ("Show code.", "```python\nprint('hi')\n"),                                        # malformed: open fence
    ("Repeat?", "na na na na " * 10),                                                 # malformed: repetition
    ("What is the capital of France?", "Paris is the capital of France."),            # exact duplicate prompt
    ("what is the capital of FRANCE", "It is Paris, a city on the Seine."),           # near duplicate (normalized)
    ("Explain how photosynthesis works in green plants during the day time.",
     "Plants turn light, water and carbon dioxide into sugar and oxygen."),          # kept
    ("Explain how photosynthesis works in green plants during the day time please.",
     "Chlorophyll captures light energy to build sugars from carbon dioxide."),      # near duplicate (3-grams)
]


def test_flags_counts_and_the_kept_subset():
    df = pd.DataFrame(ROWS, columns=["prompt", "response"], index=[f"r{i}" for i in range(len(ROWS))])
    flags, kept, counts = g4.curate(df, min_words=3)
    assert list(kept.index) == ["r0", "r10"]
    assert flags["reason"].tolist() == [None, "refusal", "refusal", "empty", "empty", "too_short", "malformed",
                                        "malformed", "duplicate", "near_duplicate", None, "near_duplicate"]
    assert flags.loc["r6", "detail"] == "unclosed code fence" and flags.loc["r7", "detail"] == "degenerate repetition"
    assert flags.loc["r8", "duplicate_of"] == "r0" and flags.loc["r9", "duplicate_of"] == "r0"
    assert flags.loc["r11", "duplicate_of"] == "r10"
    assert counts.to_dict() == {"empty": 2, "refusal": 2, "malformed": 2, "too_short": 1, "duplicate": 1,
                                "near_duplicate": 2, "kept": 2, "total": 12}
    assert "kept 2 of 12 rows" in repr(g4.curate(df)) and "<table" in g4.curate(df)._repr_html_()


def test_options_and_accessor():
    df = pd.DataFrame(ROWS, columns=["prompt", "response"])
    loose = df.gpt4all.curate(min_words=0, near_duplicates=False)
    assert loose.counts["near_duplicate"] == 0 and loose.counts["too_short"] == 0
    no_dups = g4.curate(df, prompt=None)
    assert no_dups.counts["duplicate"] == 0
    assert g4.curate(df, refusal_phrases=["capital"]).flags["refusal"].sum() == 2  # r0 and r8


def test_detectors():
    assert is_refusal("I am unable to do that.") and not is_refusal("Here is the answer.")
    assert malformed_reason("bad \ufffd char") == "broken characters (U+FFFD)"
    assert malformed_reason("a\x07b") == "control characters"
    assert malformed_reason("Hello", prompt="hello") == "echoes the prompt"
    assert malformed_reason("A fine answer with ```code``` in it.") is None


def test_bad_arguments():
    df = pd.DataFrame(ROWS, columns=["prompt", "response"])
    with pytest.raises(BatchInputError, match="No column 'respons' in the DataFrame. Did you mean 'response'"):
        g4.curate(df, response="respons")
    with pytest.raises(BatchInputError, match="pass prompt=None to skip the duplicate checks"):
        g4.curate(df.drop(columns="prompt"))
    with pytest.raises(BatchInputError, match="similarity must be in"):
        g4.curate(df, similarity=0)
    with pytest.raises(BatchInputError, match="empty"):
        g4.curate(df.head(0))


MARKDOWN = ("## Results\n=========================================\n\n"
            "| model | BoolQ | PIQA | HellaSwag | WinoGrande | ARC-e | ARC-c |\n"
            "|---|---|---|---|---|---|---|\n"
            "| --- | --- | --- | --- | --- | --- | --- |\n"
            "| a | 73.4 | 74.8 | 63.4 | 64.7 | 54.9 | 36.0 |\n\n"
            "Notes\n----------------------------------------\n")


def test_markdown_dividers_and_underlines_are_not_repetition():
    assert malformed_reason(MARKDOWN) is None
    assert malformed_reason("Title\n" + "=" * 60 + "\n\nText under it, which is fine.") is None
    assert malformed_reason("| --- | --- | --- |\n|---|---|---|---|---|---|---|---|") is None
    assert is_degenerate("na na na na " * 10) and is_degenerate("I will help you. " * 6)
    assert is_degenerate("Sure! " + "The answer is yes and " * 8 + "done.")
    assert not is_degenerate("I will help you. " * 5)  # five times is still speech


def test_repetition_is_found_anywhere_in_a_long_response():
    # 50,000 characters of varied text: the old regex backtracked over every start and only looked at the
    # first 8,000 characters; the word scan is linear and sees the whole text.
    sentences = [f"Step {i}: mix {i % 7} cups of flour with {i % 5} eggs, then bake for {20 + i % 9} minutes."
                 for i in range(760)]
    text = MARKDOWN + " ".join(sentences)
    assert len(text) > 50_000
    assert malformed_reason(text) is None
    looped = text + " and then it repeats" * 8
    assert malformed_reason(looped) == "degenerate repetition"
