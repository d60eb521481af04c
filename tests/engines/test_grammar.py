"""JSON Schema to grammar: integer ranges exactly right, unsupported features refused in one line, every
grammar accepted by llama.cpp's parser, and constrained decoding on the real model: batched rows give
the single call's greedy text, and what the grammar enforces holds in every answer."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from gpt4all_magic.engines.base import ResponseFormat, StreamStats
from gpt4all_magic.errors import SchemaError
from gpt4all_magic.options import GenerationOptions
from gpt4all_magic.structured.gbnf import MAX_DIGITS, check_schema, int_range, schema_to_gbnf


def _regex(expr: str) -> re.Pattern[str]:
    """The GBNF subset int_range writes ("lit", [a-b], {m,n}, groups, |) as a Python regex."""
    out = re.sub(r'"([^"]*)"', lambda m: re.escape(m.group(1)), expr)
    return re.compile(out.replace(" ", ""))


@pytest.mark.parametrize("low, high", [(0, 100), (1, 1000), (-5, 37), (18, None), (None, 5), (-120, -3),
                                       (7, 7), (0, 0), (95, 1204), (None, -10), (-1, None), (300, 2999)])
def test_int_range_matches_exactly_the_integers_in_range(low, high):
    pattern = _regex(int_range(low, high))
    for n in range(-1300, 3100):
        inside = (low is None or n >= low) and (high is None or n <= high)
        assert bool(pattern.fullmatch(str(n))) == inside, (low, high, n)
    for bad in ("-0", "007", "+5", "01", "1.0", ""):
        assert not pattern.fullmatch(bad), (low, high, bad)
    if high is None:  # unbounded above: as long as the converter's integers, no longer
        assert pattern.fullmatch("9" * MAX_DIGITS) and not pattern.fullmatch("9" * (MAX_DIGITS + 1))


def test_empty_integer_range_is_refused():
    with pytest.raises(SchemaError, match="minimum 5 > maximum 2"):
        schema_to_gbnf({"type": "integer", "minimum": 5, "maximum": 2})


@pytest.mark.parametrize("schema, words", [
    ({"type": "string", "pattern": "^(?=a)b$"}, "lookaround"),
    ({"type": "string", "pattern": r"^(a)\1$"}, "backreference"),
    ({"type": "string", "pattern": r"^\bword$"}, "word boundary"),
    ({"type": "string", "pattern": '^say "hi"$'}, "quote or backslash"),
    ({"$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
      "$ref": "#/$defs/Node"}, "$ref cycle"),
    ({"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}}, "not local"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}}, "points to nothing"),
    ({"not": {"type": "string"}}, "'not'"),
    ({"type": "object", "if": {}, "then": {}}, "'if'/'then'/'else'"),
    ({"type": "object", "patternProperties": {"^x": {}}}, "'patternProperties'"),
    ({"type": "string", "enum": []}, "enum at # is empty"),
    ({"allOf": [{"type": "string"}, {"maxLength": 3}]}, "'allOf'"),
    ([1, 2], "must be a dict"),
])
def test_unsupported_features_are_refused_in_one_line_naming_them(schema, words):
    with pytest.raises(SchemaError) as info:
        check_schema(schema)
    message = str(info.value)
    assert words in message and "\n" not in message


def test_a_schema_can_nest_without_cycles():
    schema = {"$defs": {"Leaf": {"type": "object", "properties": {"v": {"type": "integer"}}, "required": ["v"]}},
              "type": "object", "properties": {"a": {"$ref": "#/$defs/Leaf"}, "b": {"$ref": "#/$defs/Leaf"}},
              "required": ["a", "b"]}
    assert "root ::=" in schema_to_gbnf(schema)


GRAMMARS = [
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": -3, "maximum": 250}}, "required": ["n"]},
    {"type": "object", "properties": {"x": {"type": "number", "minimum": 0, "maximum": 5}}, "required": ["x"]},
    {"type": "string", "pattern": r"^\d{3}-[A-Z]\.x$"},
    {"type": "string", "pattern": r"[a-z]+\s\d"},
    {"type": "string", "pattern": r"^[\w.-]+$"},
    {"type": "array", "items": {"type": "string", "maxLength": 5}, "minItems": 1, "maxItems": 2},
    {"type": "object"},
    {"type": "string", "enum": ["a|b", 'say "x"', "back\\slash"]},
]


@pytest.mark.parametrize("schema", GRAMMARS)
def test_llama_cpp_parses_every_grammar(manager, schema):
    manager.check_format(ResponseFormat(schema))  # llama.cpp's own parser: a bad grammar raises SchemaError


def _constrained(model, schema, prompts, max_tokens=60):
    fmt = ResponseFormat(schema)
    opts = GenerationOptions(temp=0, repeat_penalty=1.0, max_tokens=max_tokens, seed=3)
    single = []
    for prompt in prompts:
        stats = StreamStats()
        text = "".join(model.stream_chat([{"role": "user", "content": prompt}], opts, stats, lambda: False,
                                         response_format=fmt))
        single.append((text, stats.finish_reason))
    batched = model.generate_many([[{"role": "user", "content": p}] for p in prompts], opts, response_format=fmt)
    return single, [(text, stats.finish_reason) for text, stats, _ in batched]


def test_batched_rows_give_the_single_greedy_answer_and_obey_the_grammar(manager):
    schema = {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 12},
        "count": {"type": "integer", "minimum": 0, "maximum": 1000},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["red", "green", "blue"]}, "maxItems": 2}},
        "required": ["name", "count", "tags"]}
    prompts = ["Describe a big warehouse full of 2450 red and blue boxes as JSON.",
               "A farmer has 17 green apples. Answer in JSON.",
               "Count the stars: there are about 100000 of them. Reply with JSON.",
               "Name: Bartholomew Fitzgerald-Smythe, items: 3. JSON please."]
    single, batched = _constrained(manager.current, schema, prompts)
    assert single == batched
    valid = 0
    for text, finish in batched:
        assert finish == "stop", text  # every answer closed its JSON and the grammar then allowed only the end
        jsonschema.validate(json.loads(text), schema)  # bounds, lengths, enums and required keys all held
        valid += 1
    assert valid == len(prompts)


def test_patterns_and_number_bounds_hold_in_answers(manager):
    schema = {"type": "object", "properties": {
        "code": {"type": "string", "pattern": r"^[A-Z]{2}\d{3}$"},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1}}, "required": ["code", "ratio"]}
    _, batched = _constrained(manager.current, schema, ["Give a product code like AB123 and a ratio of 1.5.",
                                                        "Invent a code and the ratio -3 as JSON."])
    ok = 0
    for text, _ in batched:
        data = json.loads(text)
        jsonschema.validate(data, schema)
        assert re.fullmatch(r"[A-Z]{2}[0-9]{3}", data["code"])
        ok += 1
    assert ok == 2


def test_max_tokens_cuts_a_constrained_answer_with_length(manager):
    single, batched = _constrained(manager.current, {"type": "object", "properties": {
        "story": {"type": "string"}}, "required": ["story"]}, ["Write a long story about the sea as JSON."],
        max_tokens=8)
    assert single == batched
    text, finish = batched[0]
    assert finish == "length"
    with pytest.raises(ValueError):
        json.loads(text)


@pytest.mark.parametrize("penalty", [1.0, 1.3])
def test_picks_near_the_top_are_the_picks_over_the_whole_vocabulary(manager, monkeypatch, penalty):
    """Greedy grammar rows look at the NEAR_TOP best logits first; the answers must not change (also
    with a repeat penalty, which moves logits), and far fewer picks should need all 49,152 tokens."""
    from gpt4all_magic.engines.llama import sampling

    schema = {"type": "object", "properties": {
        "city": {"type": "string", "maxLength": 20}, "population": {"type": "integer", "minimum": 0},
        "rivers": {"type": "array", "items": {"type": "string", "maxLength": 15}, "maxItems": 3}},
        "required": ["city", "population", "rivers"]}
    chats = [[{"role": "user", "content": p}] for p in (
        "Paris has 2100000 people and the Seine. Answer as JSON.",
        "Tell me about Cairo, its 10 million people and the Nile, in JSON.",
        "A village called Oakridge, 312 inhabitants, two streams: Elm and Ash. JSON only.")]
    opts = GenerationOptions(temp=0, repeat_penalty=penalty, max_tokens=70, seed=3)
    whole_picks = []
    real_pick = sampling.GrammarSampler._pick
    monkeypatch.setattr(sampling.GrammarSampler, "_pick",
                        lambda self, logits, *, masked: whole_picks.append(masked) or real_pick(self, logits,
                                                                                                 masked=masked))

    def answers():
        whole_picks.clear()
        out = [text for text, _, _ in manager.current.generate_many(chats, opts, response_format=ResponseFormat(schema))]
        return out, len(whole_picks)

    near, near_count = answers()
    monkeypatch.setattr(sampling, "NEAR_TOP", 10**9)  # larger than the vocabulary: every pick over all of it
    whole, whole_count = answers()
    assert near == whole
    assert sum(len(text) for text in near) > 60
    assert near_count * 4 < whole_count, (near_count, whole_count)
