"""Benchmark of batch work on the bundled model: ``python -m gpt4all_magic.bench.batch [--quick]``.

Prints, in one run: multiple-choice scoring (>= 100 questions x 4 choices) with the shared-prefix
multi-sequence scorer against the naive per-choice loop (each choice evaluated alone from an empty
cache), batched generation of 32 prompts x 64 tokens against a sequential loop of single
``generate()`` calls, and rows/s of scoring; with the ratios and how far the fast paths' results are
from the slow ones. Timings depend on the machine and on what else runs on it (the load is printed).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from typing import Any

from ..system import machine_note

__all__ = ["main", "requantized"]


def _questions(n: int) -> list[tuple[str, list[str], int]]:
    """``n`` four-choice questions in the harness's ARC / OBQA / HellaSwag formats, each with its own
    first words so that no two questions share a cached prefix."""
    from ..batch.tasks import get_task, load_sample

    base = []
    for name in ("arc_easy", "arc_challenge", "openbookqa", "hellaswag"):
        task = get_task(name)
        for row in load_sample(task):
            item = task.item(row)
            base.append((item.contexts[0], list(item.choices), item.gold))
    out = []
    for k in range(n):
        context, choices, gold = base[k % len(base)]
        out.append((f"Item {k + 1}. {context}", choices, gold))
    return out



def bench_scoring(model: Any, n_questions: int) -> dict[str, float]:
    from ..batch.choose import score_item
    from ..batch.tasks import Item
    from ..engines.base import ScoreRequest
    from ..engines.llama.scoring import score_requests, score_requests_naive

    questions = _questions(n_questions)
    requests = [ScoreRequest(c, " " + choice) for c, choices, _ in questions for choice in choices]
    score_requests(model, requests[:8])  # make the batch context outside the timing
    t0 = time.perf_counter()
    naive = score_requests_naive(model, requests)
    t_naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = score_requests(model, requests)
    t_fast = time.perf_counter() - t0
    diff = max(abs(a.logprob - b.logprob) for a, b in zip(fast, naive))
    same = 0
    k = 0
    for context, choices, gold in questions:
        item = Item((context,) * len(choices), tuple(" " + c for c in choices), tuple(choices), gold)
        a = score_item(item, [r.logprob for r in fast[k:k + len(choices)]])
        b = score_item(item, [r.logprob for r in naive[k:k + len(choices)]])
        same += a["pred"] == b["pred"] and a["pred_norm"] == b["pred_norm"]
        k += len(choices)
    return {"questions": len(questions), "requests": len(requests), "naive_s": t_naive, "fast_s": t_fast,
            "max_diff": diff, "same_predictions": same}


def bench_generation(manager: Any, n_prompts: int, max_tokens: int) -> dict[str, float]:
    import pandas as pd

    from ..batch.generate import generate_rows

    topics = ["tea", "the sea", "a lighthouse", "winter", "mountains", "a robot", "coffee", "the moon", "rain",
              "a city at night", "old books", "jazz", "a river", "autumn", "bread", "a garden"]
    prompts = [f"Write a long story about {topics[k % len(topics)]}, part {k // len(topics) + 1}."
               for k in range(n_prompts)]
    options = {"temp": 0.0, "max_tokens": max_tokens, "seed": 7}
    t0 = time.perf_counter()
    sequential = [manager.generate([{"role": "user", "content": p}], _opts(options)) for p in prompts]
    t_seq = time.perf_counter() - t0
    seq_tokens = sum(r.completion_tokens for r in sequential)
    t0 = time.perf_counter()
    batched = generate_rows(pd.DataFrame({"prompt": prompts}), prompt_column="prompt", manager=manager,
                            progress=False, **options)
    t_batch = time.perf_counter() - t0
    batch_tokens = int(batched["completion_tokens"].sum())
    agree = sum(a.text == b for a, b in zip(sequential, batched["response"]))
    return {"prompts": n_prompts, "sequential_s": t_seq, "batched_s": t_batch, "sequential_tokens": seq_tokens,
            "batched_tokens": batch_tokens, "agree": agree}


def _opts(values: dict[str, Any]) -> Any:
    from ..options import GenerationOptions

    return GenerationOptions.from_mapping(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpt4all_magic.bench.batch", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="A small smoke run (a few seconds).")
    parser.add_argument("--questions", type=int, default=128, help="Multiple-choice questions (4 choices each).")
    parser.add_argument("--prompts", type=int, default=32, help="Prompts to generate for.")
    parser.add_argument("--tokens", type=int, default=64, help="Tokens per generated answer.")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: physical cores).")
    parser.add_argument("--model", default=None, help="Another model name or .gguf path (default: the bundled one).")
    parser.add_argument("--requantize", action="append", default=[], choices=("q4_0", "q8_0"),
                        help="Also time generation on a temporary copy of the weights in this quantization.")
    args = parser.parse_args(argv)
    if args.quick:
        args.questions, args.prompts, args.tokens = 12, 4, 16
    from ..engines.llama.batchctx import FLASH_ATTN, SCORING_UBATCH
    from ..manager import ModelManager

    manager = ModelManager(n_ctx=2048, n_threads=args.threads)
    model = manager.load(args.model)
    print(f"model: {model.name} ({model.ref.path.name if model.ref.path else '?'}), n_ctx {model.n_ctx}, "
          f"{model.n_threads} threads; scoring: flash attention on, micro-batches of {SCORING_UBATCH}; "
          f"generation: flash attention {'on' if FLASH_ATTN else 'off'}")
    print(f"machine: {machine_note()} (a shared machine makes timings noisy)")
    s = bench_scoring(model, args.questions)
    print(f"\nmultiple choice, {s['questions']} questions x 4 choices = {s['requests']} requests")
    print(f"  naive per-choice loop : {s['naive_s']:7.2f} s  {s['questions'] / s['naive_s']:7.1f} questions/s")
    print(f"  shared-prefix batches : {s['fast_s']:7.2f} s  {s['questions'] / s['fast_s']:7.1f} questions/s  "
          f"{s['requests'] / s['fast_s']:7.1f} requests/s")
    print(f"  speed-up              : {s['naive_s'] / s['fast_s']:7.2f}x (target >= 3x)")
    print(f"  max |logprob diff|    : {s['max_diff']:.2e} nats; same acc/acc_norm predictions: "
          f"{s['same_predictions']}/{s['questions']}")
    g = bench_generation(manager, args.prompts, args.tokens)
    seq_rate = g["sequential_tokens"] / g["sequential_s"]
    batch_rate = g["batched_tokens"] / g["batched_s"]
    print(f"\ngeneration, {g['prompts']} prompts x {args.tokens} tokens (greedy)")
    print(f"  sequential generate() : {g['sequential_s']:7.2f} s  {seq_rate:7.1f} tokens/s")
    print(f"  batched generate_rows : {g['batched_s']:7.2f} s  {batch_rate:7.1f} tokens/s")
    print(f"  speed-up              : {g['sequential_s'] / g['batched_s']:7.2f}x (target >= 2x)")
    print(f"  identical answers     : {g['agree']}/{g['prompts']}")
    for kind in args.requantize:
        path = requantized(model.ref.path, kind)
        manager.load(path)
        g = bench_generation(manager, args.prompts, args.tokens)
        print(f"\ngeneration on a {kind.upper()} copy of the same weights ({path.name}), same prompts")
        print(f"  sequential / batched  : {g['sequential_s']:7.2f} s / {g['batched_s']:7.2f} s = "
              f"{g['sequential_s'] / g['batched_s']:.2f}x; identical answers {g['agree']}/{g['prompts']}")
        manager.unload()
        shutil.rmtree(path.parent, ignore_errors=True)
    manager.unload()
    return 0


def requantized(path: Any, kind: str) -> Any:
    """A temporary copy of the weights at ``path`` in another quantization (ggml has batched matrix
    kernels for Q4_0 and Q8_0 on CPU, not for the bundled file's Q4_1); the caller removes its folder."""
    import ctypes
    import tempfile
    from pathlib import Path

    from ..engines.llama.native import import_llama_cpp

    lc = import_llama_cpp()
    params = lc.llama_model_quantize_default_params()
    params.ftype = {"q4_0": lc.LLAMA_FTYPE_MOSTLY_Q4_0, "q8_0": lc.LLAMA_FTYPE_MOSTLY_Q8_0}[kind]
    params.allow_requantize = True
    out = Path(tempfile.mkdtemp(prefix="gpt4all-bench-")) / f"{Path(path).stem}-{kind}.gguf"
    if lc.llama_model_quantize(str(path).encode(), str(out).encode(), ctypes.byref(params)) != 0:
        raise SystemExit(f"llama.cpp could not write {out}")
    return out


if __name__ == "__main__":
    sys.exit(main())
