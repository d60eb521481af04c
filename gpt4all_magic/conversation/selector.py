"""The chat panel's model selector: which models it offers, and loading one behind a progress bar."""

from __future__ import annotations

import math
import threading
import time
from typing import Callable

import ipywidgets as w

from ..manager import ModelManager
from ..models.catalog import BUNDLED_NAME

__all__ = ["load_with_progress", "model_choices", "model_key"]

LOAD_SPEED = 400e6  # bytes per second a typical disk plus mmap reaches; only for the progress estimate


def _loadable(manager: ModelManager) -> dict[str, str]:
    """``{name: source}`` of the models the manager can load right now (on disk, or on the server)."""
    return {row["name"]: row["source"] for row in manager.model_rows() if row.get("installed", True)}


def model_key(manager: ModelManager, name: str) -> tuple[str, str]:
    """``(key, label)`` for ``name`` in the selector: the key is its name if that finds it again, else
    its path."""
    ref = manager.resolve(name)  # unknown names fail here, with a one-line message
    known = _loadable(manager)
    key = ref.name if ref.name in known or ref.path is None else str(ref.path)
    return key, f"{ref.name} ({ref.source})"


def model_choices(manager: ModelManager, extra: tuple[str, str] | None = None
                  ) -> tuple[list[tuple[str, str]], str | None]:
    """``(label, key)`` for every loadable model (plus the loaded one), and the key to show as selected."""
    known = _loadable(manager)
    choices = [(f"{name} ({source})", name) for name, source in known.items()]
    current = manager.current
    value = None
    if current is not None:
        value = current.name if current.name in known else str(current.ref.path or current.name)
        if value not in known:
            choices.append((f"{current.name} (loaded)", value))
    keys = [key for _, key in choices]
    if extra is not None and extra[0] not in keys:
        choices.append((extra[1], extra[0]))
        keys.append(extra[0])
    if value is None and choices:
        default = manager.default_model or BUNDLED_NAME
        value = default if default in keys else choices[0][1]
    return choices, value


def load_with_progress(manager: ModelManager, key: str | None, progress: w.FloatProgress,
                       report: Callable[[str], None]) -> None:
    """Load ``key`` (None: the default) while ``progress`` estimates how far it got; errors re-raised."""
    ref = manager.resolve(key)
    current = manager.current
    if current is not None and current.ref == ref:
        report(f"{ref.name} is loaded.")
        return
    size = ref.path.stat().st_size if ref.path is not None and ref.path.exists() else 0
    expected = 0.5 + size / LOAD_SPEED  # llama.cpp reports no progress: the bar is an estimate
    waiting = " (waiting for the model to be free)" if manager.busy else ""
    done = threading.Event()
    errors: list[BaseException] = []

    def load() -> None:
        try:
            manager.load(key)
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors.append(exc)
        finally:
            done.set()

    started = time.perf_counter()
    progress.value = 0.0
    progress.layout.display = None
    threading.Thread(target=load, name="gpt4all-chat-load-model", daemon=True).start()
    try:
        while not done.wait(0.1):
            elapsed = time.perf_counter() - started
            progress.value = min(0.95, 1 - math.exp(-elapsed / expected))
            report(f"Loading {ref.name}… {elapsed:.1f} s{waiting}")
    finally:
        progress.value = 1.0
        progress.layout.display = "none"
    if errors:
        raise errors[0]
    report(f"Loaded {ref.name} in {time.perf_counter() - started:.1f} s.")
