"""``%gpt4all search`` / ``download`` / ``rm``, and the download step of ``%gpt4all load --download``:
parse, call :mod:`gpt4all_magic.downloads`, print one line. (``%gpt4all list`` lives in core.)"""

from __future__ import annotations

import argparse
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

    from ..hub_api import search

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
    from ..downloads import download

    try:
        result = download(args.name, args.file, revision=args.revision, models_dir=magics.manager.models_dir)
    except KeyboardInterrupt:
        raise UsageError("Download interrupted; what arrived is kept, so running the same command again "
                         "resumes where it stopped.") from None
    print(result.summary())


@subcommand("rm", "Delete a downloaded model (or an unfinished download) and report the space freed.",
            arg("name", help="The model's name in `%gpt4all list`, or REPO_ID/FILE.gguf."))
def _rm(magics: Any, args: argparse.Namespace) -> None:
    from ..downloads import remove

    current = magics.manager.current
    loaded = current.ref.path if current is not None and current.ref.path is not None else None
    print(remove(args.name, models_dir=magics.manager.models_dir, loaded=loaded).summary())


def download_if_needed(magics: Any, name: str | None, force: bool) -> None:
    """For ``%gpt4all load NAME --download``: fetch NAME first when it is known but not on disk.

    A catalog model whose RAM estimate exceeds free memory is refused before anything is downloaded
    (``--force`` skips that, as it skips the check at load time).
    """
    from .. import catalog
    from ..errors import ModelNotDownloadedError
    from ..memory import check_catalog_ram

    manager = magics.manager
    try:
        manager.resolve(name)
        return
    except ModelNotDownloadedError:
        pass
    entry = catalog.find_entry(name or manager.default_model or "", catalog.load_catalog(manager.models_dir))
    if entry is not None:
        check_catalog_ram(entry, force)
    _download(magics, argparse.Namespace(name=name or manager.default_model, file=None, revision=None))
