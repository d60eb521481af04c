"""Benchmark of embeddings and the data map: ``python -m gpt4all_magic.bench.embed [--quick]``.

Prints, in one run: embedding throughput of the manager (many texts per decode through ``Llama.embed``
on a unified KV buffer) against a loop of ``Llama.embed`` one text at a time on the same model, pooling
and threads, with how far the vectors are apart; near-duplicate detection over 100,000 given vectors
(random unit vectors with planted near duplicates, the hardest case for an index: real embeddings have
structure) with how many planted pairs were found; and UMAP time at 10,000 and 100,000 points
(``--quick``: 10,000 only). Timings depend on what else runs on the machine (the load is printed).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from typing import Any

from ..system import machine_note

__all__ = ["main"]

LOOP_SAMPLE = 32

WORDS = ("tea coffee river mountain python notebook cat dog market rain engine garden music history "
         "science ocean bread window planet doctor winter language").split()


def _texts(n: int) -> list[str]:
    """``n`` short, distinct prompts (5 to 13 words), the size of a prompt in a curation set."""
    import random

    rng = random.Random(12)
    return [f"Item {k}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + "." for k in range(n)]



def bench_embed(n_texts: int, threads: int, path: Any = None) -> dict[str, float]:
    """Texts/s of ``ModelManager.embed`` vs a ``Llama.embed`` loop, same model file (default: the
    bundled one), mean pooling, threads."""
    import numpy as np

    from ..engines.llama.native import import_llama_cpp, without_amx_repack
    from ..manager import ModelManager
    from ..models.catalog import bundled_model_path

    texts = _texts(n_texts)
    path = path or bundled_model_path()
    manager = ModelManager(n_threads=threads)
    manager.embed(texts[:4], model=str(path), pooling="mean")  # load outside the timing
    t0 = time.perf_counter()
    ours = manager.embed(texts, model=str(path), pooling="mean").vectors
    t_ours = time.perf_counter() - t0
    manager.unload_embedder()
    lc = import_llama_cpp()
    with without_amx_repack(lc):
        llm = lc.Llama(model_path=str(path), embedding=True, pooling_type=lc.LLAMA_POOLING_TYPE_MEAN,
                       n_ctx=512, n_threads=threads, n_threads_batch=threads, verbose=False)
    try:
        llm.embed(texts[0])
        sample = texts[:LOOP_SAMPLE]  # the loop is slow under load: its rate is taken on the first texts
        t0 = time.perf_counter()
        loop = np.array([llm.embed(text) for text in sample], dtype=np.float64)
        t_loop = (time.perf_counter() - t0) * len(texts) / len(sample)
    finally:
        llm.close()
    loop /= np.linalg.norm(loop, axis=1, keepdims=True)
    cosine = (ours[:len(sample)].astype(np.float64) * loop).sum(axis=1)
    tokens = sum(len(llm_tokens) for llm_tokens in manager_tokens(texts))
    return {"n": n_texts, "ours": n_texts / t_ours, "loop": n_texts / t_loop, "max_gap": float(1 - cosine.min()),
            "tokens": tokens / n_texts}


def manager_tokens(texts: list[str]) -> list[list[int]]:
    """The bundled model's tokens of each text (for the mean length printed)."""
    from ..engines.llama.native import import_llama_cpp, without_amx_repack
    from ..models.catalog import bundled_model_path

    lc = import_llama_cpp()
    with without_amx_repack(lc):
        llm = lc.Llama(model_path=str(bundled_model_path()), vocab_only=True, verbose=False)
    try:
        return [llm.tokenize(t.encode("utf-8"), add_bos=False) for t in texts]
    finally:
        llm.close()


