"""``%gpt4all connect URL`` / ``%gpt4all disconnect``: point the magics, chat panel and batch functions
at an OpenAI-compatible server, and back to local models."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from ._base import arg, subcommand

__all__: list[str] = []


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return value


def _concurrency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"must be in [1, 256], got {text!r}")
    return value


@subcommand("connect", "Use the models of an OpenAI-compatible server (llama-server, vLLM, Ollama, llama_cpp.server).",
            arg("url", nargs="?", help="The server, e.g. http://127.0.0.1:8000 (/v1 is added when the URL has no "
                                       "path; default: $GPT4ALL_MAGIC_SERVER_URL, else $OPENAI_BASE_URL)."),
            arg("--model", help="Which of the server's models to use (default: $GPT4ALL_MAGIC_SERVER_MODEL, "
                                "else the first it lists)."),
            arg("--api-key-env", default="OPENAI_API_KEY", metavar="VAR",
                help="Environment variable holding the API key, read at each request and never stored "
                     "(default: OPENAI_API_KEY; unset means no key is sent)."),
            arg("--timeout", type=_positive_float, metavar="S",
                help="Seconds to wait for the server to send something before failing "
                     "(default: $GPT4ALL_MAGIC_SERVER_TIMEOUT, else 120)."),
            arg("--concurrency", type=_concurrency, metavar="N",
                help="Requests in flight at once for batch work and scoring "
                     "(default: $GPT4ALL_MAGIC_SERVER_CONCURRENCY, else 4)."))
def _connect(magics: Any, args: argparse.Namespace) -> None:
    from ..api import connect

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # e.g. plain HTTP to another machine: say it at every connect
        try:
            model = connect(args.url, args.model, api_key_env=args.api_key_env, timeout=args.timeout,
                            concurrency=args.concurrency, manager=magics.manager)
        finally:
            for warning in caught:
                print(f"warning: {warning.message}", file=sys.stderr)
    backend = model.backend
    names = backend.model_names()
    others = f"; {len(names) - 1} other(s) in `%gpt4all list`" if len(names) > 1 else ""
    print(f"Connected to {backend.base_url}: using {model.name}{others}. API key: {backend.http.api_key_state()}. "
          "`%gpt4all disconnect` goes back to local models.")


@subcommand("disconnect", "Stop using the server; go back to local models (llama.cpp).")
def _disconnect(magics: Any, args: argparse.Namespace) -> None:
    from ..api import disconnect

    backend = magics.manager.backend
    if disconnect(manager=magics.manager):
        print(f"Disconnected from {backend.base_url}; local models again (`%gpt4all load` to pick one).")
    else:
        print("Not connected to a server; local models are in use.")
