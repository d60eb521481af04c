"""Module-level conveniences over the process-wide manager, for code outside the magics."""

from __future__ import annotations

import os
from typing import Any

from . import catalog
from .backends.base import LoadedModel
from .manager import get_manager

__all__ = ["list_models", "load", "model_info", "status", "unload"]


def load(name: str | os.PathLike[str] | None = None, *, n_ctx: int | None = None, n_threads: int | None = None,
         force: bool = False) -> LoadedModel:
    """Load a model (default: the configured default, else the bundled one) and keep it loaded."""
    return get_manager().load(name, n_ctx=n_ctx, n_threads=n_threads, force=force)


def unload() -> bool:
    """Free the loaded model; True if one was loaded."""
    return get_manager().unload()


def status() -> dict[str, Any]:
    """What is loaded, memory, context, threads and usage totals."""
    return get_manager().status()


def list_models() -> Any:
    """Catalog, downloaded, installed and bundled models as a pandas DataFrame."""
    import pandas as pd

    manager = get_manager()
    current = manager.current
    return pd.DataFrame(catalog.model_rows(manager.models_dir, current.name if current else None))


def model_info(name: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """A model's GGUF metadata, read without loading it."""
    from .ggufinfo import read_gguf

    ref = get_manager().resolve(name)
    return {"model": ref.name, "source": ref.source, **read_gguf(ref.path).summary()}
