"""Benchmark of typed answers on the bundled model: ``python -m gpt4all_magic.bench.structured [--quick]``.

Prints, from one run: ``extract`` over 64 support tickets against a loop of llama-cpp-python
``create_chat_completion(response_format={"type": "json_object", "schema": ...})`` calls (the same
prompts, greedy, no repeat penalty; how many outputs are identical and how many validate);
``classify`` by log-likelihood against a loop of calls constrained to the labels (a JSON schema with an
``enum``) then parsed; prompt-lookup (n-gram) speculative decoding on and off for the same extraction
loop (llama-cpp-python's ``LlamaPromptLookupDecoding``); and validity over a dozen schemas, ours
against the ``response_format`` loop. Each baseline ``Llama`` is loaded the way the engine loads models
(:func:`~gpt4all_magic.engines.llama.native.without_amx_repack`). The extraction loops reset it before
each call, so every call evaluates its prompt from scratch as ours do and greedy outputs can be
compared token for token; the classification loop keeps llama-cpp-python's prompt cache (the shared
head of the prompt is not evaluated again), as a plain loop would.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Sequence

from ..system import machine_note

__all__ = ["loop_answers", "main", "our_validity", "raw_llama"]


def raw_llama(model: Any, *, draft: Any = None) -> Any:
    """A plain ``llama_cpp.Llama`` on ``model``'s file with its settings (optionally a draft model)."""
    from ..engines.llama.native import import_llama_cpp, without_amx_repack

    llama_cpp = import_llama_cpp()
    with without_amx_repack(llama_cpp):
        return llama_cpp.Llama(model_path=str(model.ref.path), n_ctx=model.n_ctx, n_batch=model.llm.n_batch,
                               n_threads=model.n_threads, n_threads_batch=model.n_threads, draft_model=draft,
                               verbose=False)


def loop_answers(llm: Any, prompts: Sequence[str], schema: dict[str, Any], max_tokens: int,
                 reset: bool = True) -> list[tuple[str, str]]:
    """``(text, finish_reason)`` per prompt from one ``create_chat_completion(response_format=...)`` each
    (``reset``: from an empty cache each time, else reusing the cached prefix of the previous prompt)."""
    out = []
    for prompt in prompts:
        if reset:
            llm.reset()
        reply = llm.create_chat_completion(
            messages=[{"role": "user", "content": prompt}], temperature=0.0, repeat_penalty=1.0,
            max_tokens=max_tokens, response_format={"type": "json_object", "schema": schema})
        choice = reply["choices"][0]
        out.append((choice["message"]["content"] or "", choice["finish_reason"] or ""))
    return out


def _valid(schema: Any, answers: Sequence[tuple[str, str]]) -> int:
    from ..structured.schema import Schema

    spec = Schema.of(schema)
    return sum(spec.parse(text, finish).status == "ok" for text, finish in answers)


def our_validity(manager: Any, cases: Sequence[Any], max_tokens: int) -> dict[str, int]:
    """Rows of ``extract`` over ``cases`` by status (each case one call over its texts)."""
    import pandas as pd

    from ..batch.extract import extract

    counts: dict[str, int] = {}
    for case in cases:
        frame = extract(pd.DataFrame({"text": list(case.texts)}), case.template, case.schema, manager=manager,
                        progress=False, max_tokens=max_tokens)
        for status in frame["status"]:
            counts[status] = counts.get(status, 0) + 1
    return counts


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def bench_extract(manager: Any, llm: Any, n: int, max_tokens: int) -> dict[str, Any]:
    import pandas as pd

    from ..batch.extract import extract
    from .structured_cases import TICKET_SCHEMA, tickets

    template = "Read this support ticket and fill in the fields.\n\n{text}"
    texts = [t for t, _ in tickets(n)]
    prompts = [template.format(text=t) for t in texts]
    t_loop, loop = _timed(lambda: loop_answers(llm, prompts, TICKET_SCHEMA, max_tokens))
    t_ours, frame = _timed(lambda: extract(pd.DataFrame({"text": texts}), template, TICKET_SCHEMA,
                                           manager=manager, progress=False, max_tokens=max_tokens))
    ours = list(zip(frame["response"], frame["status"]))
    return {"rows": n, "loop_s": t_loop, "ours_s": t_ours,
            "identical": sum(a == b for (a, _), (b, _) in zip(ours, loop)),
            "ours_valid": int((frame["status"] == "ok").sum()), "loop_valid": _valid(TICKET_SCHEMA, loop),
            "retried": int(frame["retried"].sum()), "prompts": prompts, "loop": loop}


def bench_classify(manager: Any, llm: Any, n: int) -> dict[str, Any]:
    import pandas as pd

    from ..batch.classify import classify
    from .structured_cases import LABELS, tickets

    template = ("Which team should handle this support ticket: billing, technical or shipping? Answer with one "
                "word.\n\n{text}")
    rows = tickets(n)
    prompts = [template.format(text=t) for t, _ in rows]
    schema = {"type": "string", "enum": list(LABELS)}
    t_loop, loop = _timed(lambda: loop_answers(llm, prompts, schema, 8, reset=False))
    loop_labels = [json.loads(text) if finish == "stop" else None for text, finish in loop]
    t_ours, frame = _timed(lambda: classify(pd.DataFrame({"text": [t for t, _ in rows]}), template, list(LABELS),
                                            manager=manager, progress=False))
    gold = [label for _, label in rows]
    return {"rows": n, "loop_s": t_loop, "ours_s": t_ours,
            "agree": sum(a == b for a, b in zip(frame["label"], loop_labels)),
            "ours_acc": sum(a == b for a, b in zip(frame["label"], gold)),
            "loop_acc": sum(a == b for a, b in zip(loop_labels, gold))}


