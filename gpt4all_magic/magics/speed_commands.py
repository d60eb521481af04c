"""``%gpt4all bench``: pp512 and tg128 of models on this machine (llama-bench's two tests), measured
through the manager, cached for ``%gpt4all list`` and batch-job estimates."""

from __future__ import annotations

import argparse
from typing import Any

from ._base import arg, subcommand

__all__: list[str] = []


@subcommand("bench", "Prompt processing (pp512) and generation (tg128) speed on this machine, like llama-bench; "
                     "cached for `%gpt4all list` and batch-job estimates.",
            arg("models", nargs="*", metavar="MODEL",
                help="Models to measure (default: the loaded model); each is loaded in turn and the one loaded "
                     "before comes back."),
            arg("-r", "--repetitions", type=int, metavar="N", help="Repetitions per test (default: 5; quick: 2)."),
            arg("--quick", action="store_true", help="pp64 and tg16, twice: a rough figure in seconds."))
def _bench(magics: Any, args: argparse.Namespace) -> Any:
    from ..speed import bench

    table = bench(args.models or [None], quick=args.quick, repetitions=args.repetitions, manager=magics.manager)
    print(f"tokens/s: mean ± standard deviation over {int(table['repetitions'].iloc[0])} repetitions; "
          f"cached in {table.attrs['cache']}.")
    return table
