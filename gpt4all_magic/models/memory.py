"""Free-RAM check before a model is loaded (or downloaded to be loaded): refuse with the numbers rather
than swap or crash. ``force`` skips the check."""

from __future__ import annotations

from typing import Any

from ..engines.base import ModelRef
from ..errors import NotEnoughMemoryError
from ..text import human_bytes
from .gguf import GGUFInfo

__all__ = ["available_ram", "check_catalog_ram", "check_memory", "estimate_ram"]


def available_ram() -> int | None:
    """Bytes of RAM available to new allocations (None if it cannot be read)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:
        return None


def estimate_ram(info: GGUFInfo, n_ctx: int) -> int:
    """Weights + f16 KV cache for ``n_ctx`` tokens + ~10% working buffers."""
    md, arch = info.metadata, info.architecture
    layers = int(md.get(f"{arch}.block_count") or 0)
    embd = int(md.get(f"{arch}.embedding_length") or 0)
    heads = int(md.get(f"{arch}.attention.head_count") or 1) or 1
    kv_heads = md.get(f"{arch}.attention.head_count_kv", heads)
    kv_heads = int(kv_heads if not isinstance(kv_heads, list) else max(kv_heads))
    head_dim = int(md.get(f"{arch}.attention.key_length") or (embd // heads if heads else 0))
    kv_cache = 2 * layers * n_ctx * kv_heads * head_dim * 2  # K and V, f16
    weights = info.file_size
    return int((weights + kv_cache) * 1.1)


def check_memory(ref: ModelRef, info: Any, n_ctx: int, force: bool, available: int | None = None, *,
                 anyway: str = "") -> None:
    """Raise NotEnoughMemoryError if the model will not fit in free RAM (unless ``force``); ``anyway`` is how
    to go ahead regardless (default: ``%gpt4all load NAME --force``)."""
    if force:
        return
    available = available_ram() if available is None else available
    if available is None:
        return
    needed = estimate_ram(info, n_ctx)
    if needed > available:
        raise NotEnoughMemoryError(
            f"{ref.name} needs about {human_bytes(needed)} of RAM (n_ctx={n_ctx}) but only "
            f"{human_bytes(available)} is free; close other programs, use a smaller model or n_ctx, "
            f"or {anyway or f'load anyway with `%gpt4all load {ref.name} --force`'}.")


def check_catalog_ram(entry: Any, force: bool, available: int | None = None) -> None:
    """Before downloading a catalog model in order to load it: refuse early if its RAM estimate cannot fit."""
    needed = entry.ram_bytes
    if force or not needed:
        return
    available = available_ram() if available is None else available
    if available is not None and needed > available:
        raise NotEnoughMemoryError(
            f"{entry.name} needs about {human_bytes(needed)} of RAM (catalog estimate at n_ctx 4096) but only "
            f"{human_bytes(available)} is free, so it was not downloaded; pick a smaller model from "
            f"`%gpt4all list`, or go ahead with `%gpt4all load {entry.name} --download --force`.")