def bench_prompt_lookup(model: Any, prompts: Sequence[str], baseline: Sequence[tuple[str, str]],
                        max_tokens: int, t_off: float) -> dict[str, Any]:
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    from .structured_cases import TICKET_SCHEMA

    llm = raw_llama(model, draft=LlamaPromptLookupDecoding(num_pred_tokens=10))
    try:
        t_on, answers = _timed(lambda: loop_answers(llm, prompts, TICKET_SCHEMA, max_tokens))
    finally:
        llm.close()
    return {"rows": len(prompts), "off_s": t_off, "on_s": t_on,
            "identical": sum(a == b for (a, _), (b, _) in zip(answers, baseline))}



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpt4all_magic.bench.structured",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="A small smoke run.")
    parser.add_argument("--rows", type=int, default=64, help="Tickets to extract from and classify.")
    parser.add_argument("--tokens", type=int, default=96, help="max_tokens of an extraction.")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: physical cores).")
    parser.add_argument("--only", default="extract,classify,lookup,validity",
                        help="Comma-separated sections to run (default: all four).")
    args = parser.parse_args(argv)
    sections = set(args.only.split(","))
    if args.quick:
        args.rows = 6
    from ..manager import ModelManager

    manager = ModelManager(n_ctx=2048, n_threads=args.threads)
    model = manager.load()
    llm = raw_llama(model)
    print(f"model: {model.name}, n_ctx {model.n_ctx}, {model.n_threads} threads; greedy, repeat_penalty 1.0")
    print(f"machine: {machine_note()} (a shared machine makes timings noisy)")
    if "extract" in sections:
        _print_extract(bench_extract(manager, llm, args.rows, args.tokens), args.tokens)
    if "classify" in sections:
        _print_classify(bench_classify(manager, llm, args.rows))
    if "lookup" in sections:
        _print_lookup(manager, llm, model, args)
    if "validity" in sections:
        _print_validity(manager, llm)
    llm.close()
    manager.unload()
    return 0


def _print_extract(e: dict[str, Any], tokens: int) -> None:
    print(f"\nextract, {e['rows']} tickets, 4 fields, max_tokens {tokens}")
    print(f"  llama-cpp-python response_format loop : {e['loop_s']:7.2f} s  {e['rows'] / e['loop_s']:6.2f} rows/s")
    print(f"  g4.extract (batched, grammar per row) : {e['ours_s']:7.2f} s  {e['rows'] / e['ours_s']:6.2f} rows/s")
    print(f"  speed-up                              : {e['loop_s'] / e['ours_s']:7.2f}x (target >= 2x)")
    print(f"  identical greedy outputs              : {e['identical']}/{e['rows']}")
    print(f"  rows that validate                    : ours {e['ours_valid']}/{e['rows']} ({e['retried']} retried), "
          f"loop {e['loop_valid']}/{e['rows']}")


def _print_classify(c: dict[str, Any]) -> None:
    print(f"\nclassify, {c['rows']} tickets x 3 labels")
    print(f"  loop constrained to the labels (enum) : {c['loop_s']:7.2f} s")
    print(f"  g4.classify (log-likelihood)          : {c['ours_s']:7.2f} s")
    print(f"  speed-up                              : {c['loop_s'] / c['ours_s']:7.2f}x (target >= 2x)")
    print(f"  same label as the loop                : {c['agree']}/{c['rows']}; correct: ours {c['ours_acc']}, "
          f"loop {c['loop_acc']} of {c['rows']}")


def _print_lookup(manager: Any, llm: Any, model: Any, args: Any) -> None:
    from .structured_cases import tickets

    template = "Read this support ticket and fill in the fields.\n\n{text}"
    prompts = [template.format(text=t) for t, _ in tickets(min(args.rows, 16))]
    t_off, off = _timed(lambda: loop_answers(llm, prompts, _ticket_schema(), args.tokens))
    p = bench_prompt_lookup(model, prompts, off, args.tokens, t_off)
    print(f"\nprompt-lookup decoding for the extraction loop ({p['rows']} rows, llama-cpp-python, 10 draft tokens)")
    print(f"  off / on                              : {p['off_s']:7.2f} s / {p['on_s']:7.2f} s = "
          f"{p['off_s'] / p['on_s']:.2f}x; identical outputs {p['identical']}/{p['rows']}")


def _print_validity(manager: Any, llm: Any) -> None:
    from .structured_cases import CASES, pydantic_cases

    cases = CASES + pydantic_cases()
    counts = our_validity(manager, cases, 128)
    total = sum(counts.values())
    loop_ok = sum(_valid(case.schema, loop_answers(llm, [case.template.format(text=t) for t in case.texts],
                                                   _as_dict(case.schema), 128)) for case in cases)
    print(f"\nvalidity over {len(cases)} schemas, {total} rows, max_tokens 128")
    print(f"  g4.extract                            : {counts.get('ok', 0)}/{total} validate "
          f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()) if s != 'ok') or 'no others'})")
    print(f"  llama-cpp-python response_format loop : {loop_ok}/{total} validate")


def _ticket_schema() -> dict[str, Any]:
    from .structured_cases import TICKET_SCHEMA

    return TICKET_SCHEMA


def _as_dict(schema: Any) -> dict[str, Any]:
    return schema.model_json_schema() if hasattr(schema, "model_json_schema") else schema


if __name__ == "__main__":
    sys.exit(main())