def planted_vectors(n: int, dim: int = 384, pairs: int = 2000, seed: int = 5) -> tuple[Any, set[tuple[int, int]]]:
    """``n`` random unit vectors where ``pairs`` rows are copies of others at cosine 0.96 to 0.99."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = rng.choice(n, 2 * pairs, replace=False)
    planted = set()
    for src, dst in zip(rows[:pairs], rows[pairs:]):
        cos = rng.uniform(0.96, 0.99)
        noise = rng.standard_normal(dim)
        noise -= noise @ x[src] * x[src]
        x[dst] = cos * x[src] + np.sqrt(1 - cos**2) * noise / np.linalg.norm(noise)
        planted.add((min(src, dst), max(src, dst)))
    return x, planted


def bench_near_duplicates(n: int) -> dict[str, float]:
    from ..embeddings.neighbours import similar_pairs

    x, planted = planted_vectors(n)
    t0 = time.perf_counter()
    i, j, _ = similar_pairs(x, 0.95)
    seconds = time.perf_counter() - t0
    found = set(zip(i.tolist(), j.tolist()))
    return {"n": n, "seconds": seconds, "planted": len(planted), "found": len(found & planted),
            "other": len(found - planted)}


def bench_umap(n: int) -> float:
    """Seconds for the map's UMAP projection of ``n`` vectors (50 topics in 384 dims)."""
    import numpy as np

    from ..embeddings.layout import project

    rng = np.random.default_rng(9)
    centres = rng.standard_normal((50, 384))
    x = (centres[rng.integers(0, 50, n)] + 0.6 * rng.standard_normal((n, 384))).astype(np.float32)
    t0 = time.perf_counter()
    project(x, method="umap")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpt4all_magic.bench.embed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer texts, UMAP at 10,000 points only")
    parser.add_argument("--requantize", action="append", default=[], choices=("q4_0", "q8_0"),
                        help="also measure on a temporary copy of the bundled weights in this quantization "
                             "(ggml's CPU backend has batched matrix kernels for it, not for Q4_1)")
    parser.add_argument("--threads", type=int, default=0,
                        help="llama.cpp threads for both sides (default 0: the physical cores, the manager's "
                             "default); 1 thread is also measured")
    args = parser.parse_args(argv)
    print(f"gpt4all-magic embeddings benchmark ({machine_note()})", flush=True)

    from ..models.catalog import bundled_model_path
    from ..system import default_threads
    from .batch import requantized

    for threads in dict.fromkeys([args.threads or default_threads(), 1]):
        e = bench_embed(64 if args.quick else 128, threads)
        print(f"embed {e['n']} short texts ({e['tokens']:.1f} tokens each on average), bundled SmolLM2, mean "
              f"pooling, {threads} thread(s):\n"
              f"  batched manager.embed {e['ours']:8.2f} texts/s\n"
              f"  Llama.embed loop      {e['loop']:8.2f} texts/s (one text per call, timed on {LOOP_SAMPLE})\n"
              f"  ratio {e['ours'] / e['loop']:.2f}x (target >= 3x); largest 1 - cosine between them "
              f"{e['max_gap']:.1e}", flush=True)
    for kind in args.requantize:
        path = requantized(bundled_model_path(), kind)
        try:
            e = bench_embed(64 if args.quick else 128, args.threads or default_threads(), path)
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)
        print(f"embed on a {kind.upper()} copy of the same weights: batched {e['ours']:.2f} texts/s, loop "
              f"{e['loop']:.2f} texts/s, ratio {e['ours'] / e['loop']:.2f}x; largest 1 - cosine {e['max_gap']:.1e}",
              flush=True)

    d = bench_near_duplicates(100_000)
    print(f"near duplicates over {d['n']:,} given vectors (384 dims, cosine >= 0.95): {d['seconds']:.1f} s "
          f"(target < 60 s); planted pairs found {d['found']:,} of {d['planted']:,}, other pairs {d['other']:,}",
          flush=True)

    for n in (10_000,) if args.quick else (10_000, 100_000):
        print(f"UMAP projection of {n:,} points (384 dims): {bench_umap(n):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
