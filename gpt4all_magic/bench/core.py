"""Core benchmark on the bundled model: ``python -m gpt4all_magic.bench [--rounds N] [--tokens N]``.

Prints, from one run on one machine (ratios are what to compare; absolute speeds vary):

1. ``%%gpt4all`` end-to-end tokens/s vs raw ``llama_cpp.Llama.create_completion(stream=True)`` with
   identical settings and prompt tokens (target >= 0.95x);
2. tokens/s with our default threads (physical cores) vs llama-cpp-python's default (cores // 2)
   (target >= 1.5x on a 2-core machine);
3. ``%load_ext gpt4all_magic`` time in a fresh process (target < 0.3 s);
4. RSS after loading the model and after one generation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle."


def _timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    tokens = fn()
    return time.perf_counter() - start, tokens


def _median_rate(samples: list[tuple[float, int]]) -> float:
    return statistics.median(tokens / seconds for seconds, tokens in samples)


def bench_magic_vs_raw(rounds: int, max_tokens: int) -> dict[str, Any]:
    """Alternate raw streaming and the %%gpt4all cell so machine noise hits both alike."""
    import llama_cpp
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from ..engines.llama.native import without_amx_repack
    from ..magics import load
    from ..manager import get_manager
    from ..options import GenerationOptions

    manager = get_manager()
    model = manager.load(n_ctx=2048)
    shell = InteractiveShell.instance()
    shell.config.Gpt4AllMagics.display_mode = "rich"  # the notebook path: a display updated in place
    shell.config.Gpt4AllMagics.show_status = False
    load(shell)

    opts = GenerationOptions(temp=0, max_tokens=max_tokens, seed=1)
    prompt_tokens = model.tokenize(model.render([{"role": "user", "content": PROMPT}]))
    with without_amx_repack(llama_cpp):  # loaded as the engine loads models (see native.py)
        raw = llama_cpp.Llama(model_path=str(model.ref.path), n_ctx=2048, n_threads=model.n_threads,
                              n_threads_batch=model.n_threads, verbose=False)
    raw.last_n_tokens_size = opts.repeat_last_n

    def run_raw() -> int:
        raw.reset()
        text = ""
        for chunk in raw.create_completion(prompt_tokens, max_tokens=max_tokens, temperature=0.0,
                                           top_k=opts.top_k, top_p=opts.top_p, min_p=opts.min_p,
                                           repeat_penalty=opts.repeat_penalty, seed=1, stream=True):
            text += chunk["choices"][0]["text"]
        run_raw.text = text  # type: ignore[attr-defined]
        return 0

    cell = f"%%gpt4all -t 0 -n {max_tokens} --seed 1\n{PROMPT}"

    def run_magic() -> int:
        with capture_output():
            result = shell.run_cell(cell, store_history=True)
        run_magic.text = result.result  # type: ignore[attr-defined]
        return manager.last_result.completion_tokens

    run_raw(), run_magic()  # warm up both
    raw_samples, magic_samples = [], []
    for _ in range(rounds):
        raw_samples.append(_timed(run_raw))
        magic_samples.append(_timed(run_magic))
    same = run_raw.text == run_magic.text  # type: ignore[attr-defined]
    raw.close()
    # Same prompt, same greedy tokens: compare wall time for the same work.
    tokens = magic_samples[-1][1]
    raw_s = statistics.median(s for s, _ in raw_samples)
    magic_s = statistics.median(s for s, _ in magic_samples)
    return {"raw_tok_s": tokens / raw_s, "magic_tok_s": tokens / magic_s, "ratio": raw_s / magic_s,
            "same_text": same, "tokens": tokens}


def bench_threads(rounds: int, max_tokens: int) -> dict[str, Any]:
    """Decode speed with physical-core threads vs llama-cpp-python's default thread count."""
    import llama_cpp

    from ..engines.llama.native import without_amx_repack
    from ..models.catalog import bundled_model_path
    from ..system import default_threads

    path = str(bundled_model_path())
    with without_amx_repack(llama_cpp):  # both loaded as the engine loads models (see native.py)
        ours = llama_cpp.Llama(model_path=path, n_ctx=2048, n_threads=default_threads(),
                               n_threads_batch=default_threads(), verbose=False)
        theirs = llama_cpp.Llama(model_path=path, n_ctx=2048, verbose=False)
    tokens = ours.tokenize(PROMPT.encode(), add_bos=False)

    def decode(llm: Any) -> Callable[[], int]:
        def run() -> int:
            llm.reset()
            n = 0
            for _ in llm.generate(tokens, temp=0.0, top_k=40, top_p=0.4, min_p=0.0, repeat_penalty=1.18):
                n += 1
                if n >= max_tokens:
                    break
            return n
        return run

    decode(ours)(), decode(theirs)()
    ours_samples, theirs_samples = [], []
    for _ in range(rounds):
        ours_samples.append(_timed(decode(ours)))
        theirs_samples.append(_timed(decode(theirs)))
    result = {"ours_threads": ours.n_threads, "default_threads": theirs.n_threads,
              "ours_tok_s": _median_rate(ours_samples), "default_tok_s": _median_rate(theirs_samples)}
    result["ratio"] = result["ours_tok_s"] / result["default_tok_s"]
    ours.close(), theirs.close()
    return result


