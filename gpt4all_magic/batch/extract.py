"""Typed extraction over the rows of a DataFrame: one JSON answer per row, constrained by a schema's
grammar, validated, and spread into one column per top-level field with real dtypes.

>>> class Ticket(BaseModel):  # doctest: +SKIP
...     product: str
...     urgency: Literal["low", "medium", "high"]
...     refund: bool
>>> g4.extract(tickets, "Read this support ticket: {text}", schema=Ticket)  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from typing import Any, Mapping

import pandas as pd

from ..engines.base import ResponseFormat
from ..errors import BatchInputError, SchemaError
from ..manager import ModelManager, get_manager
from ..options import PARALLEL_ROWS, GenerationOptions
from ..structured.schema import TYPED_DEFAULTS, Schema
from ._job import Job, PathLike, check_frame, chunked, peek_checkpoint, reserved, row_key, sorted_by_length
from ._typed import Outcome, run_typed
from .generate import row_prompts

__all__ = ["EXTRACT_COLUMNS", "extract", "run_rows", "typed_columns", "typed_job", "typed_options"]

EXTRACT_COLUMNS = ("response", "retried")
DATA_COLUMN = "data"  # the one column of a schema without properties (any JSON object)


def typed_options(options: GenerationOptions | None, option_values: Mapping[str, Any],
                  checkpoint: PathLike | None = None) -> GenerationOptions:
    """Options for typed rows: ``TYPED_DEFAULTS`` (temp 0, no repeat penalty) under the caller's; a
    resumed run keeps the seed its checkpoint recorded."""
    opts = GenerationOptions.from_mapping(option_values, base=options or GenerationOptions(**TYPED_DEFAULTS))
    header = peek_checkpoint(checkpoint)
    if opts.seed is None and header is not None and isinstance(header.get("seed"), int):
        opts = opts.replace(seed=header["seed"])
    return opts.with_seed()


def typed_columns(frame: pd.DataFrame, dtypes: Mapping[str, str | None]) -> pd.DataFrame:
    """Give the field columns their pandas dtypes (Int64, Float64, boolean, string; others stay objects)."""
    for name, dtype in dtypes.items():
        if dtype is not None:
            try:
                frame[name] = pd.array(frame[name].tolist(), dtype=dtype)
            except (TypeError, ValueError):  # a value pandas cannot hold in that dtype: keep the objects
                pass
    return frame


def extract(df: pd.DataFrame, template: str | None = None, schema: Any = None, *, prompt_column: str | None = None,
            model: PathLike | None = None, system_prompt: str | None = None, options: GenerationOptions | None = None,
            manager: ModelManager | None = None, checkpoint: PathLike | None = None, progress: bool = True,
            max_parallel: int = PARALLEL_ROWS, chunk_size: int = 128, retry: bool = True,
            variables: Mapping[str, Any] | None = None, **option_values: Any) -> pd.DataFrame:
    """Answer each row (a ``{column}`` template or a prompt column) with JSON following ``schema`` and add
    one column per top-level field.

    ``schema`` is a pydantic v2 model class, a JSON Schema dict or its JSON text. Integer fields become
    ``Int64`` columns, numbers ``Float64``, booleans ``boolean``, strings and string enums ``string``;
    lists and nested objects stay Python objects (JSON data). A schema without properties (any JSON
    object) gives one ``data`` column. Also added: ``response`` (the answer's text), ``retried``,
    ``status`` (``ok``, ``invalid``, ``truncated``, ``too_long``, ``error``, ``interrupted``,
    ``not_run``) and ``error``. Rows run together with the grammar in each row's sampler; an answer
    that fails validation (bounds a grammar cannot hold) is asked once more with the error, then
    marked ``invalid`` with its text; one cut by ``max_tokens`` is ``truncated``. temp defaults to 0
    and repeat_penalty to 1.0. Bad input (schema, columns, template, cells) is refused before any work.
    """
    check_frame(df)
    for name, value in (("max_parallel", max_parallel), ("chunk_size", chunk_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BatchInputError(f"{name} must be a whole number >= 1, got {value!r}.")
    if schema is None:
        raise SchemaError("Pass schema=: a pydantic model class or a JSON Schema dict, e.g. "
                          "{'type': 'object', 'properties': {'city': {'type': 'string'}}, 'required': ['city']}.")
    spec = Schema.of(schema)
    dtypes = spec.fields() or {DATA_COLUMN: None}
    taken = [f for f in dtypes if f in ("status", "error") + EXTRACT_COLUMNS]
    if taken:
        raise SchemaError(f"The schema's field {taken[0]!r} would clash with the result column of that name; "
                          "rename the field.")
    prompts = row_prompts(df, template, prompt_column, variables)
    columns = tuple(dtypes) + EXTRACT_COLUMNS
    reserved(df, columns)
    opts = typed_options(options, option_values, checkpoint)
    if system_prompt is not None:
        opts = opts.replace(system_prompt=system_prompt)
    manager = manager or get_manager()
    loaded = manager.ensure_loaded(model)
    manager.check_format(ResponseFormat(spec.json_schema, spec.name), model)  # before any work or checkpoint
    job = typed_job(df, spec, opts, loaded.name, template, prompt_column, prompts, checkpoint, progress)
    run_rows(job, manager, spec, opts, prompts, model, max_parallel, chunk_size, retry,
         _row_for(dtypes, whole=not spec.fields()))
    frame = job.frame(columns, attrs={"kind": "extract", "model": loaded.name, "options": opts.to_dict(),
                                      "schema": spec.json_schema, "elapsed": job.elapsed, "tokens": job.tokens,
                                      "tokens_per_second": job.tokens_per_second})
    return typed_columns(frame, dtypes)


def typed_job(df: pd.DataFrame, spec: Schema, opts: GenerationOptions, model: str, template: str | None,
         prompt_column: str | None, prompts: list[str], checkpoint: PathLike | None, progress: bool,
         kind: str = "extract", extra: Mapping[str, Any] | None = None) -> Job:
    job_spec = {"model": model, "options": {k: v for k, v in opts.to_dict().items() if k != "seed"},
                "seed": opts.seed, "schema": spec.key(), **(extra or {}),
                "prompt": template if template is not None else f"column {prompt_column or 'prompt'}"}
    keys = [row_key(label, p) for label, p in zip(df.index, prompts)]
    return Job(df, kind, job_spec, keys, checkpoint=checkpoint, progress=progress, desc=kind,
               header={"seed": opts.seed})


def _row_for(dtypes: Mapping[str, str | None], whole: bool) -> Any:
    """The result row of an outcome: the fields of a valid answer (``whole``: the answer itself)."""
    def row(outcome: Outcome) -> dict[str, Any]:
        values: dict[str, Any] = dict.fromkeys(dtypes)
        if outcome.status == "ok":
            if whole:
                values[DATA_COLUMN] = outcome.record
            else:
                values.update({k: outcome.record.get(k) for k in dtypes})
        return {**values, "response": outcome.text, "retried": outcome.retried, "status": outcome.status,
                "error": outcome.error}

    return row


def run_rows(job: Job, manager: ModelManager, spec: Schema, opts: GenerationOptions, prompts: list[str],
         model: PathLike | None, max_parallel: int, chunk_size: int, retry: bool, make_row: Any) -> None:
    """Run the job's rows in chunks through :func:`._typed.run_typed`; notices are said once at the end."""
    notices: list[str] = []
    for i in job.todo():
        if not prompts[i].strip():
            job.record(i, make_row(Outcome("", "error", f"Row {job.df.index[i]!r}: the prompt is empty.")))
    system = [{"role": "system", "content": opts.system_prompt}] if opts.system_prompt else []

    def work(chunk: list[int]) -> None:
        def on_row(j: int, outcome: Outcome) -> None:
            notices.extend(n for n in outcome.notices if n not in notices)
            job.record(chunk[j], make_row(outcome), tokens=outcome.tokens)

        messages = [system + [{"role": "user", "content": prompts[i]}] for i in chunk]
        run_typed(manager, spec, messages, opts, on_row, model=model, max_parallel=max_parallel, retry=retry)

    job.run(chunked(sorted_by_length(prompts, job.todo()), chunk_size), work)
    for notice in notices:
        print(f"note: {notice}", file=sys.stderr)
