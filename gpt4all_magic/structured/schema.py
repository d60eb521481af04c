"""What a typed answer must look like, and checking an answer against it.

:class:`Schema` wraps the three ways to say it: a pydantic v2 model class (validated with pydantic, the
answer becomes an instance), a JSON Schema dict or its JSON text (validated with ``jsonschema``, the
answer is a dict or list), and a list of labels (the answer is one of them). :meth:`Schema.parse`
turns an answer's text into ``ok`` (with the validated value), ``truncated`` (``max_tokens`` cut the
JSON) or ``invalid`` (with a one-line reason); :meth:`Schema.retry_messages` asks again once with that
reason. pydantic and jsonschema are imported on first use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import SchemaError
from .gbnf import check_schema, describe

__all__ = ["ANY_OBJECT", "TYPED_DEFAULTS", "Parsed", "Schema", "check_labels", "validate_json"]

ANY_OBJECT: dict[str, Any] = {"type": "object"}
# Generation defaults for typed answers where the caller sets none: greedy, and no repeat penalty (it
# pushes a model away from the quotes, commas and braces every JSON answer repeats).
TYPED_DEFAULTS: dict[str, Any] = {"temp": 0.0, "repeat_penalty": 1.0}
_DTYPES = {"integer": "Int64", "number": "Float64", "boolean": "boolean", "string": "string"}
_MAX_ERROR = 300


@dataclass(frozen=True)
class Parsed:
    """One answer checked against a schema: ``status`` is ``"ok"``, ``"truncated"`` or ``"invalid"``."""

    status: str
    value: Any = None  # the validated value (pydantic instance, dict, list, label)
    record: Any = None  # the same as JSON data (a dict for objects): what goes into DataFrame columns
    error: str | None = None


@dataclass(frozen=True, eq=False)
class Schema:
    """A JSON Schema plus how to validate answers against it (see the module doc)."""

    json_schema: dict[str, Any]
    model: Any = None  # a pydantic BaseModel subclass
    labels: tuple[str, ...] | None = None
    source: str = "dict"  # "pydantic", "dict", "json" (any JSON object), "labels"
    _validator: list[Any] = field(default_factory=list, repr=False)

    # -- making one ----------------------------------------------------------------------------------
    @classmethod
    def of(cls, spec: Any) -> Schema:
        """A Schema from a pydantic model class, a JSON Schema dict, JSON text of one, or a Schema."""
        if isinstance(spec, Schema):
            return spec
        if isinstance(spec, str):
            try:
                spec = json.loads(spec)
            except ValueError as exc:
                raise SchemaError(f"The schema text is not JSON ({exc}); pass a pydantic model, a dict, or JSON "
                                  "text like '{\"type\": \"object\", \"properties\": {...}}'.") from None
        if isinstance(spec, type) and hasattr(spec, "model_json_schema") and hasattr(spec, "model_validate_json"):
            try:
                json_schema = spec.model_json_schema()
            except Exception as exc:  # pydantic raises its own errors for types without a JSON Schema
                raise SchemaError(f"pydantic cannot write a JSON Schema for {spec.__name__} ({exc}); use JSON-"
                                  "compatible field types.") from None
            schema = cls(json_schema, model=spec, source="pydantic")
        elif hasattr(spec, "model_json_schema"):
            raise SchemaError(f"Pass the pydantic model class ({type(spec).__name__}), not an instance of it.")
        elif isinstance(spec, dict):
            schema = cls(dict(spec), source="dict")
        else:
            raise SchemaError(f"A schema must be a pydantic model class, a JSON Schema dict or JSON text, got "
                              f"{type(spec).__name__}.")
        schema.check()
        return schema

    @classmethod
    def any_object(cls) -> Schema:
        """Any one JSON object (``%%gpt4all --json``)."""
        return cls(dict(ANY_OBJECT), source="json")

    @classmethod
    def choice(cls, labels: Any) -> Schema:
        """Exactly one of ``labels`` (non-empty, distinct texts)."""
        return cls({"type": "string", "enum": list(check_labels(labels))}, labels=check_labels(labels),
                   source="labels")

    def check(self) -> None:
        """Refuse, before any work, a schema that is not valid JSON Schema or that the grammar cannot enforce."""
        check_schema(self.json_schema)
        validator = _validator_class(self.json_schema)
        try:
            validator.check_schema(self.json_schema)
        except Exception as exc:  # jsonschema.SchemaError
            where = "/".join(str(p) for p in getattr(exc, "path", ())) or "the top level"
            raise SchemaError(f"Not a valid JSON Schema at {where}: {getattr(exc, 'message', exc)}.") from None

    # -- what it gives ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """A name for the schema (servers ask for one)."""
        if self.model is not None:
            return self.model.__name__
        title = self.json_schema.get("title")
        return title if isinstance(title, str) and title.isidentifier() else "answer"

    def key(self) -> str:
        """A stable text of the schema (part of a batch job's identity)."""
        return describe(self.json_schema)

    def fields(self) -> dict[str, str | None]:
        """The top-level properties and their pandas dtypes (None: Python objects); empty when the schema
        names no properties."""
        props = self._resolve(self.json_schema).get("properties")
        if not isinstance(props, dict):
            return {}
        return {name: _dtype(self._resolve(sub), self._resolve) for name, sub in props.items()}

    def _resolve(self, node: Any) -> dict[str, Any]:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            target: Any = self.json_schema
            for part in node["$ref"][2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            node = target
        return node if isinstance(node, dict) else {}

    # -- checking answers ------------------------------------------------------------------------------
    def parse(self, text: str, finish_reason: str | None = None) -> Parsed:
        """Check one answer: ``ok`` with its value, ``truncated`` when ``max_tokens`` (``finish_reason ==
        "length"``) cut the JSON, else ``invalid`` with the reason."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            if finish_reason == "length":
                return Parsed("truncated", error="max_tokens cut the answer before its JSON was complete; raise "
                                                 "max_tokens.")
            return Parsed("invalid", error=f"not JSON ({exc})")
        if self.model is not None:
            from pydantic import ValidationError

            try:
                value = self.model.model_validate_json(text)
            except ValidationError as exc:
                parts = [f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()]
                return Parsed("invalid", error=_clip("; ".join(parts)))
            return Parsed("ok", value, value.model_dump(mode="json"))
        error = self.validate(data)
        if error is not None:
            return Parsed("invalid", error=error)
        return Parsed("ok", data, data)

    def validate(self, data: Any) -> str | None:
        """None when ``data`` fits the JSON Schema, else a one-line reason."""
        if not self._validator:
            self._validator.append(_validator_class(self.json_schema)(self.json_schema))
        from jsonschema.exceptions import best_match

        error = best_match(self._validator[0].iter_errors(data))
        if error is None:
            return None
        where = ".".join(str(p) for p in error.absolute_path)
        return _clip(f"{where}: {error.message}" if where else error.message)

    def retry_messages(self, messages: Sequence[dict[str, str]], text: str, error: str) -> list[dict[str, str]]:
        """The conversation that asks once more, with the reason the answer was refused."""
        return [*messages, {"role": "assistant", "content": text},
                {"role": "user", "content": f"That answer does not fit the required JSON schema: {error}. Answer "
                                            "again with corrected JSON only."}]


def validate_json(schema: dict[str, Any], text: str) -> str | None:
    """None when ``text`` is JSON that follows the JSON Schema ``schema``, else a one-line reason."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return f"not JSON ({exc})"
    return Schema(schema).validate(data)


def check_labels(labels: Any) -> tuple[str, ...]:
    """Labels as a tuple of distinct, non-empty texts (else a SchemaError naming the fix)."""
    if isinstance(labels, str):
        labels = labels.split("|")
    if labels is None or not isinstance(labels, (list, tuple)) or not labels:
        raise SchemaError("Give the labels as a list of texts, e.g. labels=['positive', 'negative', 'neutral'].")
    out = []
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise SchemaError(f"Labels must be non-empty texts, got {label!r} in {list(labels)!r}.")
        if label in out:
            raise SchemaError(f"The label {label!r} is given twice; list each label once.")
        out.append(label)
    if len(out) < 2:
        raise SchemaError(f"Give at least two labels to choose from, got {out!r}.")
    return tuple(out)


def _validator_class(schema: dict[str, Any]) -> Any:
    try:
        from jsonschema.validators import validator_for
    except ImportError as exc:
        raise SchemaError(f"jsonschema is not installed ({exc}); install it with `pip install jsonschema`.") from None
    from jsonschema import Draft202012Validator

    return validator_for(schema, default=Draft202012Validator)


def _dtype(node: dict[str, Any], resolve: Any) -> str | None:
    """The pandas dtype for values of ``node`` (null allowed: the nullable dtypes hold it)."""
    kinds = node.get("type")
    options = node.get("anyOf") or node.get("oneOf")
    if isinstance(options, list):
        resolved = [resolve(o) for o in options]
        kinds = [o.get("type") for o in resolved]
        if [k for k in kinds if k != "null"] == [None] or (len(resolved) == 2 and "null" in kinds and None in kinds):
            inner = next(o for o in resolved if o.get("type") != "null")
            return _dtype(inner, resolve)
    if isinstance(kinds, list):
        kinds = [k for k in kinds if k != "null"]
        kinds = kinds[0] if len(kinds) == 1 else None
    if kinds is None and isinstance(node.get("enum"), list):
        values = [v for v in node["enum"] if v is not None]
        if values and all(isinstance(v, str) for v in values):
            kinds = "string"
    return _DTYPES.get(kinds) if isinstance(kinds, str) else None


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR else text[:_MAX_ERROR - 1] + "…"
