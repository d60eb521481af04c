"""Typed answers from a server: the ``response_format`` sent, the fallback for servers that know only the
older shape, and the once-per-connection notice when a server ignores it.

OpenAI, vLLM and llama.cpp's ``llama-server`` take ``{"type": "json_schema", "json_schema": {"name", "schema",
"strict"}}``; ``llama_cpp.server`` refuses that (HTTP 422) and takes ``{"type": "json_object", "schema":
...}``, so a refusal switches the connection to the second shape once. Answers are validated by the
caller either way; a server that ignores the format entirely is named once per connection.
"""

from __future__ import annotations

import json
from typing import Any

from ..base import ResponseFormat, StreamStats

__all__ = ["downgrade", "format_payload", "note_format", "refuses_format"]


def format_payload(fmt: ResponseFormat, style: str) -> dict[str, Any]:
    """The ``response_format`` field for ``fmt`` in a server's ``style`` ("json_schema" or "json_object")."""
    if style == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": fmt.name, "schema": fmt.schema, "strict": True}}
    return {"type": "json_object", "schema": fmt.schema}


def refuses_format(payload: dict[str, Any], exc: Exception) -> bool:
    """True when a 400/422 is the server refusing the ``json_schema`` shape of ``response_format``
    (llama_cpp.server answers HTTP 500 "Input should be 'text' or 'json_object'")."""
    text = str(getattr(exc, "detail", "")).lower()
    sent = payload.get("response_format") or {}
    return (sent.get("type") == "json_schema" and getattr(exc, "status", None) in (400, 422, 500)
            and any(word in text for word in ("response_format", "json_schema", "json_object")))


def downgrade(payload: dict[str, Any]) -> None:
    """Rewrite the payload's ``response_format`` into the ``json_object`` + ``schema`` shape."""
    sent = payload["response_format"]
    payload["response_format"] = {"type": "json_object", "schema": sent["json_schema"]["schema"]}


def note_format(model: Any, payload: dict[str, Any], text: str, stats: StreamStats) -> None:
    """Say once per connection that the server ignores ``response_format`` when a finished answer is not
    JSON that follows the schema sent (the caller marks such answers invalid)."""
    sent = payload.get("response_format")
    if not sent or stats.finish_reason != "stop":
        return
    from ...structured.schema import validate_json

    schema = sent["json_schema"]["schema"] if sent.get("type") == "json_schema" else sent.get("schema", {})
    if validate_json(schema, text) is None:
        return
    model.backend.notify_once(
        "format-ignored", f"{model.backend.base_url} does not seem to follow response_format (an answer did not "
        f"match its JSON schema: {json.dumps(text[:60])}); answers are checked here and those that do not match "
        "are marked invalid.", stats)
