"""The kernel-resident model manager: one per process, the only door to the engines.

Magics, the chat panel, batch jobs and the Python API all come through here: it owns the loaded model
(and frees it on :meth:`ModelManager.unload`), serializes every caller with one lock, keeps the usage
totals, and turns an engine's stream into a :class:`GenerationResult`. Which engine runs models is
swapped with :meth:`ModelManager.use` (``connect`` / ``disconnect``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .engines.base import (
    Backend,
    Embedder,
    LoadedModel,
    Message,
    ModelRef,
    OnResult,
    ResponseFormat,
    ScoreRequest,
    ScoreResult,
    StreamStats,
    TokenCount,
)
from .errors import EmptyPromptError, GenerationInterrupted, Gpt4AllError
from .lock import ModelLock
from .models import catalog
from .models.resolve import resolve, resolve_served
from .options import GenerationOptions, LoadSettings
from .results import Embedding, GenerationResult, Totals
from .system import default_threads, rss_bytes
from .text import human_bytes, tokens_per_second

__all__ = ["Embedding", "GenerationResult", "ModelManager", "Totals", "get_manager"]


class ModelManager:
    """Loads one model at a time through a backend and serializes everyone who uses it."""

    def __init__(self, backend: Backend | None = None, *, models_dir: str | os.PathLike[str] | None = None,
                 default_model: str | None = None, n_ctx: int = 4096, n_threads: int | None = None,
                 n_batch: int = 512, busy_timeout: float | None = 300.0, settings: LoadSettings | None = None):
        self._backend = backend
        self.settings = settings or LoadSettings(n_ctx=n_ctx, n_threads=n_threads or 0, n_batch=n_batch,
                                                 busy_timeout=busy_timeout, models_dir=models_dir)
        self.default_model = default_model or None
        self.lock = ModelLock()
        self._model: LoadedModel | None = None
        self._load_info: dict[str, Any] = {}
        self.totals = Totals()
        self.last_result: GenerationResult | None = None
        self.embedding_model: str | None = None  # None: nomic-embed-text-v1.5 if downloaded, else the bundled model
        self._embedder: Embedder | None = None
        self._embed_prefixes: dict[str, str] = {}  # the loaded embedding model's task prefixes, by kind

    # -- settings (one typed LoadSettings; these properties read and replace it) ---------------------
    def configure(self, **changes: Any) -> None:
        """Change load settings (validated together by :class:`LoadSettings`); they apply to the next load."""
        self.settings = self.settings.replace(**changes)

    n_ctx = property(lambda self: self.settings.n_ctx, lambda self, v: self.configure(n_ctx=v))
    n_threads = property(lambda self: self.settings.n_threads, lambda self, v: self.configure(n_threads=v or 0))
    n_batch = property(lambda self: self.settings.n_batch, lambda self, v: self.configure(n_batch=v))
    busy_timeout = property(lambda self: self.settings.busy_timeout, lambda self, v: self.configure(busy_timeout=v))

    @property
    def models_dir(self) -> Path:
        """The models folder: the setting, else ``$GPT4ALL_MAGIC_MODELS_DIR`` or the cache's default."""
        return self.settings.models_dir or catalog.default_models_dir()

    @models_dir.setter
    def models_dir(self, value: str | os.PathLike[str] | None) -> None:
        self.configure(models_dir=value)

    def threads(self) -> int:
        """The threads a load uses: the setting, or the physical cores when it is 0 (auto)."""
        return self.settings.n_threads or default_threads()

    # -- backend and lock ------------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        if self._backend is None:
            from .engines.llama.model import LlamaCppBackend

            self._backend = LlamaCppBackend()
        return self._backend

    def use(self, backend: Backend | None) -> Backend:
        """Run models with ``backend`` from now on (None: local llama.cpp); the current model is unloaded
        and the backend replaced is closed. Returns the one replaced."""
        with self.acquire("switching backend"):
            self.unload()
            self.unload_embedder()
            previous, self._backend = self._backend, backend
        if previous is not None and previous is not backend:
            previous.close()
        return previous

    def acquire(self, purpose: str = "generation") -> contextlib.AbstractContextManager[None]:
        """Hold the model for ``purpose``; wait up to ``busy_timeout`` seconds for another holder."""
        return self.lock.hold(purpose, self.busy_timeout)

    @property
    def busy(self) -> bool:
        """True while some caller holds the model."""
        return self.lock.busy

    # -- loading ---------------------------------------------------------------------------------
    @property
    def current(self) -> LoadedModel | None:
        """The loaded model, or None."""
        return self._model

    def resolve(self, name: str | os.PathLike[str] | None = None) -> ModelRef:
        """What ``name`` (or the configured default) refers to, without loading it."""
        served = self.backend.served_models()  # a server resolves among its own model ids
        if served is not None:
            return resolve_served(name, served, self.default_model)
        return resolve(name, self.models_dir, self.default_model)

    def model_rows(self) -> list[dict[str, Any]]:
        """One row per model this manager can offer: the server's when a remote backend is in use, else
        the bundled, installed, downloaded and catalog models."""
        from .models.resolve import model_rows

        loaded = self._model.name if self._model else None
        rows = self.backend.model_rows(loaded)
        return rows if rows is not None else model_rows(self.models_dir, loaded)

    def load(self, name: str | os.PathLike[str] | None = None, *, n_ctx: int | None = None,
             n_threads: int | None = None, n_batch: int | None = None, force: bool = False) -> LoadedModel:
        """Load a model (the default one if ``name`` is None); a model already loaded is kept. Settings not
        given come from :attr:`settings`; ``n_threads=0`` means the physical cores."""
        given = {k: v for k, v in (("n_ctx", n_ctx), ("n_threads", n_threads), ("n_batch", n_batch)) if v is not None}
        wanted = self.settings.replace(**given)  # validates what was given
        ref = self.resolve(name)
        threads = wanted.n_threads or default_threads()
        with self.acquire(f"loading {ref.name}"):
            current = self._model
            if (current is not None and current.ref == ref and (n_ctx is None or n_ctx == current.n_ctx)
                    and (n_threads is None or threads == current.n_threads)
                    and (n_batch is None or min(n_batch, current.n_ctx) == current.n_batch)):
                return current
            ctx = wanted.n_ctx
            if ref.path is not None:
                from .models.gguf import read_gguf
                from .models.memory import check_memory

                info = read_gguf(ref.path)  # refuses bad files before llama.cpp sees them
                if n_ctx is None and info.context_length:
                    ctx = min(ctx, info.context_length)
                check_memory(ref, info, ctx, force)
            started = time.perf_counter()
            # Load the new model before freeing the old one: a failed load leaves the old one usable.
            model = self.backend.load(ref, n_ctx=ctx, n_threads=threads, n_batch=wanted.n_batch)
            self.unload()
            self._model = model
            self._load_info = {"load_seconds": time.perf_counter() - started, "loaded_at": time.time()}
            return model

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
                 should_stop: Callable[[], bool] | None = None, reuse_cache: bool = False,
                 response_format: ResponseFormat | None = None) -> GenerationResult:
        """Stream an answer to ``messages``; Ctrl-C raises GenerationInterrupted carrying the partial result.

        ``reuse_cache`` (used by conversations) keeps the evaluated prefix of the previous call;
        ``response_format`` constrains the answer to JSON following a schema (the caller validates it).
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
                                        reuse_cache=reuse_cache, response_format=response_format)
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
        tps = tokens_per_second(stats.completion_tokens, stats.t_first_token, stats.t_last_token, ended - started)
        result = GenerationResult(
            text=text, model=loaded.name, options=options.to_dict(), prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.completion_tokens, time_to_first_token=ttft, tokens_per_second=tps,
            elapsed=ended - started, finish_reason=stats.finish_reason or "stop", notices=list(stats.notices),
            messages=[dict(m) for m in messages])
        self.totals.add(stats.prompt_tokens, stats.completion_tokens, ended - started)
        self.last_result = result
        return result

    def generate_many(self, prompts: Sequence[Sequence[Message]], options: GenerationOptions,
                      on_result: OnResult | None = None, *, model: str | os.PathLike[str] | None = None,
                      should_stop: Callable[[], bool] = lambda: False, max_parallel: int | None = None,
                      response_format: ResponseFormat | None = None,
                      ) -> list[tuple[str, StreamStats, Exception | None]]:
        """Answer each message list on its own, as many together as the engine can; ``(text, stats, error)``
        per prompt in input order, ``on_result`` as each finishes (see :meth:`LoadedModel.generate_many`).
        Rows that produced text count in the usage totals."""
        started = time.perf_counter()
        done = Totals()

        def report(i: int, text: str, stats: StreamStats, error: Exception | None) -> None:
            if error is None:  # finished, stopped or interrupted with its text: it was generated
                done.add(stats.prompt_tokens, stats.completion_tokens, 0.0)
            if on_result is not None:
                on_result(i, text, stats, error)

        with self.acquire("batch generation"):
            loaded = self.ensure_loaded(model)
            try:
                return loaded.generate_many(prompts, options, report, should_stop=should_stop,
                                            max_parallel=max_parallel, response_format=response_format)
            finally:
                self.totals.add(done.prompt_tokens, done.completion_tokens, time.perf_counter() - started,
                                generations=done.generations)

    def check_format(self, response_format: ResponseFormat, model: str | os.PathLike[str] | None = None) -> None:
        """Raise SchemaError now (before any work) if the model's engine cannot enforce ``response_format``."""
        with self.acquire("checking a schema"):
            self.ensure_loaded(model).check_format(response_format)

    # -- scoring and counting ----------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest], *, chat: bool = False, system_prompt: str | None = None,
              model: str | os.PathLike[str] | None = None) -> list[ScoreResult]:
        """Log-likelihoods of continuations: raw text split as lm-evaluation-harness does, or with
        ``chat=True`` each context sent as a user message through the chat template."""
        with self.acquire("batch scoring"):
            loaded = self.ensure_loaded(model)
            return loaded.score_chat(requests, system_prompt=system_prompt) if chat else loaded.score(requests)

    def scoring_settings(self, model: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The settings that fix the loaded model's scoring arithmetic (recorded next to scores)."""
        with self.acquire("batch scoring"):
            return self.ensure_loaded(model).scoring_settings()

    def count_tokens(self, messages: Sequence[Message], model: str | os.PathLike[str] | None = None) -> int:
        """Prompt tokens of ``messages`` with the chat template applied."""
        with self.acquire("counting tokens"):
            return self.ensure_loaded(model).count_tokens(messages)

    def count_text(self, text: str, model: str | os.PathLike[str] | None = None) -> TokenCount:
        """Tokens of plain text, and whether the model's tokenizer counted them (else an estimate)."""
        with self.acquire("counting tokens"):
            return self.ensure_loaded(model).count_text(text)

    # -- embeddings (a second model beside the chat model, under the same lock) -------------------------
    @property
    def embedder(self) -> Embedder | None:
        """The loaded embedding model, or None."""
        return self._embedder

    def load_embedder(self, name: str | os.PathLike[str] | None = None, *, pooling: str | None = None,
                      force: bool = False) -> Embedder:
        """Load an embedding model beside the chat model (which stays loaded); the current one is kept when
        it is the same. ``name`` None: :attr:`embedding_model`, else nomic-embed-text-v1.5 if it is on disk,
        else the bundled model with mean pooling (on a server: the connected model)."""
        from .models.embedding import default_embedding_model, embedding_context, task_prefix

        if name is None and self.embedding_model is None and not self.backend.remote:
            name, pooling = default_embedding_model(self.models_dir, pooling)
        ref = self.resolve(name if name is not None else self.embedding_model)
        with self.acquire(f"loading {ref.name} for embeddings"):
            current = self._embedder
            if current is not None and current.ref == ref and pooling in (None, current.pooling):
                return current
            n_ctx = embedding_context(ref, pooling, force)  # refuses what does not fit in RAM, or cannot pool
            prefixes = {kind: task_prefix(ref, kind, self.models_dir) for kind in ("document", "query")}
            embedder = self.backend.load_embedder(ref, n_ctx=n_ctx, n_threads=self.threads(), pooling=pooling)
            self.unload_embedder()
            self._embedder, self._embed_prefixes = embedder, prefixes
            return embedder

    def unload_embedder(self) -> bool:
        """Free the embedding model; True if one was loaded."""
        with self.acquire("unloading the embedding model"):
            embedder, self._embedder = self._embedder, None
            if embedder is None:
                return False
            embedder.close()
            gc.collect()
            return True

    def embed(self, texts: Sequence[str], *, model: str | os.PathLike[str] | None = None, pooling: str | None = None,
              kind: str = "document", long: str = "truncate") -> Embedding:
        """One L2-normalised vector per text, many texts per decode. ``kind`` ("document" or "query") picks the
        model's task prefix (nomic-embed-text's ``search_document:`` / ``search_query:``); a text longer than
        the model's context is cut to it (``long="truncate"``, with a note) or embedded in pieces whose vectors
        are averaged (``long="chunk"``)."""
        from .models.embedding import check_texts

        check_texts(texts, kind, long)
        with self.acquire("embedding"):
            embedder = self.load_embedder(model, pooling=pooling) if model or self._embedder is None \
                else self._embedder
            prefix = self._embed_prefixes.get(kind, "")
            pieces = [embedder.pieces(prefix + text) for text in texts]
            flat = [p[0] for p in pieces] if long == "truncate" else [x for p in pieces for x in p]
            return Embedding.from_pieces(embedder.embed(flat), pieces, long, model=embedder.name,
                                         pooling=embedder.pooling, n_ctx=embedder.n_ctx)

    # -- reporting -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What is loaded and how it has been used."""
        model = self._model
        rss = rss_bytes()
        path = model.ref.path if model else None
        status: dict[str, Any] = {
            "model": model.name if model else None,
            "backend": model.backend_name if model else self.backend.name,
            "path": str(path) if path else None,
            "file_size": human_bytes(path.stat().st_size) if path and path.exists() else None,
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
        status.update(self._embedder.describe() if self._embedder else {"embedding_model": None})
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
