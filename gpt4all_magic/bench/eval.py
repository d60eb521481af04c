"""The seven Table 1 tasks on the bundled model: ``python -m gpt4all_magic.bench.eval``.

Runs BoolQ, PIQA, HellaSwag, WinoGrande, ARC-e, ARC-c and OBQA zero-shot on the split
lm-evaluation-harness evaluates, each from the first place that has it: ``--source DIR`` (a folder
of saved datasets, e.g. from ``python -m gpt4all_magic.bench.olmo_data DIR``), else the Hugging Face
cache through ``datasets``, else the 8 bundled sample items (said per task). Prints per task the
items, acc and acc_norm with their standard errors, items/s of the batched scorer over the whole
split, and, on the first ``--naive-items`` items, items/s of a one-request-at-a-time loop
(``score_requests_naive``: each choice evaluated alone from an empty cache) against the batched
scorer on the same items; then the Table 1 row. Timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any

__all__ = ["main"]


def _load(task: Any, source: str | None, limit: int | None) -> tuple[Any, str]:
    from ..batch.sources import datasets_available, load_task_rows
    from ..errors import TaskDataError

    tried = []
    for where in ([source] if source else []) + (["hub"] if datasets_available() else []):
        try:
            frame = load_task_rows(task, source=where, limit=limit)
            info = frame.attrs["source"]
            return frame, f"{info['split']} ({info['dataset']})" if info["kind"] == "hub" else info["split"]
        except TaskDataError as exc:
            tried.append(str(exc))
    frame = load_task_rows(task, source="sample", limit=limit)
    why = f": {tried[-1]}" if tried else ": `datasets` is not installed"
    print(f"note: {task.name} runs on the bundled sample{why}", file=sys.stderr)
    return frame, "bundled sample"


def _naive_ratio(manager: Any, task: Any, frame: Any, n: int) -> dict[str, float]:
    """items/s of the batched ``choose`` and of a one-request-at-a-time loop on the same first ``n`` items."""
    from ..batch.choose import choose
    from ..engines.base import ScoreRequest
    from ..engines.llama.scoring import score_requests_naive

    part = frame.head(n)
    items = [task.item(row) for row in part.to_dict("records")]
    requests = [ScoreRequest(c, k) for it in items for c, k in zip(it.contexts, it.continuations)]
    t0 = time.perf_counter()
    choose(part, task=task, manager=manager, progress=False)
    fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    score_requests_naive(manager.current, requests)
    naive = time.perf_counter() - t0
    return {"items": len(part), "fast_items_s": len(part) / fast, "naive_items_s": len(part) / naive,
            "ratio": naive / fast}


def _subset(frame: Any, n: int | None) -> Any:
    """A seeded random subset of ``n`` rows (the same on every run), in the split's order, keeping the row
    labels so checkpoints of other runs match; unlike the first ``n`` rows it is not biased by the split's
    ordering (HellaSwag's validation split, for one, is ordered by source)."""
    if n is None or n >= len(frame):
        return frame
    attrs = dict(frame.attrs)
    part = frame.sample(n=n, random_state=0).sort_index()
    part.attrs.update(attrs, source={**attrs.get("source", {}), "sampled": n, "of": len(frame)})
    return part


def _limits(values: list[str]) -> dict[str, int]:
    """``--limit 500`` (every task) or ``--limit hellaswag=1000`` (one task)."""
    from ..batch.tasks import get_task

    out: dict[str, int] = {}
    for value in values:
        name, _, n = value.rpartition("=")
        out[get_task(name).name if name else "*"] = int(n)
    return out


def _fmt(x: float, scale: float = 100.0, digits: int = 1) -> str:
    return "   -" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{scale * x:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpt4all_magic.bench.eval", description=__doc__.split("\n")[0])
    parser.add_argument("tasks", nargs="*", help="Tasks (default: all seven).")
    parser.add_argument("--source", help="A folder of saved datasets to read first (DIR/<task>/<split>).")
    parser.add_argument("--limit", action="append", default=[], metavar="[TASK=]N",
                        help="Keep the first N items (of every task, or of TASK); repeatable.")
    parser.add_argument("--sample", action="append", default=[], metavar="[TASK=]N",
                        help="A seeded random subset of N items (of every task, or of TASK) instead of all; repeatable.")
    parser.add_argument("--naive-items", type=int, default=32, help="Items per task for the one-at-a-time loop.")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: physical cores).")
    parser.add_argument("--checkpoint", help="A folder of per-task checkpoints: a rerun resumes.")
    parser.add_argument("--model", default=None, help="Another model name or .gguf path (default: the bundled one).")
    args = parser.parse_args(argv)
    from ..batch.compare import evaluate
    from ..batch.tasks import get_task, task_names
    from ..manager import ModelManager

    limits, samples = _limits(args.limit), _limits(args.sample)
    manager = ModelManager(n_ctx=2048, n_threads=args.threads)
    model = manager.load(args.model)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(f"model: {model.name} ({model.ref.path.name if model.ref.path else '?'}), n_ctx {model.n_ctx}, "
          f"{model.n_threads} threads; machine: {os.cpu_count()} CPUs, load average {load:.2f} at the start")
    if args.source:
        print(f"data: {args.source} first (saved datasets), then the Hugging Face cache, then the bundled samples")
    print(f"{'task':10s} {'split':36s} {'items':>6s} {'acc':>6s} {'±':>4s} {'norm':>6s} {'±':>4s} "
          f"{'items/s':>8s} {'naive/s':>8s} {'ratio':>6s}")
    row: dict[str, float] = {}
    ratios = []
    for name in args.tasks or task_names():
        task = get_task(name)
        frame, where = _load(task, args.source, limits.get(task.name, limits.get("*")))
        frame = _subset(frame, samples.get(task.name, samples.get("*")))
        if "sampled" in frame.attrs.get("source", {}):
            where = f"{where}, random {len(frame):,} of {frame.attrs['source']['of']:,}"
        summary = evaluate({task.name: frame}, manager=manager, checkpoint=args.checkpoint).iloc[0]
        r = _naive_ratio(manager, task, frame, args.naive_items)
        ratios.append(r["ratio"])
        row[task.title] = 100 * summary[task.table1_metric]
        print(f"{task.title:10s} {where[:36]:36s} {summary['items']:6d} {_fmt(summary['acc']):>6s} "
              f"{_fmt(summary['acc_stderr']):>4s} {_fmt(summary['acc_norm']):>6s} {_fmt(summary['acc_norm_stderr']):>4s} "
              f"{summary['items_per_s']:8.2f} {r['naive_items_s']:8.2f} {r['ratio']:5.2f}x", flush=True)
    row = {get_task(t).title: row[get_task(t).title] for t in task_names() if get_task(t).title in row}
    values = [v for v in row.values() if not math.isnan(v)]
    print("\nTable 1 row (acc for BoolQ and WinoGrande, acc_norm for the others, in %):")
    print(" | ".join(f"{k} {v:.1f}" for k, v in row.items()) + f" | Average {sum(values) / len(values):.1f}")
    print(f"batched scorer vs one-request-at-a-time loop on the first {args.naive_items} items of each task: "
          f"{min(ratios):.2f}x to {max(ratios):.2f}x (goal >= 3x)")
    manager.unload()
    return 0


if __name__ == "__main__":
    sys.exit(main())
