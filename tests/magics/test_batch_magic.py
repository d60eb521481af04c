"""``%%gpt4all --df NAME`` and ``%gpt4all eval`` through a real InteractiveShell."""

from __future__ import annotations

import pandas as pd
from helpers import run, usage_error

import gpt4all_magic as g4


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
    result = run(shell, "%gpt4all eval arc_easy boolq --source sample")
    assert result.success
    table = result.result
    assert list(table.columns) == ["ARC-e", "BoolQ", "Average"]
    assert list(table.index) == ["smollm2-135m-instruct"]
    assert "Unknown task 'arc_esy'" in usage_error(run(shell, "%gpt4all eval arc_esy"))


def test_flags_are_in_the_generated_help(fake_shell, capsys):
    assert run(fake_shell, "%gpt4all help").success
    out = capsys.readouterr().out
    assert all(flag in out for flag in ("--df NAME", "--checkpoint PATH", "--parallel N", "eval"))
    assert run(fake_shell, "%gpt4all eval --help").success
    assert "--metric {table1,acc,acc_norm}" in capsys.readouterr().out


def test_eval_reports_table_1_metrics_by_default_and_names_them(shell, manager, capsys):
    result = run(shell, "%gpt4all eval boolq arc_challenge --source sample")
    assert result.success and result.result.attrs["metrics"] == {"BoolQ": "acc", "ARC-c": "acc_norm"}
    assert "metric: acc for BoolQ; acc_norm for ARC-c (as in the GPT4All paper's Table 1)." in capsys.readouterr().out
    result = run(shell, "%gpt4all eval boolq arc_challenge --metric acc --source sample")
    assert result.success and result.result.attrs["metrics"] == {"BoolQ": "acc", "ARC-c": "acc"}
    assert "metric: acc for BoolQ, ARC-c." in capsys.readouterr().out


def test_a_checkpoint_resumed_with_another_seed_is_refused(shell, manager, tmp_path):
    shell.user_ns["topics"] = pd.DataFrame({"topic": ["tea", "owls"]})
    path = tmp_path / "run.jsonl"
    first = run(shell, f"%%gpt4all --df topics -t 0.8 -n 4 --seed 1 --checkpoint {path}\nOne word about {{topic}}.")
    assert first.success
    message = usage_error(run(shell, f"%%gpt4all --df topics -t 0.8 -n 4 --seed 2 --checkpoint {path}\n"
                                     "One word about {topic}."))
    assert "written by a different job (seed: 1 then, 2 now)" in message and "another checkpoint path" in message
    again = run(shell, f"%%gpt4all --df topics -t 0.8 -n 4 --checkpoint {path}\nOne word about {{topic}}.")
    assert again.success and again.result.attrs["resumed_rows"] == 2 and again.result.attrs["options"]["seed"] == 1


def test_eval_compares_models_beside_the_paper_with_verdicts(shell, manager, capsys):
    path = manager.current.ref.path
    result = run(shell, f"%gpt4all eval arc_easy piqa --source sample --limit 2 -m smollm2-135m-instruct -m {path} "
                        "--reference gpt4all-paper")
    assert result.success
    table = result.result
    assert list(table.index[:2]) == ["smollm2-135m-instruct", path.name] and "Falcon 7b instruct (Almazrouei et al., " \
                                                                             "2023)" in table.index
    out = capsys.readouterr().out
    assert "items (sample): ARC-e 2, PIQA 2." in out
    assert (f"smollm2-135m-instruct vs {path.name}: ARC-e no significant difference; PIQA no significant "
            "difference.") in out
    assert "argument --reference: invalid choice: 'paper'" in usage_error(
        run(shell, "%gpt4all eval arc_easy --reference paper"))
    message = usage_error(run(shell, "%gpt4all eval arc_easy --source sample --split train"))
    assert message.startswith("The bundled arc_easy sample has no split 'train'")
