"""Counting prompt tokens on a server: OpenAI's API has no endpoint for it, so each server's own is
tried once per connection and the first that works is kept.

- vLLM: ``POST /tokenize`` with the messages (the chat template applied: exact);
- llama.cpp's ``llama-server``: ``POST /apply-template`` then ``POST /tokenize`` (exact);
- ``llama_cpp.server``: ``POST /extras/tokenize`` on the messages' text, plus a few tokens a message;
- anything else: about four characters a token.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from ..errors import ModelNotFoundError, RemoteAuthError, RemoteConnectionError, RemoteError, RemoteTimeoutError
from .base import Message

__all__ = ["count_tokens"]

PER_MESSAGE = 4  # role markers and separators of a typical chat template
_FATAL = (RemoteAuthError, RemoteConnectionError, RemoteTimeoutError)


def _vllm(model: Any, messages: Sequence[Message]) -> int:
    data = model.backend.http.json("POST", "/tokenize", {"model": model.name, "messages": list(messages),
                                                         "add_generation_prompt": True}, at_root=True, retries=0)
    return int(data["count"])


def _llama_server(model: Any, messages: Sequence[Message]) -> int:
    http = model.backend.http
    prompt = http.json("POST", "/apply-template", {"messages": list(messages)}, at_root=True, retries=0)["prompt"]
    return len(http.json("POST", "/tokenize", {"content": prompt, "add_special": True}, at_root=True,
                         retries=0)["tokens"])


def _llama_cpp_python(model: Any, messages: Sequence[Message]) -> int:
    text = "\n".join(m["content"] for m in messages)
    data = model.backend.http.json("POST", "/extras/tokenize", {"model": model.name, "input": text},
                                   at_root=True, retries=0)
    return len(data["tokens"]) + PER_MESSAGE * len(messages) + 2


def _estimate(model: Any, messages: Sequence[Message]) -> int:
    return sum(math.ceil(len(m["content"]) / 4) + PER_MESSAGE for m in messages) + 2


_ROUTES = {"vllm": _vllm, "llama-server": _llama_server, "llama_cpp.server": _llama_cpp_python,
           "estimate": _estimate}


def count_tokens(model: Any, messages: Sequence[Message]) -> int:
    """Prompt tokens of ``messages`` on ``model``'s server (see the module docstring for how)."""
    backend = model.backend
    route = backend.tokenizer_route
    if route is not None:
        try:
            return _ROUTES[route](model, messages)
        except _FATAL:
            raise
        except (RemoteError, ModelNotFoundError, KeyError, TypeError, ValueError):
            return _estimate(model, messages)
    for name, fn in _ROUTES.items():
        try:
            n = fn(model, messages)
        except _FATAL:
            raise
        except (RemoteError, ModelNotFoundError, KeyError, TypeError, ValueError):
            continue  # not this kind of server
        backend.tokenizer_route = name
        return n
    return _estimate(model, messages)  # unreachable: the estimate always works
