"""Generation over the rows of a DataFrame: a ``{column}`` template (or a prompt column) filled per row,
answered as :func:`gpt4all_magic.generate` would answer it, many rows per engine batch.

Every batch function takes a DataFrame and returns a new one: the input columns, the result columns,
and ``status`` (``"ok"``, ``"too_long"``, ``"error"``, ``"interrupted"``, ``"not_run"``) with ``error``
(the one-line reason), in input order. A progress bar shows rows/s and tokens/s; Ctrl-C returns the
rows finished so far; ``checkpoint="file.jsonl"`` makes a rerun of the same call skip them.

>>> out = generate_rows(df, "Summarize in one line: {text}", temp=0, max_tokens=60)  # doctest: +SKIP
"""

from __future__ import annotations

import collections
from typing import Any, Mapping

import pandas as pd

from ..errors import BatchInputError, ContextOverflowError
from ..manager import ModelManager, get_manager
from ..options import PARALLEL_ROWS, GenerationOptions
from ..prompts import fields, fill
from ._job import (
    Job,
    PathLike,
    check_columns,
    check_frame,
    chunked,
    estimate_seconds,
    peek_checkpoint,
    reserved,
    row_key,
    sorted_by_length,
    text_cells,
)

__all__ = ["GENERATE_COLUMNS", "generate_rows", "render_template", "row_prompts"]

GENERATE_COLUMNS = ("prompt_tokens", "completion_tokens", "tokens_per_second", "finish_reason")


# -- prompts from rows ------------------------------------------------------------------------------

def template_fields(template: str) -> list[str]:
    """The ``{name}`` / ``{name.attr}`` fields a template fills (not ``{{name}}``, not those inside code)."""
    return fields(template)


def render_template(df: pd.DataFrame, template: str, variables: Mapping[str, Any] | None = None) -> list[str]:
    """One prompt per row: ``{column}`` fields filled from the row (numbers are written as text), other
    fields from ``variables``; the rules are :mod:`.prompts`' (braces in code, JSON or CSS stay)."""
    if not isinstance(template, str) or not template.strip():
        raise BatchInputError("The template is empty; write a prompt with {column} fields, e.g. "
                              "'Translate to French: {text}'.")
    variables = variables or {}
    found = template_fields(template)
    heads = [h for h in dict.fromkeys(f.split(".")[0] for f in found) if h in df.columns or h not in variables]
    if not heads:
        raise BatchInputError("The template has no {column} field, so every row would get the same prompt; "
                              "name a column, e.g. 'Summarize: {text}' (write {{ and }} for literal braces).")
    check_columns(df, heads, lead="The template names {{{name}}}, but the DataFrame has no column '{name}' "
                                  "(write {{{{ and }}}} for literal braces).")
    columns: dict[str, list[Any]] = {}
    for head in heads:
        if any(f.startswith(head + ".") for f in found):
            columns[head] = df[head].tolist()  # {date.year}: attributes of any value
        else:
            columns[head] = text_cells(df, head, allow_numbers=True)
    return [fill(template, collections.ChainMap({h: columns[h][i] for h in heads}, variables)).text
            for i in range(len(df))]


def row_prompts(df: pd.DataFrame, template: str | None, prompt_column: str | None,
                variables: Mapping[str, Any] | None = None) -> list[str]:
    """One prompt per row: the template filled from the row, or the prompt column's text."""
    if template is not None and prompt_column is not None:
        raise BatchInputError("Pass either a template or prompt_column, not both.")
    if template is None:
        if prompt_column is None:
            if "prompt" not in df.columns:
                raise BatchInputError("Pass a template with {column} fields (e.g. 'Summarize: {text}') or "
                                      "prompt_column='name of the column holding the prompts'.")
            prompt_column = "prompt"
        check_columns(df, [prompt_column])
        return text_cells(df, prompt_column)
    return render_template(df, template, variables)


# -- generation -------------------------------------------------------------------------------------

