"""``%gpt4all docs add|list|search|rm`` (collections of local documents) and ``%%gpt4all --docs NAME`` (the
cell's question answered with the collection's best chunks in the prompt, and the sources shown under it)."""

from __future__ import annotations

import argparse
import html
import os
from typing import Any

from IPython.core.error import UsageError

from ..api import generate
from ..manager import GenerationResult
from . import core
from ._base import Parser, arg, subcommand

__all__ = ["docs_cell", "sources_bundle"]


def _add_flags(p: Parser) -> None:
    group = p.add_argument_group("local documents")
    # "%%": an argument group's add_argument does not escape "%" as Parser.add_argument does
    group.add_argument("--docs", metavar="NAME", action="append",
                       help="Answer with the best chunks of collection NAME (`%%gpt4all docs add NAME PATH...`) in the "
                            "prompt, after the question; the sources are shown under the answer (repeatable).")
    group.add_argument("--docs-k", type=int, default=None, metavar="K",
                       help="With --docs: how many chunks to put in the prompt (default: 3).")


def sources_bundle(sources: list[dict[str, Any]]) -> dict[str, str]:
    """The sources an answer was given, as text and as HTML links (relative, so JupyterLab opens the file)."""
    lines = [f"[{s['number']}] {s['file']}, {s['location']}" for s in sources]
    items = []
    for s in sources:
        href = html.escape(s["file"].replace(os.sep, "/"), quote=True)
        link = (f'<a href="{href}">{html.escape(s["file"])}</a>' if not os.path.isabs(s["file"])
                else html.escape(s["file"]))  # outside the notebook's folder: JupyterLab cannot open it
        items.append(f"<li>[{s['number']}] {link}, {html.escape(s['location'])}</li>")
    return {"text/plain": "Sources:\n" + "\n".join(lines),
            "text/html": f'<div class="gpt4all-sources"><b>Sources</b><ul>{"".join(items)}</ul></div>'}


def docs_cell(magics: Any, args: argparse.Namespace, cell: str) -> Any:
    """Handle ``%%gpt4all --docs NAME``; None when the flag is absent."""
    names = getattr(args, "docs", None)
    if not names:
        if getattr(args, "docs_k", None) is not None:
            raise UsageError("--docs-k only applies with --docs NAME.")
        return None
    if getattr(args, "df", None):
        raise UsageError("--docs answers one question; it cannot be combined with --df (use g4.generate(..., "
                         "docs=NAME) in a loop, or ask per row without documents).")
    k = 3 if args.docs_k is None else args.docs_k
    if k < 1:
        raise UsageError(f"--docs-k must be at least 1, got {k}.")

    def ask(prompt: str, args: argparse.Namespace, options: Any, on_text: Any) -> GenerationResult:
        if args.chat:
            session = magics.conversation
            if args.model:
                session.model = args.model
            session.docs_k = k
            return session.send(prompt, on_text=on_text, options=options, docs=names)
        return generate(prompt, model=args.model, options=options, on_text=on_text, manager=magics.manager,
                        docs=names, docs_k=k)

    return magics.answer(cell, args, ask=ask, after=lambda result: _show_sources(magics, result))


def _show_sources(magics: Any, result: GenerationResult) -> None:
    if not result.sources:
        return
    bundle = sources_bundle(result.sources)
    if magics.rich():
        from IPython.display import display

        display(bundle, raw=True)
    else:
        print(bundle["text/plain"])


@subcommand("docs", "Local documents as context: `docs add NAME PATH...` indexes files and folders, `docs list`, "
                    "`docs search NAME QUERY`, `docs rm NAME`; then `%%gpt4all --docs NAME`.",
            arg("action", choices=("add", "list", "search", "rm"), help="What to do."),
            arg("name", nargs="?", help="The collection (letters, digits, '.', '_', '-')."),
            arg("words", nargs="*", metavar="PATH|QUERY",
                help="add: files and folders (md, txt, py, ipynb, html, pdf, docx; none: refresh what it holds); "
                     "search: the question."),
            arg("-k", type=int, default=5, help="search: how many chunks (default: 5); after the query."),
            arg("--model", help="add: the embedding model of a new collection (default: nomic-embed-text-v1.5 if "
                                "downloaded, else the bundled model)."))
def _docs(magics: Any, args: argparse.Namespace) -> Any:
    from .. import docs

    if args.action == "list":
        return docs.list()
    if not args.name:
        raise UsageError(f"Name the collection: `%gpt4all docs {args.action} NAME"
                         + (" PATH...`." if args.action == "add" else " QUERY`." if args.action == "search" else "`."))
    if args.action == "add":
        report = docs.add(args.name, *args.words, model=args.model, manager=magics.manager)
        for note in report.notes:
            print(f"note: {note}")
        print(report.summary())
        return None
    if args.action == "search":
        return docs.search(args.name, " ".join(args.words), args.k, manager=magics.manager)
    print(docs.rm(args.name))
    return None


core.CELL_EXTENSIONS.append(_add_flags)
core.CELL_HANDLERS.append(docs_cell)
