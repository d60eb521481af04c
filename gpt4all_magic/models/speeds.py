"""Measured speeds of model files on this machine: the cache ``%gpt4all bench`` writes and
``%gpt4all list`` ("speed here") and batch jobs (duration estimates) read.

One JSON file, ``$XDG_CACHE_HOME/gpt4all-magic/speeds.json`` (else ``~/.cache/gpt4all-magic/``),
keyed by the model file (resolved path, size and modification time: a replaced file is measured
again) and the llama.cpp build (llama-cpp-python's version and llama.cpp's system info, which names
the CPU features the build uses). Measuring happens above the manager (:mod:`gpt4all_magic.speed`);
this module only stores and reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["build_key", "cache_file", "estimate_seconds", "file_key", "label", "lookup", "record"]

_build: str | None = None


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "gpt4all-magic" / "speeds.json"


def file_key(path: str | os.PathLike[str]) -> str:
    p = Path(path).resolve()
    st = p.stat()
    return f"{p}|{st.st_size}|{st.st_mtime_ns}"


def build_key() -> str:
    """llama-cpp-python's version and a hash of llama.cpp's system info (empty without llama_cpp)."""
    global _build
    if _build is None:
        try:
            import llama_cpp

            info = llama_cpp.llama_print_system_info() or b""
            version = getattr(llama_cpp, "__version__", "?")
        except (ImportError, AttributeError, OSError):
            return ""
        _build = f"llama-cpp-python {version} | {hashlib.sha1(info).hexdigest()[:12]}"
    return _build


def _read() -> dict[str, Any]:
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def lookup(path: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The cached measurement of this file with this llama.cpp build, or None."""
    if path is None:
        return None
    try:
        key = f"{file_key(path)}|{build_key()}"
    except OSError:
        return None
    entry = _read().get(key)
    return entry if isinstance(entry, dict) else None


def record(path: str | os.PathLike[str], result: dict[str, Any]) -> None:
    """Store a measurement (``pp``/``tg`` tok/s means and spreads, settings) for this file and build."""
    data = _read()
    data[f"{file_key(path)}|{build_key()}"] = {**result, "measured_at": time.strftime("%Y-%m-%d %H:%M")}
    target = cache_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(target)


def label(path: str | os.PathLike[str] | None) -> str | None:
    """``pp 1,234 · tg 98 tok/s`` for ``%gpt4all list``, or None when not measured."""
    entry = lookup(path)
    if entry is None:
        return None
    return f"pp {entry['pp']:,.0f} · tg {entry['tg']:,.0f} tok/s"


def estimate_seconds(path: str | os.PathLike[str] | None, prompt_tokens: float, generated_tokens: float = 0) -> float | None:
    """Seconds for evaluating ``prompt_tokens`` and generating ``generated_tokens`` at the cached speeds
    (None when this file has not been measured with this build)."""
    entry = lookup(path)
    if entry is None or not entry.get("pp") or not entry.get("tg"):
        return None
    return prompt_tokens / entry["pp"] + generated_tokens / entry["tg"]
