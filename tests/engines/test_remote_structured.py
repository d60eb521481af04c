"""Typed answers from servers: llama_cpp.server gets the schema (in its json_object shape after refusing the
json_schema one) and answers validate; a server that ignores response_format is named once per
connection and its answers are marked invalid, never passed off as valid."""

from __future__ import annotations

import pandas as pd
import pytest
from openai_fakes import FakeOpenAIServer
from pydantic import BaseModel, Field

from gpt4all_magic.api import connect, generate
from gpt4all_magic.batch.extract import extract
from gpt4all_magic.errors import StructuredOutputError

CITY = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}}, "required": ["city"]}


class Person(BaseModel):
    name: str = Field(max_length=20)
    age: int = Field(ge=0, le=120)


def test_llama_cpp_server_follows_the_schema_in_its_own_shape(remote):
    result = generate("Where is the Eiffel Tower? Answer with the city.", schema=CITY, manager=remote, max_tokens=40)
    assert isinstance(result.data, dict) and isinstance(result.data["city"], str) and len(result.data["city"]) <= 20
    assert remote.current.format_style == "json_object"  # it refused the json_schema shape (HTTP 422) once
    assert not any("response_format" in n for n in result.notices)
    frame = extract(pd.DataFrame({"q": ["Paris", "Rome"]}), "Which city is {q}? JSON.", CITY, manager=remote,
                    progress=False, max_tokens=40)
    assert (frame["status"] == "ok").sum() == 2 and frame["city"].str.len().max() <= 20


def test_a_server_that_ignores_response_format_is_named_once_and_rows_are_invalid(remote_manager, capsys):
    with FakeOpenAIServer() as fake:  # it echoes the prompt whatever response_format says
        connect(fake.url, manager=remote_manager)
        frame = extract(pd.DataFrame({"t": ["Ann is 30", "Bob is 41"]}), "{t}", Person, manager=remote_manager,
                        progress=False)
        assert list(frame["status"]) == ["invalid", "invalid"] and list(frame["retried"]) == [True, True]
        assert frame["response"].str.startswith("Echo:").all() and frame["age"].isna().all()
        assert capsys.readouterr().err.count("does not seem to follow response_format") == 1
        with pytest.raises(StructuredOutputError) as info:
            generate("Who is 30?", schema=Person, manager=remote_manager)
        assert info.value.status == "invalid" and info.value.result.text.startswith("Echo:")
        assert not any("response_format" in n for n in info.value.result.notices)  # said once per connection
        sent = [body["response_format"] for path, body in fake.requests if path == "/v1/chat/completions"]
        assert sent and all(f == {"type": "json_schema", "json_schema": {
            "name": "Person", "schema": Person.model_json_schema(), "strict": True}} for f in sent)
