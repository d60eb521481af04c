"""The kernel-resident model manager: one per process, shared by magics, chat panel and batch jobs.

It owns the loaded model (and frees it on :meth:`ModelManager.unload`), serializes every caller with
one lock, and turns a streamed generation into a :class:`GenerationResult`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from . import catalog
from .backends.base import Backend, LoadedModel, Message, ModelRef, StreamStats
from .errors import EmptyPromptError, GenerationInterrupted, Gpt4AllError, ModelBusyError
from .options import GenerationOptions

__all__ = ["GenerationResult", "ModelManager", "default_threads", "get_manager"]


def default_threads() -> int:
    """Physical cores available to this process (llama-cpp-python's own default is half of them)."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    physical = None
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except Exception:  # psutil missing or unable to read the topology
        pass
    quota = _cgroup_cpu_quota()
    return max(1, min(physical or available, available, quota or available))


_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def _cgroup_cpu_quota() -> int | None:
    """CPUs a container's cgroup (v2 ``cpu.max``) lets this process use, rounded down; None if unlimited."""
    try:
        quota, period = _CPU_MAX.read_text(encoding="ascii").split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, int(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def rss_bytes() -> int | None:
    """Resident memory of this process."""
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except Exception:
        return None


@dataclass
class GenerationResult:
    """One finished (or interrupted) generation, with what is needed to reproduce and compare it."""

    text: str
    model: str
    options: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token: float | None  # seconds from the call to the first sampled token
    tokens_per_second: float | None  # decoding speed after the first token
    elapsed: float  # seconds for the whole call
    finish_reason: str  # "stop", "length", "stopped" (Stop button), "interrupted" (Ctrl-C), "error"
    notices: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    def __str__(self) -> str:
        return self.text

    @property
    def seed(self) -> int | None:
        return self.options.get("seed")

    def status_line(self) -> str:
        """``model · 25 prompt + 48 tokens · 112.3 tok/s · seed 42`` (plus why it ended, if unusual)."""
        parts = [self.model, f"{self.prompt_tokens} prompt + {self.completion_tokens} tokens"]
        if self.tokens_per_second:
            parts.append(f"{self.tokens_per_second:.1f} tok/s")
        parts.append(f"seed {self.seed}")
        ended = {"length": "hit max_tokens", "stopped": "stopped", "interrupted": "interrupted",
                 "error": "failed"}.get(self.finish_reason)
        if ended:
            parts.append(ended)
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Totals:
    generations: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_seconds: float = 0.0


class ModelManager:
    """Loads one model at a time through a backend and serializes everyone who uses it."""

    def __init__(self, backend: Backend | None = None, *, models_dir: str | os.PathLike[str] | None = None,
                 default_model: str | None = None, n_ctx: int = 4096, n_threads: int | None = None,
                 busy_timeout: float | None = 300.0):
        self._backend = backend
        self.models_dir = Path(models_dir).expanduser() if models_dir else catalog.default_models_dir()
        self.default_model = default_model or None
        self.n_ctx = n_ctx
        self.n_threads = n_threads or None
        self.busy_timeout = busy_timeout
        self.lock = threading.RLock()
        self._holder: str | None = None
        self._model: LoadedModel | None = None
        self._load_info: dict[str, Any] = {}
        self.totals = Totals()
        self.last_result: GenerationResult | None = None

    # -- backend and lock ------------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        if self._backend is None:
            from .backends.llama_cpp import LlamaCppBackend

            self._backend = LlamaCppBackend()
        return self._backend

    def set_backend(self, backend: Backend) -> None:
        """Swap the backend (unloading the current model first)."""
        with self.acquire("switching backend"):
            self.unload()
            self._backend = backend

    @contextlib.contextmanager
    def acquire(self, purpose: str = "generation") -> Iterator[None]:
        """Hold the model for ``purpose``; wait up to ``busy_timeout`` seconds for another holder."""
        timeout = -1 if self.busy_timeout is None else self.busy_timeout
        acquired = self.lock.acquire(blocking=False)
        if not acquired:
            if threading.current_thread() is threading.main_thread():  # a cell: say why it is not running yet
                print(f"note: waiting for the model ({self._holder or 'another task'}); interrupt the kernel to "
                      "stop waiting.", file=sys.stderr, flush=True)
            acquired = self.lock.acquire(timeout=timeout)
        if not acquired:
            raise ModelBusyError(
                f"The model is busy ({self._holder or 'another task'}) for more than {self.busy_timeout:.0f} s; "
                "wait for it to finish or press Stop in the chat panel, then run this again.")
        outer = self._holder
        self._holder = self._holder or purpose
        try:
            yield
        finally:
            self._holder = outer
            self.lock.release()

    @property
    def busy(self) -> bool:
        """True while some caller holds the model."""
        if self.lock.acquire(blocking=False):
            self.lock.release()
            return False
        return True

    # -- loading ---------------------------------------------------------------------------------
    @property
    def current(self) -> LoadedModel | None:
        """The loaded model, or None."""
        return self._model

    def resolve(self, name: str | os.PathLike[str] | None = None) -> ModelRef:
        """What ``name`` (or the configured default) refers to, without loading it."""
        ref = self.backend.resolve(name, self.default_model)  # a remote backend knows its own models
        return ref if ref is not None else catalog.resolve(name, self.models_dir, self.default_model)

    def model_rows(self) -> list[dict[str, Any]]:
        """One row per model this manager can offer: the server's when a remote backend is in use, else
        the bundled, installed, downloaded and catalog models."""
        loaded = self._model.name if self._model else None
        rows = self.backend.model_rows(loaded)
        return rows if rows is not None else catalog.model_rows(self.models_dir, loaded)

    def threads(self) -> int:
        return self.n_threads or default_threads()

    def load(self, name: str | os.PathLike[str] | None = None, *, n_ctx: int | None = None,
             n_threads: int | None = None, force: bool = False) -> LoadedModel:
        """Load a model (the default one if ``name`` is None); a model already loaded is kept."""
        ref = self.resolve(name)
        threads = n_threads or self.threads()
        with self.acquire(f"loading {ref.name}"):
            current = self._model
            if (current is not None and current.ref == ref and (n_ctx is None or n_ctx == current.n_ctx)
                    and (n_threads is None or n_threads == current.n_threads)):
                return current
            ctx = n_ctx or self.n_ctx
            if ref.path is not None:
                from .ggufinfo import read_gguf

                info = read_gguf(ref.path)  # refuses bad files before llama.cpp sees them
                if n_ctx is None and info.context_length:
                    ctx = min(ctx, info.context_length)
                self._check_memory(ref, info, ctx, force)
            started = time.perf_counter()
            # Load the new model before freeing the old one: a failed load leaves the old one usable.
            model = self.backend.load(ref, n_ctx=ctx, n_threads=threads)
            self.unload()
            self._model = model
            self._load_info = {"load_seconds": time.perf_counter() - started, "loaded_at": time.time()}
            return model

    def _check_memory(self, ref: ModelRef, info: Any, n_ctx: int, force: bool) -> None:
        """Hook for the RAM check; the catalog layer refines it."""
        from .memory import check_memory

        check_memory(ref, info, n_ctx, force)

    def ensure_loaded(self, name: str | os.PathLike[str] | None = None) -> LoadedModel:
        """The model to use for ``name``: the loaded one when ``name`` is None, else load it."""
        if name is None and self._model is not None:
            return self._model
        return self.load(name)

    def unload(self) -> bool:
        """Free the loaded model's memory; True if something was unloaded."""
        with self.acquire("unloading"):
            model, self._model = self._model, None
            if model is None:
                return False
            model.close()
            del model
            gc.collect()
            return True

    # -- generation ------------------------------------------------------------------------------
    def generate(self, messages: Sequence[Message], options: GenerationOptions | None = None, *,
                 model: str | os.PathLike[str] | None = None, on_text: Callable[[str], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, reuse_cache: bool = False) -> GenerationResult:
        """Stream an answer to ``messages``; Ctrl-C raises GenerationInterrupted carrying the partial result.

        ``reuse_cache`` (used by conversations) keeps the evaluated prefix of the previous call.
        """
        options = (options or GenerationOptions()).with_seed()
        if not messages or not any(m["content"].strip() for m in messages if m["role"] == "user"):
            raise EmptyPromptError("The prompt is empty; write something to ask the model.")
        messages = list(messages)
        if options.system_prompt and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": options.system_prompt})
        started = time.perf_counter()
        with self.acquire("generating"):
            loaded = self.ensure_loaded(model)
            stats = StreamStats()
            pieces: list[str] = []
            interrupted = False
            stream = loaded.stream_chat(messages, options, stats, should_stop or (lambda: False),
                                        reuse_cache=reuse_cache)
            try:
                for piece in stream:
                    pieces.append(piece)
                    if on_text is not None:
                        on_text(piece)
            except KeyboardInterrupt:
                interrupted = True
                stats.finish_reason = "interrupted"
            except Gpt4AllError as exc:
                # e.g. a server dying mid-stream: keep what already arrived on the error.
                stats.finish_reason = "error"
                exc.result = self._result(loaded, messages, options, stats, "".join(pieces), started)
                raise
            finally:
                stream.close()
                if interrupted:
                    loaded.recover()
            result = self._result(loaded, messages, options, stats, "".join(pieces), started)
        if interrupted:
            raise GenerationInterrupted(result)
        return result

    def _result(self, loaded: LoadedModel, messages: list[Message], options: GenerationOptions,
                stats: StreamStats, text: str, started: float) -> GenerationResult:
        ended = time.perf_counter()
        ttft = stats.t_first_token - started if stats.t_first_token is not None else None
        tps = None
        if stats.t_first_token is not None and stats.t_last_token is not None:
            span = stats.t_last_token - stats.t_first_token
            if stats.completion_tokens > 1 and span > 0:
                tps = (stats.completion_tokens - 1) / span
            elif stats.completion_tokens >= 1 and ended > started:
                tps = stats.completion_tokens / (ended - started)
        result = GenerationResult(
            text=text, model=loaded.name, options=options.to_dict(), prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.completion_tokens, time_to_first_token=ttft, tokens_per_second=tps,
            elapsed=ended - started, finish_reason=stats.finish_reason or "stop", notices=list(stats.notices),
            messages=[dict(m) for m in messages])
        self.totals.generations += 1
        self.totals.prompt_tokens += stats.prompt_tokens
        self.totals.completion_tokens += stats.completion_tokens
        self.totals.generation_seconds += ended - started
        self.last_result = result
        return result

    # -- reporting -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What is loaded and how it has been used."""
        from .ggufinfo import human_bytes

        model = self._model
        rss = rss_bytes()
        status: dict[str, Any] = {
            "model": model.name if model else None,
            "backend": model.backend_name if model else self.backend.name,
            "path": str(model.ref.path) if model and model.ref.path else None,
            "file_size": (human_bytes(model.ref.path.stat().st_size)
                          if model and model.ref.path and model.ref.path.exists() else None),
            "rss": human_bytes(rss) if rss is not None else None,
            "n_ctx": model.n_ctx if model else None,
            "n_threads": model.n_threads if model else self.threads(),
            "busy": self.busy,
            "load_seconds": round(self._load_info.get("load_seconds", 0.0), 3) if model else None,
            "generations": self.totals.generations,
            "prompt_tokens": self.totals.prompt_tokens,
            "completion_tokens": self.totals.completion_tokens,
            "generation_seconds": round(self.totals.generation_seconds, 2),
            "default_model": self.default_model or catalog.BUNDLED_NAME,
            "models_dir": str(self.models_dir),
        }
        if model:
            status.update(model.describe())
        return status


_MANAGER: ModelManager | None = None
_MANAGER_LOCK = threading.Lock()


def get_manager() -> ModelManager:
    """The process-wide manager (created on first use)."""
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is None:
            _MANAGER = ModelManager()
        return _MANAGER
