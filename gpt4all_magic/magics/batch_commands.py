"""``%%gpt4all --df NAME``: the cell is a template run over every row of a DataFrame, and
``%gpt4all eval``: zero-shot multiple-choice accuracy on the Table 1 tasks (full splits or samples),
with paired significance between models and the paper's rows on request."""

from __future__ import annotations

import argparse
import collections
import sys
from typing import Any

from IPython.core.error import UsageError

from ..options import PARALLEL_ROWS
from ..prompts import Filled, fill
from . import core
from ._base import Parser, arg, subcommand, usage_errors

__all__ = ["df_cell", "frame_and_template", "report_rows"]


def _add_flags(p: Parser) -> None:
    group = p.add_argument_group("batch over a DataFrame")
    group.add_argument("--df", metavar="NAME",
                       help="Run the cell as a template over each row of DataFrame NAME ({column} fields); the "
                            "result is NAME plus response, token counts, tokens/s, finish reason and status.")
    group.add_argument("--checkpoint", metavar="PATH",
                       help="With --df: record finished rows in PATH (JSON lines); rerunning skips them.")
    group.add_argument("--parallel", type=int, default=PARALLEL_ROWS, metavar="N",
                       help=f"With --df: rows generated together (default: {PARALLEL_ROWS}).")


def frame_and_template(magics: Any, args: argparse.Namespace, cell: str) -> tuple[Any, str, dict[str, Any]]:
    """For ``--df NAME``: the DataFrame, the cell as its row template, and the notebook's namespace; flags
    that cannot go with --df and a missing or wrong variable are refused in one line."""
    name = args.df
    if args.chat:
        raise UsageError("--chat continues one conversation; it cannot be combined with --df (each row is a "
                         "fresh turn).")
    if args.format == "code":
        raise UsageError("-f code puts one answer into a new cell; it cannot be combined with --df.")
    if args.parallel < 1:
        raise UsageError(f"--parallel must be at least 1, got {args.parallel}.")
    ns = magics.shell.user_ns if magics.shell is not None else {}
    if name not in ns:
        raise UsageError(f"No variable named '{name}'; create the DataFrame first, e.g. {name} = pd.DataFrame(...).")
    import pandas as pd

    df = ns[name]
    if not isinstance(df, pd.DataFrame):
        raise UsageError(f"--df needs a pandas DataFrame, but '{name}' is a {type(df).__name__}.")
    template = cell.strip("\r\n").rstrip()
    if not template.strip():
        raise UsageError("The cell is empty: write the prompt template below %%gpt4all --df, e.g. "
                         "Summarize {text} in one line.")
    # Columns and variables named inside code are left as is (the library's rule); say so once, not per row.
    in_code = fill(template, collections.ChainMap(dict.fromkeys(map(str, df.columns), ""), ns)).in_code
    for note in Filled("", [], in_code).notes():
        print(f"note: {note}", file=sys.stderr)
    return df, template, ns


def df_cell(magics: Any, args: argparse.Namespace, cell: str) -> Any:
    """Handle ``%%gpt4all --df NAME``; None when the flag is absent (the normal cell runs)."""
    name = getattr(args, "df", None)
    if not name:
        if getattr(args, "checkpoint", None):
            raise UsageError("--checkpoint only applies with --df NAME.")
        return None
    df, template, ns = frame_and_template(magics, args, cell)
    out = magics.check_variable(args.out)
    from ..batch.generate import generate_rows

    with usage_errors():
        options = magics.cell_options(args)
        result = generate_rows(df, template, variables=ns, model=args.model, options=options,
                                     manager=magics.manager, checkpoint=args.checkpoint, max_parallel=args.parallel,
                                     progress=True)
    report_rows(magics, result)
    if out:
        magics.shell.user_ns[out] = result
    return result


def report_rows(magics: Any, result: Any) -> None:
    """Say how many rows are not ``ok`` (and why), then the status line of a batch result."""
    ok = int((result["status"] == "ok").sum())
    if ok < len(result):
        counts = result["status"].value_counts().to_dict()
        print("note: " + ", ".join(f"{n} {s}" for s, n in counts.items() if s != "ok")
              + " (see the status and error columns).", file=sys.stderr)
    if magics.show_status:
        tokens = result.attrs.get("tokens", 0)
        rate = f" · {result.attrs['tokens_per_second']:.1f} tok/s" if tokens else ""
        seed = result.attrs.get("options", {}).get("seed")
        print(f"{result.attrs.get('model')} · {ok}/{len(result)} rows" + (f" · {tokens} tokens{rate}" if tokens else "")
              + (f" · seed {seed}" if seed is not None else ""))


@subcommand("eval", "Zero-shot multiple-choice accuracy (lm-evaluation-harness formats) on the Table 1 tasks: full "
                    "splits through `datasets`, or the bundled samples.",
            arg("tasks", nargs="*", metavar="TASK",
                help="Tasks (default: all seven of the GPT4All paper's Table 1): boolq piqa hellaswag "
                     "winogrande arc_easy arc_challenge openbookqa."),
            arg("-m", "--model", action="append", metavar="MODEL",
                help="Model to evaluate (repeat to compare several; default: the loaded model)."),
            arg("--metric", choices=("table1", "acc", "acc_norm"), default="table1",
                help="The metric in the table: table1 (default) as the paper reports it, acc for BoolQ and "
                     "WinoGrande and acc_norm for the others; acc or acc_norm for one metric on every task "
                     "(BoolQ and WinoGrande have only acc)."),
            arg("--source", default="auto", metavar="SOURCE",
                help="Where items come from: hub (the full splits through `datasets`, from the Hugging Face "
                     "cache), sample (8 bundled items per task), or a folder of saved datasets; default: hub "
                     "where `datasets` is installed, else sample."),
            arg("--split", help="Split to evaluate (default: the harness's: validation for BoolQ, PIQA, "
                                "HellaSwag, WinoGrande; test for ARC-e, ARC-c, OBQA)."),
            arg("--limit", type=int, metavar="N", help="Only the first N items of each task."),
            arg("--reference", choices=("gpt4all-paper",),
                help="Add published rows under yours: gpt4all-paper is the GPT4All paper's Table 1."),
            arg("--checkpoint", metavar="DIR", help="Folder of per-task checkpoints; rerunning resumes."),
            arg("--plot", action="store_true", help="Also draw the bar chart."))
def _eval(magics: Any, args: argparse.Namespace) -> Any:
    from ..batch.compare import compare, significance

    models = args.model or [None]  # None: the loaded (or default) model
    table = compare(models, args.tasks or None, metric=args.metric, source=args.source, split=args.split,
                    limit=args.limit, reference=args.reference, checkpoint=args.checkpoint, manager=magics.manager,
                    plot=args.plot)
    by_metric: dict[str, list[str]] = {}
    for title, metric in table.attrs["metrics"].items():
        by_metric.setdefault(metric, []).append(title)
    print("metric: " + "; ".join(f"{m} for {', '.join(titles)}" for m, titles in by_metric.items())
          + (" (as in the GPT4All paper's Table 1)" if args.metric == "table1" else "") + ".")
    items = table.attrs["items"]
    print(f"items ({table.attrs['source']}): " + ", ".join(f"{t} {n:,}" for t, n in items.items()) + ".")
    verdicts = significance(table)
    for pair in verdicts.columns:
        print(f"{pair}: " + "; ".join(f"{task} {v}" for task, v in verdicts[pair].items()) + ".")
    return table


core.CELL_EXTENSIONS.append(_add_flags)
core.CELL_HANDLERS.append(df_cell)
