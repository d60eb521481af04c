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

from ...errors import JOB_ENDING_ERRORS, RemoteError
from ..base import Message, TokenCount

__all__ = ["count_tokens"]

PER_MESSAGE = 4  # role markers and separators of a typical chat template


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


_INEXACT = ("estimate",)  # routes whose counts are guesses, not a tokenizer's
_ROUTES = {"vllm": _vllm, "llama-server": _llama_server, "llama_cpp.server": _llama_cpp_python,
           "estimate": _estimate}


def count_tokens(model: Any, messages: Sequence[Message]) -> TokenCount:
    """Prompt tokens of ``messages`` on ``model``'s server (see the module docstring for how); the count
    is marked inexact whenever it was estimated, including when the route found earlier fails now."""
    backend = model.backend
    route = backend.tokenizer_route
    if route is not None:
        try:
            return TokenCount(_ROUTES[route](model, messages), exact=route not in _INEXACT)
        except JOB_ENDING_ERRORS:
            raise
        except (RemoteError, KeyError, TypeError, ValueError):
            return TokenCount(_estimate(model, messages), exact=False)
    for name, fn in _ROUTES.items():
        try:
            n = fn(model, messages)
        except JOB_ENDING_ERRORS:
            raise
        except (RemoteError, KeyError, TypeError, ValueError):
            continue  # not this kind of server
        backend.tokenizer_route = name
        return TokenCount(n, exact=name not in _INEXACT)
    return TokenCount(_estimate(model, messages), exact=False)  # unreachable: the estimate always works
