"""The IPython layer: ``%%gpt4all`` and ``%gpt4all``. Nothing below this package knows about IPython."""

from __future__ import annotations

from typing import Any

# ruff: noqa: I001 - the order of these imports is the order of the cell flags' handlers.
from .core import Gpt4AllMagics
from . import error_commands  # noqa: F401
from . import chat_commands  # noqa: F401
from . import docs_commands  # noqa: F401  (before batch: --docs with --df is refused, not ignored)
from . import batch_commands  # noqa: F401
from . import structured_commands  # noqa: F401
from . import speed_commands  # noqa: F401
from . import catalog_commands  # noqa: F401
from . import remote_commands  # noqa: F401

__all__ = ["Gpt4AllMagics", "load", "unload"]


def load(ipython: Any) -> Gpt4AllMagics:
    """Register the magics on ``ipython`` (what ``%load_ext gpt4all_magic`` runs)."""
    magics = Gpt4AllMagics(shell=ipython)
    ipython.register_magics(magics)
    ipython.events.register("post_run_cell", magics.post_run_cell)
    return magics


def unload(ipython: Any) -> None:
    """Undo :func:`load` (``%unload_ext`` / ``%reload_ext``)."""
    for magics in [c for c in getattr(ipython, "configurables", []) if isinstance(c, Gpt4AllMagics)]:
        try:
            ipython.events.unregister("post_run_cell", magics.post_run_cell)
        except ValueError:
            pass
        ipython.configurables.remove(magics)
    registry = ipython.magics_manager.magics
    registry["line"].pop("gpt4all", None)
    registry["cell"].pop("gpt4all", None)