def generate_rows(df: pd.DataFrame, template: str | None = None, *, prompt_column: str | None = None,
                  output_column: str = "response", model: PathLike | None = None,
                  system_prompt: str | None = None, options: GenerationOptions | None = None,
                  manager: ModelManager | None = None, checkpoint: PathLike | None = None, progress: bool = True,
                  max_parallel: int = PARALLEL_ROWS, chunk_size: int = 128, variables: Mapping[str, Any] | None = None,
                  **option_values: Any) -> pd.DataFrame:
    """Answer one prompt per row (a ``{column}`` template or a prompt column), as :func:`generate` would.

    Returns the input frame plus ``response`` (``output_column``), ``prompt_tokens``,
    ``completion_tokens``, ``tokens_per_second``, ``finish_reason``, ``status`` and ``error``. Each
    row gets the chat template and options of a single ``generate()`` call with the same seed (one
    seed for the whole run, recorded in ``.attrs["options"]``). A row too long for the context
    window is marked ``"too_long"`` and the others still run. Template fields that name no column are
    filled from ``variables`` (``%%gpt4all --df`` passes the notebook's).
    """
    check_frame(df)
    for name, value in (("max_parallel", max_parallel), ("chunk_size", chunk_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BatchInputError(f"{name} must be a whole number >= 1, got {value!r}.")
    prompts = row_prompts(df, template, prompt_column, variables)
    result_columns = (output_column,) + GENERATE_COLUMNS
    reserved(df, result_columns)
    opts = _run_options(option_values, options, system_prompt, checkpoint)
    manager = manager or get_manager()
    loaded = manager.ensure_loaded(model)
    job_spec = _job_spec(df, loaded.name, opts, template, prompt_column, variables)
    keys = [row_key(label, p) for label, p in zip(df.index, prompts)]
    job = Job(df, "generate", job_spec, keys, checkpoint=checkpoint, progress=progress, desc="generate",
              header={"seed": opts.seed})
    for i in job.todo():
        if not prompts[i].strip():
            job.record(i, _row(output_column, error="The prompt is empty.", status="error"))
    todo = sorted_by_length(prompts, job.todo())
    if progress:  # an upper bound: rows generated together run faster than tg (one sequence)
        job.estimate = estimate_seconds(manager, model, [prompts[i] for i in todo], len(todo) * opts.max_tokens)
    system = [{"role": "system", "content": opts.system_prompt}] if opts.system_prompt else []

    def work(chunk: list[int]) -> None:
        messages = [system + [{"role": "user", "content": prompts[i]}] for i in chunk]

        def on_result(j: int, text: str, stats: Any, error: Exception | None) -> None:
            row = _generation_row(output_column, text, stats, error)
            job.record(chunk[j], row, tokens=stats.completion_tokens)

        manager.generate_many(messages, opts, on_result, model=model, max_parallel=max_parallel)

    job.run(chunked(todo, chunk_size), work)
    return job.frame(result_columns, attrs={"kind": "generate", "model": loaded.name, "options": opts.to_dict(),
                                            "elapsed": job.elapsed, "tokens": job.tokens,
                                            "tokens_per_second": job.tokens_per_second})


def _run_options(values: Mapping[str, Any], options: GenerationOptions | None, system_prompt: str | None,
                 checkpoint: PathLike | None) -> GenerationOptions:
    """The options of the whole run, with its seed: the given one, the first run's (resuming), or a new one."""
    opts = GenerationOptions.from_mapping(values, base=options)
    if system_prompt is not None:
        opts = opts.replace(system_prompt=system_prompt)
    header = peek_checkpoint(checkpoint)
    if opts.seed is None and header is not None and isinstance(header.get("seed"), int):
        opts = opts.replace(seed=header["seed"])  # a resumed run keeps the first run's seed
    return opts.with_seed()


def _job_spec(df: pd.DataFrame, model: str, opts: GenerationOptions, template: str | None,
              prompt_column: str | None, variables: Mapping[str, Any] | None) -> dict[str, Any]:
    """What makes this job this job (a checkpoint of another is refused). The seed is part of it: resuming
    with another one would mix two seeds' answers in one frame."""
    spec: dict[str, Any] = {"model": model, "options": {k: v for k, v in opts.to_dict().items() if k != "seed"},
                            "seed": opts.seed,
                            "prompt": template if template is not None else f"column {prompt_column or 'prompt'}"}
    if template is not None and variables:  # the variables' values are part of the job, as the template is
        used = [f for f in fields(template) if f.split(".")[0] not in df.columns and f.split(".")[0] in variables]
        if used:
            spec["variables"] = {f: fill(f"{{{f}}}", variables).text for f in used}
    return spec


def _row(output_column: str, *, error: str | None, status: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {output_column: None, **{c: None for c in GENERATE_COLUMNS}}
    row.update(values)
    row.update(status=status, error=error)
    return row


def _generation_row(output_column: str, text: str, stats: Any, error: Exception | None) -> dict[str, Any]:
    if error is not None:
        status = "too_long" if isinstance(error, ContextOverflowError) else "error"
        return _row(output_column, error=str(error), status=status, prompt_tokens=stats.prompt_tokens or None)
    status = "interrupted" if stats.finish_reason == "interrupted" else "ok"
    return _row(output_column, error=None, status=status, **{
        output_column: text, "prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens,
        "tokens_per_second": stats.tokens_per_second, "finish_reason": stats.finish_reason})
