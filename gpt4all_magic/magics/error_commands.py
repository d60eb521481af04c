"""``%gpt4all error``: ask the model to explain the last exception of this kernel, from the user's own
frames only (IPython's are left out, as the shell itself leaves them out of tracebacks)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Any

from IPython.core.error import UsageError

from ..api import generate
from ..options import GenerationOptions
from ._base import arg, subcommand

__all__: list[str] = []


@subcommand("error", "Ask the model to explain the last exception raised in this kernel.",
            arg("-m", "--model", help="Model to ask (default: the loaded one)."),
            arg("-n", "--max-tokens", type=int, default=300, help="Length of the explanation."))
def _error(magics: Any, args: argparse.Namespace) -> str:
    value = getattr(sys, "last_value", None)
    if value is None:
        raise UsageError("No exception has been raised in this kernel yet; run the failing cell, "
                         "then `%gpt4all error`.")
    tb = _clip_middle(_user_traceback(value, getattr(sys, "last_traceback", None)), 6000)
    prompt = ("Explain this Python error in plain words, point to the line that caused it, and show how "
              "to fix it. Be brief.\n\n```\n" + tb + "```")
    options = GenerationOptions.from_mapping({"max_tokens": args.max_tokens}, base=magics.default_options)
    result = magics.stream(
        lambda on_text: generate(prompt, model=args.model, options=options, on_text=on_text,
                                 manager=magics.manager), "markdown")
    return magics.quiet(result.text)


def _user_traceback(value: BaseException, tb: Any = None) -> str:
    """The traceback of ``value`` without IPython's own frames (the shell's ``run_code`` exec, magic
    dispatch), as the shell itself shows it (its ``tb_offset``): only the user's code and the error."""
    import IPython

    root = os.path.dirname(IPython.__file__)
    roots = tuple({os.path.join(root, ""), os.path.join(os.path.realpath(root), "")})
    top = traceback.TracebackException(type(value), value, tb if tb is not None else value.__traceback__)
    todo, seen = [top], set()
    while todo:  # the exception, its causes/contexts and an exception group's members
        exc = todo.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        exc.stack = traceback.StackSummary.from_list(
            [f for f in exc.stack if not os.path.abspath(f.filename).startswith(roots)])
        todo += [e for e in (exc.__cause__, exc.__context__, *(getattr(exc, "exceptions", None) or ()))
                 if e is not None]
    return "".join(top.format())


def _clip_middle(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n[... traceback shortened ...]\n" + text[-half:]
