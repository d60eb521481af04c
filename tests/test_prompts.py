"""Brace-safe ``{name}`` interpolation: braces in JSON, CSS and C stay, code is not templated."""

from __future__ import annotations

import pytest
from helpers import run

from gpt4all_magic.prompts import escape, fields, fill, interpolate

NS = {"topic": "tea", "i": 3, "x": 1, "src": "def f():\n    return {1: 2}"}

NESTED = [
    '{"a": {"b": 1}}',
    '[{"k": {"v": [1, {"w": 2}]}}]',
    "@media (x) { .b { color: blue; }}",
    "if (a) { if (b) { f(); }}",
    "int main() {{ return 0; }}",
    "{{ jinja }} and {%- block x %}{% endblock %}",
]


@pytest.mark.parametrize("text", NESTED)
@pytest.mark.parametrize("namespace", [{}, NS], ids=["no-variables", "variables"])
def test_nested_braces_are_untouched(text, namespace):
    assert fill(text, namespace) == (text, [], [])
    assert fill(f"Fix {{topic}}: {text}", namespace).text == f"Fix {namespace.get('topic', '{topic}')}: {text}"


def test_escaped_field_is_the_literal_field():
    assert interpolate("{{topic}} is {topic}; {{{topic}}}", NS) == ("{topic} is tea; {{topic}}", [])
    assert interpolate("{{nope}}", {}) == ("{nope}", [])


def test_prose_fields_defined_and_undefined():
    filled = fill("About {topic} ({topic.upper}) and {nope} and {topic._secret}.", NS)
    assert filled.text.startswith("About tea (<built-in method upper")
    assert filled.text.endswith(" and {nope} and {topic._secret}.")
    assert filled.missing == ["nope", "topic._secret"] and filled.in_code == []
    assert filled.notes()[0] == "{nope} left as is: no variable named 'nope' (write {{nope}} for literal braces)."


def test_code_fence_is_untouched_with_a_note():
    cell = 'Why does this fail?\n```python\nprint(f"row {i}")\ns = {x}\n{{x}} {nope}\n```\nThanks, {topic}.'
    filled = fill(cell, NS)
    assert filled.text == cell.replace("{topic}", "tea")
    assert filled.missing == [] and filled.in_code == ["i", "x"]
    assert filled.notes() == [("{i} and {x} inside code left as is; put each on a line of its own inside the "
                               "fence, or outside code, to insert the variables.")]
    one = fill("~~~\nf({i})\n~~~", NS).notes()
    assert one == [("{i} inside code left as is; put it on a line of its own inside the fence, or outside code, "
                    "to insert the variable.")]


def test_lone_placeholder_line_in_a_fence_is_filled():
    cell = "Explain this:\n```python\n{src}\n```\n~~~~\n  {topic}  \n{{topic}}\n{nope}\n~~~~"
    filled = fill(cell, NS)
    assert filled.text == ("Explain this:\n```python\ndef f():\n    return {1: 2}\n```\n"
                           "~~~~\n  tea  \n{topic}\n{nope}\n~~~~")
    assert filled.missing == ["nope"] and filled.in_code == []
    assert fields(cell) == ["src", "topic", "nope"]


def test_inline_code_is_untouched():
    filled = fill("Use `{x}` or ``a `{i}` b`` with {x}; a lone ` is text: {i}", NS)
    assert filled.text == "Use `{x}` or ``a `{i}` b`` with 1; a lone ` is text: 3"
    assert filled.in_code == ["x", "i"]
    assert fill("```py``` {x}", NS).text == "```py``` 1"  # one line of backticks is inline code, not a fence
    assert fill("a ` b\n\nc {x} `", NS).text == "a ` b\n\nc 1 `"  # a span does not cross a blank line


def test_unterminated_fence_runs_to_the_end():
    cell = "Review:\n````js\nconst s = `${x}`; if (a) {{ b() }}\n```\nstill code {topic}\n{topic}\n"
    filled = fill(cell, NS)
    assert filled.text == cell.replace("\n{topic}\n", "\ntea\n")
    assert filled.in_code == ["x", "topic"]


def test_fields_and_escape():
    assert fields("a {x} `{y}` {{z}} {x.real}\n```\n{w}\n{q} x\n```") == ["x", "x.real", "w"]
    for text in ["{a}", "{{a}}", '{"a": 1}', "{a}}", "{{a}", "x {a.b} y"]:
        assert fill(escape(text), {"a": 9}).text == text


def test_the_magic_sends_code_untouched_and_fills_the_rest(fake_shell, fake_manager):
    fake_shell.user_ns.update(i=3, topic="tea", src="x = {'k': 1}")
    cell = ('%%gpt4all -f text\nAbout {topic}: {"a": {"b": 1}}\n```python\nprint(f"row {i}")\n{src}\n```\n'
            "Also `{i}` and {{topic}}.")
    assert run(fake_shell, cell).success
    sent = fake_manager.backend.calls[-1][-1]["content"]
    assert sent == ('About tea: {"a": {"b": 1}}\n```python\nprint(f"row {i}")\nx = {\'k\': 1}\n```\n'
                    "Also `{i}` and {topic}.")


def test_the_magic_notes_a_variable_left_in_code(fake_shell, fake_manager, capsys):
    fake_shell.user_ns.update(i=3)
    assert run(fake_shell, "%%gpt4all\nWhy?\n```python\nprint(f'row {i}')\n```").success
    assert fake_manager.backend.calls[-1][-1]["content"] == "Why?\n```python\nprint(f'row {i}')\n```"
    assert ("note: {i} inside code left as is; put it on a line of its own inside the fence, or outside code, "
            "to insert the variable.") in capsys.readouterr().err


def test_row_templates_follow_the_same_rules():
    import pandas as pd

    from gpt4all_magic.batch import generate as batch
    from gpt4all_magic.errors import BatchInputError

    df = pd.DataFrame({"text": ["a", "b"]})
    template = '{"k": {text}} `{text}` {{text}}\n```\nf"{text} {nope}"\n{text}\n```'
    assert batch.render_template(df, template) == [
        f'{{"k": {t}}} `{{text}}` {{text}}\n```\nf"{{text}} {{nope}}"\n{t}\n```' for t in "ab"]
    assert batch.render_template(df, "{style}: {text}", {"style": '{"a": {"b": 1}}', "text": "no"}) == [
        '{"a": {"b": 1}}: a', '{"a": {"b": 1}}: b']  # a column wins over a variable of the same name
    with pytest.raises(BatchInputError, match="no column 'nope'"):
        batch.render_template(df, "{nope} {text}")
    with pytest.raises(BatchInputError, match="no {column} field"):
        batch.render_template(df, "`{text}`")


def test_the_df_magic_fills_variables_and_columns_in_one_pass(fake_shell, fake_manager, capsys):
    import pandas as pd

    fake_shell.user_ns.update(rows=pd.DataFrame({"topic": ["tea", "owls"]}), cfg='{"a": {"b": 1}}', i=3)
    cell = "%%gpt4all --df rows -f text\nAbout {topic} with {cfg} {{x}}\n```\nprint(f'{i} {topic}')\n{cfg}\n```"
    assert run(fake_shell, cell).success
    sent = sorted(call[-1]["content"] for call in fake_manager.backend.calls)
    assert sent == [f'About {t} with {{"a": {{"b": 1}}}} {{x}}\n```\nprint(f\'{{i}} {{topic}}\')\n'
                    f'{{"a": {{"b": 1}}}}\n```' for t in ("owls", "tea")]
    assert "{i} and {topic} inside code left as is" in capsys.readouterr().err
