"""llama.cpp's native side, shared by everything in this engine: importing llama_cpp once with its log
routed to the ``gpt4all_magic.llama_cpp`` logger (and a small ring buffer used to explain failures),
holding Ctrl-C back while native code runs Python callbacks, and the context-overflow message."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import signal
import threading
from typing import Any, Iterator

from ...errors import ContextOverflowError, ModelLoadError

__all__ = ["FALLBACK_TEMPLATE", "amx_repack", "clear_native_log", "context_overflow", "deferred_interrupt",
           "import_llama_cpp", "native_log_tail", "without_amx_repack"]

log = logging.getLogger("gpt4all_magic.llama_cpp")
_NATIVE_LOG: collections.deque[str] = collections.deque(maxlen=40)
# ggml_log_level: NONE=0, DEBUG=1, INFO=2, WARN=3, ERROR=4, CONT=5 (continues the previous line).
_LOG_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_log_callback: Any = None  # keeps the ctypes callback alive
_last_level = logging.DEBUG
_import_lock = threading.Lock()
FALLBACK_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}### Human:\n{{ m['content'] }}\n\n"
    "{% else %}### Assistant:\n{{ m['content'] }}\n\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}### Assistant:\n{% endif %}"
)


def import_llama_cpp() -> Any:
    """Import llama_cpp once, with its native logging routed away from stdout/stderr."""
    global _log_callback
    with _import_lock:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelLoadError(
                f"llama-cpp-python is not installed ({exc}); install it with `pip install llama-cpp-python`."
            ) from None
        if _log_callback is None:
            @llama_cpp.llama_log_callback
            def _route(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
                global _last_level
                if level != 5:
                    _last_level = _LOG_LEVELS.get(level, logging.DEBUG)
                line = text.decode("utf-8", errors="replace").rstrip("\n")
                if line:
                    _NATIVE_LOG.append(line)
                    log.log(_last_level, "%s", line)

            llama_cpp.llama_log_set(_route, ctypes.c_void_p(0))
            _log_callback = _route
        return llama_cpp


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C back until the block ends, then raise it.

    llama.cpp logs through our Python callback while it loads a model or makes/frees a context, and a
    KeyboardInterrupt raised inside a ctypes callback is swallowed (lost). Main thread only.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[bool] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    except (ValueError, OSError):  # not the main interpreter, or signals unavailable
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def native_log_tail(n: int = 5, min_level_words: tuple[str, ...] = ("error", "failed", "invalid")) -> str:
    """The last native log lines that look like errors, for error messages."""
    lines = [ln for ln in _NATIVE_LOG if any(w in ln.lower() for w in min_level_words)]
    return " | ".join(lines[-n:])


def amx_repack(llama_cpp: Any) -> bool:
    """True when this llama.cpp build would repack weights for Intel AMX on this CPU (``AMX_INT8 = 1``)."""
    try:
        return b"AMX_INT8 = 1" in (llama_cpp.llama_print_system_info() or b"")
    except (AttributeError, OSError):
        return False


@contextlib.contextmanager
def without_amx_repack(llama_cpp: Any) -> Iterator[None]:
    """Load models without llama.cpp's "extra buffer types" while the block runs, on CPUs with AMX.

    Measured here (Xeon with AMX, llama-cpp-python 0.3.36 built natively): weights repacked into the
    AMX buffer make every decode of two or more tokens crash in ``ggml_backend_amx_mul_mat``
    (llama.cpp#20824, open upstream), so prompt evaluation and all batch work segfault. With
    ``use_extra_bufts = False`` the same build runs the AVX-512 kernels and works. ``Llama()`` has no
    argument for it, so its default model parameters are adjusted for the duration of the load.
    """
    if not amx_repack(llama_cpp):
        yield
        return
    lib = llama_cpp.llama_cpp  # the module Llama reads llama_model_default_params from
    original = lib.llama_model_default_params

    def defaults() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    with _import_lock:
        lib.llama_model_default_params = defaults
        try:
            yield
        finally:
            lib.llama_model_default_params = original


def clear_native_log() -> None:
    """Forget the buffered native log lines (before a load whose failure they should explain)."""
    _NATIVE_LOG.clear()


def context_overflow(model: Any, what: str, n_tokens: int, wanted: int) -> ContextOverflowError:
    """The one-line error for ``what`` (``n_tokens`` long) not fitting ``model``'s context window; it
    names the ``--n-ctx`` (a power of two >= ``wanted``) that would fit."""
    n_ctx = 512
    while n_ctx < wanted:
        n_ctx *= 2
    return ContextOverflowError(
        f"{what} is {n_tokens:,} tokens but {model.name}'s context window is {model.n_ctx:,}; shorten it or "
        f"reload with a larger window (`%gpt4all load {model.name} --n-ctx {n_ctx}`).",
        prompt_tokens=n_tokens, n_ctx=model.n_ctx)
