"""Typed answers in a cell: ``%%gpt4all --json``, ``--schema S`` and ``--choice "a|b|c"``.

The answer is generated under the schema's grammar and validated; the cell's value is the parsed object
(a pydantic instance, a dict or list, or the label), shown as pretty JSON and stored by ``-o``. With
``--df NAME`` the cell is a row template: ``--json``/``--schema`` extract typed columns, ``--choice``
classifies each row by log-likelihood (``label`` and ``p_<label>`` columns).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from IPython.core.error import UsageError

from ..api import generate
from ..options import GenerationOptions
from ..structured.schema import TYPED_DEFAULTS, Schema
from . import core
from ._base import Parser, usage_errors
from .batch_commands import frame_and_template, report_rows

__all__ = ["pretty", "typed_cell"]

_FLAGS = ("--json", "--schema", "--choice")


def _add_flags(p: Parser) -> None:
    group = p.add_argument_group("typed answers (the cell's value is the parsed answer)")
    group.add_argument("--json", action="store_true",
                       help="Answer with one JSON object; the value is the parsed dict.")
    group.add_argument("--schema", metavar="S",
                       help="Answer with JSON following S: a variable holding a pydantic model class or a JSON "
                            "Schema dict, or inline JSON; the value is the validated object. With --df: one "
                            "typed column per field.")
    group.add_argument("--choice", metavar="LABELS",
                       help="Answer with exactly one of the labels, e.g. \"positive|negative|neutral\"; the value "
                            "is the label. With --df: label and p_<label> columns from log-likelihoods.")


def typed_cell(magics: Any, args: argparse.Namespace, cell: str) -> Any:
    """Handle ``--json`` / ``--schema`` / ``--choice``; None when none is given (another handler runs)."""
    given = [flag for flag, value in zip(_FLAGS, (args.json, args.schema, args.choice)) if value]
    if not given:
        return None
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)} are alternatives; use one of --json, --schema, --choice.")
    if args.chat:
        raise UsageError(f"{given[0]} asks one typed question; it cannot be combined with --chat.")
    if args.format == "code":
        raise UsageError(f"-f code takes code out of a text answer; it cannot be combined with {given[0]}.")
    with usage_errors():
        spec = _schema(magics, args)
    if getattr(args, "df", None):
        return _rows(magics, args, cell, spec)
    return _answer(magics, args, cell, spec)


def _schema(magics: Any, args: argparse.Namespace) -> Schema:
    if args.json:
        return Schema.any_object()
    if args.choice is not None:
        return Schema.choice([label.strip() for label in args.choice.split("|")])
    name = args.schema.strip()
    ns = magics.shell.user_ns if magics.shell is not None else {}
    if name.isidentifier():
        if name not in ns:
            raise UsageError(f"No variable named '{name}'; define the pydantic model or schema dict first, or "
                             "give inline JSON: --schema '{\"type\": \"object\", ...}'.")
        return Schema.of(ns[name])
    if not name.startswith(("{", "[")):
        raise UsageError(f"--schema takes a variable name or inline JSON, got {name!r}.")
    return Schema.of(name)


def _options(magics: Any, args: argparse.Namespace) -> GenerationOptions:
    """The cell's options over the kernel's defaults, with greedy and no repeat penalty unless configured."""
    typed = {k: v for k, v in TYPED_DEFAULTS.items() if k not in magics.options}
    return magics.cell_options(args, base=magics.default_options.replace(**typed))


def pretty(value: Any) -> str:
    """A typed answer as people read it: indented JSON (a label as itself)."""
    if isinstance(value, str):
        return value
    if hasattr(value, "model_dump_json"):
        return value.model_dump_json(indent=2)
    return json.dumps(value, indent=2, ensure_ascii=False)


def _answer(magics: Any, args: argparse.Namespace, cell: str, spec: Schema) -> Any:
    out = magics.check_variable(args.out)
    prompt = magics.cell_prompt(cell)
    with usage_errors():
        options = _options(magics, args)
        result = magics.stream(
            lambda on_text: generate(prompt, model=args.model, options=options, on_text=on_text,
                                     manager=magics.manager, schema=spec),
            "text", shown=lambda r: pretty(r.data))
    value = result.data if result.finish_reason != "interrupted" else result.text  # Ctrl-C: the partial text
    if out:
        magics.shell.user_ns[out] = value
    return magics.quiet(value)


def _rows(magics: Any, args: argparse.Namespace, cell: str, spec: Schema) -> Any:
    df, template, ns = frame_and_template(magics, args, cell)
    out = magics.check_variable(args.out)
    common = {"variables": ns, "model": args.model, "manager": magics.manager, "checkpoint": args.checkpoint,
              "progress": True}
    with usage_errors():
        if spec.labels is not None:
            given = [s for s in magics.cell_options(args, base=GenerationOptions()).changed() if s != "system_prompt"]
            if given:
                raise UsageError(f"--choice with --df scores each label (nothing is generated), so generation flags "
                                 f"({', '.join(given)}) do not apply; drop them.")
            from ..batch.classify import classify

            result = classify(df, template, spec.labels, system_prompt=args.system_prompt, **common)
        else:
            from ..batch.extract import extract

            result = extract(df, template, spec, options=_options(magics, args), max_parallel=args.parallel,
                             **common)
    report_rows(magics, result)
    if out:
        magics.shell.user_ns[out] = result
    return result


core.CELL_EXTENSIONS.append(_add_flags)
# First in line: with --df these flags change what the batch handler would do.
core.CELL_HANDLERS.insert(0, typed_cell)
