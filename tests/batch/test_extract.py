"""extract(): typed columns from a schema over DataFrame rows. On the real model: a dozen schemas whose
answers are counted as they validate (independently, with jsonschema or pydantic); on the scripted fake:
the retry with the error in the prompt, invalid and interrupted rows, checkpoints and bad input."""

from __future__ import annotations

import json
from typing import Literal, Optional

import jsonschema
import pandas as pd
import pytest
from pydantic import BaseModel, Field, ValidationError

import gpt4all_magic as g4
from gpt4all_magic.bench.structured_cases import CASES, pydantic_cases
from gpt4all_magic.errors import BatchInputError, SchemaError

FINAL = {"ok", "invalid", "truncated"}


def _validates(schema, text: str) -> bool:
    """Independent of the package: pydantic for a model class, jsonschema for a dict."""
    try:
        if hasattr(schema, "model_validate_json"):
            schema.model_validate_json(text)
        else:
            jsonschema.validate(json.loads(text), schema)
    except (ValueError, ValidationError, jsonschema.ValidationError):
        return False
    return True


def test_a_dozen_schemas_validate_on_at_least_95_percent_of_rows(manager):
    cases = CASES + pydantic_cases()
    assert len(cases) == 12
    total = validated = 0
    for case in cases:
        frame = g4.extract(pd.DataFrame({"text": list(case.texts)}), case.template, case.schema, progress=False,
                           max_tokens=128)
        for _, row in frame.iterrows():
            total += 1
            assert row["status"] in FINAL, (case.name, row["status"], row["error"])
            if row["status"] == "ok":
                assert _validates(case.schema, row["response"]), (case.name, row["response"])
                data = json.loads(row["response"])
                for field in data:  # the typed columns hold the answer's values
                    value = row[field]
                    assert value == data[field] or (data[field] is None and pd.isna(value)), (case.name, field)
                validated += 1
            else:  # never silently invalid: the reason and the text are kept
                assert row["error"] and row["response"], (case.name, row.to_dict())
                assert not _validates(case.schema, row["response"]), (case.name, row["response"])
    print(f"\n{validated}/{total} rows validate")
    assert total == 48
    assert validated >= 0.95 * total


class Record(BaseModel):
    name: str = Field(max_length=20)
    age: int = Field(ge=0, le=120)
    height_m: float = Field(ge=0, le=3)
    member: bool
    level: Literal["bronze", "silver", "gold"]
    nickname: Optional[str] = Field(default=None, max_length=10)
    hobbies: list[str] = Field(max_length=2)


def test_fields_become_columns_with_real_dtypes(manager):
    df = pd.DataFrame({"text": ["Ann, 34, 1.70 m tall, gold member, likes chess and tea.",
                                "Bob is 41, 1.85 m, not a member, bronze level, nickname Bobby."]},
                      index=["a", "b"])
    out = df.gpt4all.extract("Describe this person as JSON.\n\n{text}", Record, progress=False, max_tokens=120)
    assert list(out.index) == ["a", "b"] and list(out["text"]) == list(df["text"])
    dtypes = {c: str(out[c].dtype) for c in Record.model_fields}
    assert dtypes == {"name": "string", "age": "Int64", "height_m": "Float64", "member": "boolean",
                      "level": "string", "nickname": "string", "hobbies": "object"}
    ok = 0
    for _, row in out.iterrows():
        if row["status"] == "ok":
            parsed = Record.model_validate_json(row["response"])
            assert row["age"] == parsed.age and row["member"] == parsed.member and row["hobbies"] == parsed.hobbies
            ok += 1
    assert ok == 2, out[["status", "error", "response"]].to_dict("records")
    assert out.attrs["kind"] == "extract" and out.attrs["options"]["temp"] == 0.0


def test_a_schema_without_properties_gives_one_data_column(manager):
    out = g4.extract(pd.DataFrame({"q": ["a red apple"]}), "Describe {q} as a JSON object.", {"type": "object"},
                     progress=False, max_tokens=60)
    rows = out.to_dict("records")
    ok = [r for r in rows if r["status"] == "ok" and isinstance(r["data"], dict) and
          r["data"] == json.loads(r["response"])]
    assert len(ok) + sum(r["status"] == "truncated" for r in rows) == 1


