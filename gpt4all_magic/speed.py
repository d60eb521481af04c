"""Prompt processing and generation speed of a model on this machine, measured through the manager the
way llama-bench reports them: ``pp512`` (a 512-token prompt evaluated, tokens/s) and ``tg128``
(128 tokens generated one at a time, tokens/s), each as mean ± standard deviation over repetitions.

Each repetition is one :meth:`ModelManager.generate` call on a fresh prompt (a different first
line, so no cached prefix is reused): pp is prompt tokens over the time to the first token, tg the
decoding speed after it. The results are cached per model file and llama.cpp build
(:mod:`gpt4all_magic.models.speeds`) for ``%gpt4all list`` and batch-job estimates.
"""

from __future__ import annotations

import os
import statistics
from typing import Any, Sequence

from .errors import Gpt4AllError, InvalidOptionError
from .manager import ModelManager, get_manager
from .models import speeds
from .options import GenerationOptions

__all__ = ["QUICK", "bench", "measure"]

QUICK = {"pp": 64, "tg": 16, "repetitions": 2}
_FILLER = ("The lighthouse keeper wrote down the weather, the ships that passed and the colour of the sea "
           "every morning, and read the old logbooks in the evening. ")


def _prompt(manager: ModelManager, model: Any, n_tokens: int, k: int) -> list[dict[str, str]]:
    """A user message whose chat-templated prompt is about ``n_tokens`` tokens, starting with run ``k``."""
    head = f"Run {k}. Summarize these notes.\n"
    text = head
    while manager.count_tokens([{"role": "user", "content": text + _FILLER}], model=model) <= n_tokens:
        text += _FILLER
    words = _FILLER.split()
    for w in words:  # top up word by word
        if manager.count_tokens([{"role": "user", "content": text + w + " "}], model=model) > n_tokens:
            break
        text += w + " "
    return [{"role": "user", "content": text}]


def measure(model: str | os.PathLike[str] | None = None, *, pp: int = 512, tg: int = 128, repetitions: int = 5,
            manager: ModelManager | None = None, save: bool = True) -> dict[str, Any]:
    """pp and tg tokens/s (mean and standard deviation over ``repetitions``) of one model, cached."""
    if pp < 1 or tg < 2 or repetitions < 1:
        raise InvalidOptionError(f"bench needs pp >= 1, tg >= 2 and repetitions >= 1; got pp={pp}, tg={tg}, "
                                 f"repetitions={repetitions}.")
    manager = manager or get_manager()
    loaded = manager.ensure_loaded(model)
    options = GenerationOptions(temp=0.0, max_tokens=tg, seed=1, repeat_penalty=1.0)
    manager.generate([{"role": "user", "content": "Say hi."}], options.replace(max_tokens=4), model=model)  # warm up
    pp_rates, tg_rates, tg_tokens = [], [], []
    for k in range(repetitions):
        messages = _prompt(manager, model, pp, k)
        first = manager.generate(messages, options.replace(max_tokens=1), model=model)
        if first.time_to_first_token:
            pp_rates.append(first.prompt_tokens / first.time_to_first_token)
        long = manager.generate([{"role": "user", "content": f"Run {k}. Write a long story about a lighthouse."}],
                                options, model=model)
        if long.tokens_per_second:
            tg_rates.append(long.tokens_per_second)
            tg_tokens.append(long.completion_tokens)
    if not pp_rates or not tg_rates:
        raise Gpt4AllError(f"{loaded.name} produced no timings; run `%gpt4all bench` again with more tokens.")
    result = {"model": loaded.name, "path": str(loaded.ref.path) if loaded.ref.path else None,
              "n_threads": loaded.n_threads, "pp_tokens": int(first.prompt_tokens), "tg_tokens": min(tg_tokens),
              "repetitions": repetitions, "pp": statistics.fmean(pp_rates), "pp_sd": _sd(pp_rates),
              "tg": statistics.fmean(tg_rates), "tg_sd": _sd(tg_rates), "build": speeds.build_key()}
    if save and loaded.ref.path is not None:
        speeds.record(loaded.ref.path, result)
    return result


def _sd(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def bench(models: Sequence[str | os.PathLike[str] | None] | None = None, *, quick: bool = False,
          repetitions: int | None = None, manager: ModelManager | None = None) -> Any:
    """llama-bench's table for each model (None: the loaded one): ``model``, ``test`` (pp512 / tg128),
    ``tokens/s``, ``±`` (standard deviation), ``repetitions``, ``threads``. ``quick`` measures pp64 and
    tg16 twice (for tests). The model loaded before is loaded again afterwards."""
    import pandas as pd

    manager = manager or get_manager()
    sizes = dict(QUICK) if quick else {"pp": 512, "tg": 128, "repetitions": 5}
    if repetitions is not None:
        sizes["repetitions"] = repetitions
    before = manager.current
    rows = []
    try:
        for model in list(models or [None]):
            r = measure(model, manager=manager, **sizes)
            for test in ("pp", "tg"):
                rows.append({"model": r["model"], "test": f"{test}{r[f'{test}_tokens']}", "tokens/s": round(r[test], 1),
                             "±": round(r[f"{test}_sd"], 1), "repetitions": r["repetitions"],
                             "threads": r["n_threads"]})
    finally:
        if before is not None and (manager.current is None or manager.current.ref != before.ref):
            manager.load(before.ref.path if before.ref.source == "file" else before.ref.name, n_ctx=before.n_ctx)
    out = pd.DataFrame(rows, columns=["model", "test", "tokens/s", "±", "repetitions", "threads"])
    out.attrs["cache"] = str(speeds.cache_file())
    return out
