"""``python -m gpt4all_magic demo``: the magics on the bundled model, in a terminal IPython session.

``python -m gpt4all_magic demo --lab`` opens the quickstart notebook in JupyterLab instead (127.0.0.1).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

DEMO_CELLS = [
    "%load_ext gpt4all_magic",
    "%gpt4all info",
    "%%gpt4all -t 0 -n 60\nWrite a haiku about Jupyter notebooks.",
    "answer = _\ntype(answer).__name__, len(answer.split())",
    'topic = "tea"\nrecipe = {"cups": 2}',
    "%%gpt4all -t 0 -n 60\nGive one tip for brewing {topic}. Settings (left as is): {\"cups\": 2}",
    "%%gpt4all --chat -t 0 -n 40\nMy name is Ada. Say hello to me.",
    "%%gpt4all --chat -t 0 -n 40\nWhat is my name?",
    "%gpt4all status",
]


def run_demo() -> int:
    """Run :data:`DEMO_CELLS` through a real IPython shell, echoing each cell like a notebook."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    for number, cell in enumerate(DEMO_CELLS, start=1):
        print(f"\n\033[1mIn [{number}]:\033[0m " + cell.replace("\n", "\n        "))
        result = shell.run_cell(cell, store_history=True)
        if not result.success:
            return 1
    print("\nNext: `jupyter lab example_notebooks/quickstart.ipynb`, or `python -m gpt4all_magic demo --lab`.")
    return 0


def run_lab() -> int:
    """Open the quickstart notebook in JupyterLab, listening on 127.0.0.1 only."""
    notebook = Path(__file__).resolve().parent.parent / "example_notebooks" / "quickstart.ipynb"
    if not notebook.exists():
        print("The quickstart notebook is in the source checkout (example_notebooks/); run this from there.")
        return 1
    return subprocess.call([sys.executable, "-m", "jupyter", "lab", "--ServerApp.ip=127.0.0.1", str(notebook)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpt4all_magic", description="gpt4all-magic command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="Show the magics on the bundled model (terminal, or --lab).")
    demo.add_argument("--lab", action="store_true", help="Open the quickstart notebook in JupyterLab.")
    sub.add_parser("bench", help="Run the core benchmark (see gpt4all_magic.bench.core).")
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from .bench.core import main as bench_main

        return bench_main(rest)
    return run_lab() if args.lab else run_demo()


if __name__ == "__main__":
    raise SystemExit(main())