def test_max_tokens_mid_json_marks_the_row_truncated_with_its_text(manager):
    out = g4.extract(pd.DataFrame({"text": ["Write a long story about the sea."]}), "{text}",
                     {"type": "object", "properties": {"story": {"type": "string"}}, "required": ["story"]},
                     progress=False, max_tokens=6)
    row = out.iloc[0]
    assert row["status"] == "truncated" and "max_tokens" in row["error"]
    assert row["response"].startswith("{") and pd.isna(row["story"])


# -- the scripted fake: retries, invalid rows, interrupts, checkpoints ---------------------------------------

class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=120)


def test_an_invalid_answer_is_retried_once_with_the_error_then_marked(fake_manager):
    backend = fake_manager.backend
    for answer in ('{"name": "Ann", "age": 30}', '{"name": "Bob", "age": 200}', '{"name": "Cy", "age": 300}',
                   '{"name": "Bob", "age": 41}', '{"name": "Cy", "age": 999}'):
        backend.enqueue([answer])
    df = pd.DataFrame({"text": ["Ann is 30", "Bob is 41", "Cy is 9"]})
    out = g4.extract(df, "Who? {text}", Person, progress=False, chunk_size=3)
    assert list(out["status"]) == ["ok", "ok", "invalid"]
    assert list(out["retried"]) == [False, True, True]
    assert out["age"].iloc[:2].tolist() == [30, 41] and pd.isna(out["age"].iloc[2])
    assert "age" in out["error"][2] and out["response"][2] == '{"name": "Cy", "age": 999}'
    retry = backend.calls[3]  # the retry conversation carries the first answer and the validation error
    assert retry[1] == {"role": "assistant", "content": '{"name": "Bob", "age": 200}'}
    assert "less than or equal to 120" in retry[2]["content"]
    assert all(f is not None and f.schema == Person.model_json_schema() for f in backend.formats)


def test_ctrl_c_keeps_finished_rows_and_a_checkpoint_resumes(fake_manager, tmp_path):
    backend = fake_manager.backend
    backend.enqueue(['{"name": "A", "age": 1}'])
    backend.enqueue(['{"name": ', KeyboardInterrupt()])
    df = pd.DataFrame({"text": ["a", "b", "c"]})
    path = tmp_path / "run.jsonl"
    first = g4.extract(df, "{text}", Person, progress=False, checkpoint=path)
    assert list(first["status"]) == ["ok", "interrupted", "not_run"]
    assert first["response"][1] == '{"name": ' and first.attrs["interrupted"]
    backend.enqueue(['{"name": "B", "age": 2}'])
    backend.enqueue(['{"name": "C", "age": 3}'])
    calls = len(backend.calls)
    second = g4.extract(df, "{text}", Person, progress=False, checkpoint=path)
    assert list(second["status"]) == ["ok"] * 3 and second.attrs["resumed_rows"] == 1
    assert list(second["age"]) == [1, 2, 3] and len(backend.calls) == calls + 2


@pytest.mark.parametrize("kwargs, error, words", [
    ({"schema": None}, SchemaError, "Pass schema="),
    ({"schema": 42}, SchemaError, "pydantic model class, a JSON Schema dict or JSON text"),
    ({"schema": Person(name="x", age=1)}, SchemaError, "not an instance"),
    ({"schema": "{not json"}, SchemaError, "not JSON"),
    ({"schema": {"type": "strin"}}, SchemaError, "Not a valid JSON Schema"),
    ({"schema": {"type": "string", "pattern": "^(?=x)y$"}}, SchemaError, "lookaround"),
    ({"schema": {"type": "object", "properties": {"status": {"type": "string"}}}}, SchemaError, "clash"),
    ({"schema": Person, "template": "{txet}"}, BatchInputError, "Did you mean 'text'"),
    ({"schema": Person, "template": "{n}"}, BatchInputError, "not text"),
    ({"schema": {"type": "object", "properties": {"text": {"type": "string"}}}}, BatchInputError, "already has"),
])
def test_bad_input_is_refused_before_any_work_in_one_line(fake_manager, tmp_path, kwargs, error, words):
    df = pd.DataFrame({"text": ["a", "b"], "n": [None, "x"]})
    kwargs = {"template": "{text}", **kwargs}
    path = tmp_path / "c.jsonl"
    with pytest.raises(error) as info:
        g4.extract(df, kwargs.pop("template"), kwargs.pop("schema"), progress=False, checkpoint=path)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert fake_manager.backend.calls == [] and not path.exists()
