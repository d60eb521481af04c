"""``%%gpt4all --df NAME`` and ``%gpt4all eval`` through a real InteractiveShell."""

from __future__ import annotations

import pandas as pd

import gpt4all_magic as g4
from helpers import run, usage_error


def test_the_cell_is_a_template_over_each_row(shell, manager, capsys):
    shell.user_ns["topics"] = pd.DataFrame({"topic": ["tea", "owls"]})
    shell.user_ns["style"] = "a {cheerful} tone"  # a notebook variable; its braces stay text
    result = run(shell, "%%gpt4all --df topics -t 0 -n 12 -o answers\nIn {style}, write one line about {topic}. {{x}}")
    assert result.success
    out = result.result
    assert isinstance(out, pd.DataFrame) and shell.user_ns["answers"] is out
    assert list(out["topic"]) == ["tea", "owls"] and (out["status"] == "ok").all()
    for topic, response in zip(out["topic"], out["response"]):
        prompt = f"In a {{cheerful}} tone, write one line about {topic}. {{x}}"
        assert response == g4.generate(prompt, temp=0, max_tokens=12, manager=manager).text
    assert "smollm2-135m-instruct · 2/2 rows" in capsys.readouterr().out


def test_the_df_form_reports_bad_input_in_one_line(shell, manager):
    shell.user_ns["frame"] = pd.DataFrame({"topic": ["tea"]})
    shell.user_ns["not_a_frame"] = [1, 2]
    assert "No variable named 'missing'" in usage_error(run(shell, "%%gpt4all --df missing\nAbout {topic}."))
    assert "needs a pandas DataFrame, but 'not_a_frame' is a list" in usage_error(
        run(shell, "%%gpt4all --df not_a_frame\nAbout {topic}."))
    assert "no column 'topik'" in usage_error(run(shell, "%%gpt4all --df frame\nAbout {topik}."))
    assert "cannot be combined with --df" in usage_error(run(shell, "%%gpt4all --df frame --chat\nAbout {topic}."))
    assert "The cell is empty" in usage_error(run(shell, "%%gpt4all --df frame\n  \n"))
    assert "--checkpoint only applies with --df" in usage_error(run(shell, "%%gpt4all --checkpoint x.jsonl\nHi"))
    assert run(shell, "%%gpt4all -t 0 -n 4\nSay hi.").success  # the kernel keeps working


def test_eval_subcommand_prints_the_table(shell, manager):
    result = run(shell, "%gpt4all eval arc_easy boolq")
    assert result.success
    table = result.result
    assert list(table.columns) == ["ARC-e", "BoolQ", "Average"]
    assert list(table.index) == ["smollm2-135m-instruct"]
    assert "Unknown task 'arc_esy'" in usage_error(run(shell, "%gpt4all eval arc_esy"))


def test_flags_are_in_the_generated_help(fake_shell, capsys):
    assert run(fake_shell, "%gpt4all help").success
    out = capsys.readouterr().out
    assert all(flag in out for flag in ("--df NAME", "--checkpoint PATH", "--parallel N", "eval"))
