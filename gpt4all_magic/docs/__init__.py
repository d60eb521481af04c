"""Your local documents as context: ``g4.docs`` is this module.

    import gpt4all_magic as g4
    g4.docs.add("notes", "./notes", "paper.pdf")   # index (again: only changed files are re-embedded)
    g4.docs.search("notes", "how do I reset the VPN token?")   # a DataFrame of chunks, scores and sources
    g4.generate("How do I reset the VPN token?", docs="notes").sources
    g4.docs.list(); g4.docs.rm("notes")

A collection is one SQLite file under ``$XDG_CACHE_HOME/gpt4all-magic/docs`` (or ``$GPT4ALL_MAGIC_DOCS_DIR``).
Needs the ``[docs]`` extra: ``pip install "gpt4all-magic[docs]"``.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["add", "hits", "list", "rm", "search"]


def add(name: str, *paths: str | os.PathLike[str], model: str | None = None, progress: bool = True,
        manager: Any = None) -> Any:
    """Index files and folders (md, txt, py, ipynb, html, pdf, docx) into collection ``name``; with no paths,
    refresh it. Only files whose bytes changed are embedded again; files gone from disk are dropped.
    ``model`` picks the embedding model of a new collection (default: nomic-embed-text-v1.5 if downloaded,
    else the bundled model). Returns an :class:`~.index.AddReport`."""
    from .index import add as run

    return run(name, *paths, model=model, progress=progress, manager=manager)


def search(name: str, query: str, k: int = 5, *, manager: Any = None) -> Any:
    """The ``k`` best chunks for ``query`` (vectors and BM25, fused) as a DataFrame with their sources."""
    from .retrieve import search as run

    return run(name, query, k, manager=manager)


def hits(name: str, query: str, k: int = 5, *, manager: Any = None) -> Any:
    """The same as :func:`search`, as a list of :class:`~.retrieve.Hit`."""
    from .retrieve import hits as run

    return run(name, query, k, manager=manager)


def list() -> Any:  # noqa: A001  (g4.docs.list(), as %gpt4all docs list)
    """The collections on disk as a DataFrame: files, chunks, embedding model, size, folders, file."""
    import pandas as pd

    from .index import collections

    return pd.DataFrame(collections(), columns=["name", "files", "chunks", "model", "dim", "size_mb", "roots", "path"])


def rm(name: str) -> str:
    """Delete collection ``name`` (its index file; your documents are not touched)."""
    from .index import remove

    return remove(name)
