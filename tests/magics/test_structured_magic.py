"""%%gpt4all --json / --schema / --choice through a real InteractiveShell: the cell's value is the parsed,
validated answer (also with -o), --df gives typed columns, and every misuse is one line."""

from __future__ import annotations

import json

import jsonschema
import pandas as pd
from helpers import run, usage_error

from gpt4all_magic.magics.structured_commands import pretty

PERSON = '''
from pydantic import BaseModel, Field
class Person(BaseModel):
    name: str = Field(max_length=20)
    age: int = Field(ge=0, le=120)
'''


def test_schema_cell_value_is_a_validated_pydantic_instance(shell):
    assert run(shell, PERSON).success
    result = run(shell, "%%gpt4all --schema Person -o who -n 60\nOld Tom turned 97 last week. Who and how old?")
    assert result.success, result.error_in_exec
    value = result.result
    person = shell.user_ns["Person"]
    assert isinstance(value, person) and shell.user_ns["who"] is value
    assert person.model_validate_json(value.model_dump_json()) == value  # a valid instance, bounds held
    assert json.loads(pretty(value)) == value.model_dump()


def test_json_inline_schema_and_choice_cells(shell):
    inline = run(shell, '%%gpt4all --schema \'{"type": "object", "properties": {"city": {"type": "string", '
                        '"maxLength": 20}}, "required": ["city"]}\' -n 40\nWhere is the Eiffel Tower?')
    assert inline.success, inline.error_in_exec
    jsonschema.validate(inline.result, {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
                                        "required": ["city"]})
    choice = run(shell, '%%gpt4all --choice "yes | no" -o answer\nIs the sky blue?')
    assert choice.success and choice.result in ("yes", "no") and shell.user_ns["answer"] == choice.result
    obj = run(shell, "%%gpt4all --json -n 80\nDescribe a cat with its name and age as JSON.")
    assert (obj.success and isinstance(obj.result, dict)) or "max_tokens" in usage_error(obj)


def test_schema_dict_variable_with_df_gives_typed_columns(shell):
    assert run(shell, "import pandas as pd\npeople = pd.DataFrame({'t': ['Ann is 30', 'Bob is 41']})\n"
                      "S = {'type': 'object', 'properties': {'name': {'type': 'string', 'maxLength': 10}, "
                      "'age': {'type': 'integer', 'minimum': 0, 'maximum': 120}}, 'required': ['name', 'age']}").success
    result = run(shell, "%%gpt4all --df people --schema S -o table\nExtract the person: {t}")
    assert result.success, result.error_in_exec
    frame = shell.user_ns["table"]
    assert frame is result.result and str(frame["age"].dtype) == "Int64" and str(frame["name"].dtype) == "string"
    valid = 0
    for text, status in zip(frame["response"], frame["status"]):
        if status == "ok":
            jsonschema.validate(json.loads(text), shell.user_ns["S"])
            valid += 1
    assert valid == 2


def test_choice_with_df_scores_the_labels(shell):
    shell.user_ns["reviews"] = pd.DataFrame({"r": ["Great!", "Awful."]})
    result = run(shell, '%%gpt4all --df reviews --choice "good|bad"\nIs this review good or bad? {r}')
    assert result.success, result.error_in_exec
    frame = result.result
    assert list(frame.columns) == ["r", "label", "p_good", "p_bad", "status", "error"]
    assert all(abs(a + b - 1) < 1e-9 for a, b in zip(frame["p_good"], frame["p_bad"]))
    flags = usage_error(run(shell, '%%gpt4all --df reviews --choice "good|bad" -t 0.5\n{r}'))
    assert "do not apply" in flags and "temp" in flags


def test_typed_cells_refuse_misuse_in_one_line(fake_shell):
    fake_shell.user_ns["Bad"] = {"type": "string", "pattern": "^(?=a)b$"}
    cases = {
        "%%gpt4all --schema Nope\nhi": "No variable named 'Nope'",
        "%%gpt4all --schema what?\nhi": "variable name or inline JSON",
        "%%gpt4all --schema '{oops'\nhi": "not JSON",
        "%%gpt4all --schema Bad\nhi": "lookaround",
        "%%gpt4all --json --choice 'a|b'\nhi": "alternatives",
        "%%gpt4all --choice 'a|a'\nhi": "given twice",
        "%%gpt4all --choice 'a'\nhi": "at least two labels",
        "%%gpt4all --json --chat\nhi": "--chat",
        "%%gpt4all --json -f code\nhi": "-f code",
    }
    for cell, words in cases.items():
        message = usage_error(run(fake_shell, cell))
        assert words in message, (cell, message)
    from gpt4all_magic.manager import get_manager

    assert get_manager().backend.calls == []  # refused before anything was generated


def test_an_answer_that_never_validates_is_one_line_with_the_text_shown(fake_shell, capsys):
    from gpt4all_magic.manager import get_manager

    backend = get_manager().backend
    backend.enqueue(['{"n": 5000}'])
    backend.enqueue(['{"n": 7000}'])
    fake_shell.user_ns["S"] = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 10}}}
    message = usage_error(run(fake_shell, "%%gpt4all --schema S\nA number?"))
    assert "even after one retry" in message and "5000" not in message and "7000" in capsys.readouterr().out
    backend.enqueue(['{"n": '])
    message = usage_error(run(fake_shell, "%%gpt4all --schema S -n 1\nA number?"))
    assert "max_tokens (1) cut the answer" in message