_LOAD_EXT = """
import json, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
t0 = time.perf_counter()
shell.run_line_magic("load_ext", "gpt4all_magic")
t1 = time.perf_counter()
print(json.dumps({"load_ext_s": t1 - t0}))
"""

_RSS = """
import json, psutil, gpt4all_magic as g4
p = psutil.Process()
before = p.memory_info().rss
g4.load()
loaded = p.memory_info().rss
g4.generate("Say hello.", temp=0, max_tokens=32)
after = p.memory_info().rss
print(json.dumps({"rss_start_mb": before / 1e6, "rss_loaded_mb": loaded / 1e6, "rss_after_generation_mb": after / 1e6,
                  "n_ctx": g4.get_manager().current.n_ctx}))
"""


def _subprocess_json(code: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpt4all_magic.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="Alternating rounds per comparison (median).")
    parser.add_argument("--tokens", type=int, default=128, help="Tokens generated per round.")
    args = parser.parse_args(argv)

    print(f"gpt4all-magic core benchmark · bundled SmolLM2-135M Q4_1 · {args.rounds} rounds × {args.tokens} tokens")
    ext = min((_subprocess_json(_LOAD_EXT) for _ in range(3)), key=lambda d: d["load_ext_s"])
    print(f"%load_ext gpt4all_magic        {ext['load_ext_s'] * 1000:7.1f} ms   (target < 300 ms)")
    rss = _subprocess_json(_RSS)
    print(f"RSS: start {rss['rss_start_mb']:.0f} MB · model loaded (n_ctx {rss['n_ctx']}) "
          f"{rss['rss_loaded_mb']:.0f} MB · after a generation {rss['rss_after_generation_mb']:.0f} MB")
    e2e = bench_magic_vs_raw(args.rounds, args.tokens)
    print(f"%%gpt4all end-to-end           {e2e['magic_tok_s']:7.1f} tok/s vs raw Llama streaming "
          f"{e2e['raw_tok_s']:.1f} tok/s → {e2e['ratio']:.2f}x (target >= 0.95x; same text: {e2e['same_text']})")
    threads = bench_threads(args.rounds, args.tokens)
    print(f"threads {threads['ours_threads']} (ours) vs {threads['default_threads']} (llama-cpp-python default): "
          f"{threads['ours_tok_s']:.1f} vs {threads['default_tok_s']:.1f} tok/s → {threads['ratio']:.2f}x "
          f"(target >= 1.5x on 2 cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
