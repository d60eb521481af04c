"""Module-level conveniences over the process-wide manager, for code outside the magics."""

from __future__ import annotations

import os
from typing import Any

from .backends.base import LoadedModel
from .errors import ModelNotDownloadedError
from .manager import get_manager

__all__ = ["list_models", "load", "model_info", "status", "unload"]


def load(name: str | os.PathLike[str] | None = None, *, n_ctx: int | None = None, n_threads: int | None = None,
         force: bool = False, download: bool = False) -> LoadedModel:
    """Load a model (default: the configured default, else the bundled one) and keep it loaded.

    ``download=True`` first fetches a catalog or Hub model that is not on disk yet, as
    ``%gpt4all load NAME --download`` does (refused before fetching if it cannot fit in free RAM).
    """
    manager = get_manager()
    if download:
        from .downloads import download_for_load

        download_for_load(name, force=force, manager=manager)
    try:
        return manager.load(name, n_ctx=n_ctx, n_threads=n_threads, force=force)
    except ModelNotDownloadedError:
        from .downloads import not_downloaded_error

        wanted = str(name) if name is not None else manager.default_model
        if not wanted:
            raise
        raise not_downloaded_error(wanted, manager.models_dir) from None


def unload() -> bool:
    """Free the loaded model; True if one was loaded."""
    return get_manager().unload()


def status() -> dict[str, Any]:
    """What is loaded, memory, context, threads and usage totals."""
    return get_manager().status()


def list_models() -> Any:
    """Models you can load as a pandas DataFrame (a connected server's models after ``connect``)."""
    import pandas as pd

    return pd.DataFrame(get_manager().model_rows())


def model_info(name: str | os.PathLike[str] | None = None, *, manager: Any = None) -> dict[str, Any]:
    """A model's GGUF metadata, read without loading it, plus its catalog entry's recommended sampling
    settings (not applied on their own: ``%gpt4all config`` them to use them)."""
    from . import catalog
    from .ggufinfo import read_gguf

    manager = manager or get_manager()
    ref = manager.resolve(name)
    if ref.path is None:  # a server's model
        rows = [r for r in manager.model_rows() if r.get("name") == ref.name]
        return {"model": ref.name, "source": ref.source, **(rows[0] if rows else {})}
    info = {"model": ref.name, "source": ref.source, **read_gguf(ref.path).summary()}
    entry = catalog.find_entry(ref.name, catalog.load_catalog(manager.models_dir))
    recommended = {k: v for k, v in (entry.generation_defaults() if entry else {}).items() if k != "system_prompt"}
    if recommended:
        info["recommended"] = "%gpt4all config " + " ".join(f"{k}={v}" for k, v in recommended.items())
    return info
