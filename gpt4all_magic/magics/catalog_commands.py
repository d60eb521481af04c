"""``%gpt4all search`` / ``download`` / ``rm``, and the download step of ``%gpt4all load --download``:
parse, call :mod:`gpt4all_magic.models.download` (through :mod:`gpt4all_magic.api`), print one line. (``%gpt4all list`` lives in core.)"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from IPython.core.error import UsageError

from ._base import arg, subcommand

__all__ = ["download_if_needed"]


@subcommand("search", "GGUF models on the Hugging Face Hub, as a DataFrame: `%gpt4all search qwen 1.5b`; "
                      "`%gpt4all search ORG/REPO` lists that repository's files.",
            arg("query", nargs="+", help="Words to search for, or a repository id."),
            arg("--limit", type=int, default=10, help="How many repositories to show (default 10)."))
def _search(magics: Any, args: argparse.Namespace) -> Any:
    import pandas as pd

    from ..models.hub import search

    query = " ".join(args.query)
    rows = search(query, limit=args.limit)
    if not rows:
        print(f"No GGUF models on the Hub match '{query}'; try fewer or other words.")
        return None
    return pd.DataFrame(rows)


@subcommand("download", "Download a catalog model, or any GGUF file from the Hub: sha256-verified, resumable.",
            arg("name", help="A catalog name (see `%gpt4all list`), a repository id followed by FILE, "
                             "or REPO_ID/FILE.gguf."),
            arg("file", nargs="?", help="The file to take from the repository named first."),
            arg("--revision", help="Branch, tag or commit (default: the catalog's, else main)."))
def _download(magics: Any, args: argparse.Namespace) -> None:
    from ..api import download

    with _resumable():
        result = download(args.name, args.file, revision=args.revision, models_dir=magics.manager.models_dir)
    print(result.summary())


@subcommand("rm", "Delete a downloaded model (or an unfinished download) and report the space freed.",
            arg("name", help="The model's name in `%gpt4all list`, or REPO_ID/FILE.gguf."))
def _rm(magics: Any, args: argparse.Namespace) -> None:
    from ..api import remove

    print(remove(args.name, manager=magics.manager).summary())


def download_if_needed(magics: Any, name: str | None, force: bool) -> None:
    """For ``%gpt4all load NAME --download``: :func:`gpt4all_magic.api.download_for_load`, reported."""
    from ..api import download_for_load

    with _resumable():
        result = download_for_load(name, force=force, manager=magics.manager)
    if result is not None:
        print(result.summary())


@contextmanager
def _resumable() -> Iterator[None]:
    """Ctrl-C during a download: one line saying that the bytes are kept for the rerun."""
    try:
        yield
    except KeyboardInterrupt:
        raise UsageError("Download interrupted; what arrived is kept, so running the same command again "
                         "resumes where it stopped.") from None
