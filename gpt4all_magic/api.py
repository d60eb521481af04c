"""The Python API over the process-wide manager: what ``import gpt4all_magic as g4`` offers for models,
single generations and servers. The magics call the same functions."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from .engines.base import LoadedModel, Message, ResponseFormat
from .errors import (
    GenerationInterrupted,
    InvalidOptionError,
    ModelNotDownloadedError,
    NotEnoughMemoryError,
    StructuredOutputError,
)
from .manager import GenerationResult, ModelManager, get_manager
from .options import GenerationOptions

__all__ = ["connect", "disconnect", "download", "download_for_load", "generate", "generate_typed", "list_models",
           "load", "model_info", "remove", "status", "unload"]


def generate(prompt: str, *, model: str | os.PathLike[str] | None = None, on_text: Callable[[str], None] | None = None,
             should_stop: Callable[[], bool] | None = None, options: GenerationOptions | None = None,
             manager: ModelManager | None = None, schema: Any = None, docs: str | Sequence[str] | None = None,
             docs_k: int = 3, **option_values: Any) -> GenerationResult:
    """Answer ``prompt`` in a fresh single turn (chat template applied); options as keyword arguments.

    With ``schema`` (a pydantic model class, a JSON Schema dict or its JSON text, or a
    :class:`~.structured.schema.Schema`) the answer is JSON constrained to it and ``result.data`` is the
    validated value (a pydantic instance, a dict or list, or a label); temp defaults to 0 and
    repeat_penalty to 1.0 there. An answer that still does not validate after one retry (with the
    error added to the prompt), or that ``max_tokens`` cut, raises StructuredOutputError (the text kept
    on its ``result``).

    ``docs`` names a collection (or several) of local documents (``g4.docs.add``): its ``docs_k`` best
    chunks go into the prompt after the question, and ``result.sources`` cites them.

    >>> generate("Name a colour.", temp=0, max_tokens=10).text  # doctest: +SKIP
    """
    if not isinstance(prompt, str):
        raise InvalidOptionError(f"prompt must be text, got {type(prompt).__name__}.")
    manager = manager or get_manager()
    spec = None
    if schema is not None:
        from .structured.schema import TYPED_DEFAULTS, Schema

        spec = Schema.of(schema)
        options = options or GenerationOptions(**TYPED_DEFAULTS)
    options = GenerationOptions.from_mapping(option_values, base=options)

    def answer(messages: list[Message]) -> GenerationResult:
        if spec is None:
            return manager.generate(messages, options, model=model, on_text=on_text, should_stop=should_stop)
        return generate_typed(manager, messages, spec, options, model=model, on_text=on_text,
                              should_stop=should_stop)

    if not docs:
        return answer([{"role": "user", "content": prompt}])
    from .docs.prompt import docs_prompt

    with manager.acquire("generating"):
        n_ctx = manager.ensure_loaded(model).n_ctx
        system = [{"role": "system", "content": options.system_prompt}] if options.system_prompt else []
        built = docs_prompt(prompt, docs, manager=manager, n_ctx=n_ctx, max_tokens=options.max_tokens,
                            before=system, k=docs_k)
        try:
            result = answer([{"role": "user", "content": built.content}])
        except GenerationInterrupted as exc:
            exc.result.sources, exc.result.notices = built.sources, built.notes + exc.result.notices
            raise
    result.sources, result.notices = built.sources, built.notes + result.notices
    return result


def generate_typed(manager: ModelManager, messages: list[Message], spec: Any, options: GenerationOptions, *,
                   model: str | os.PathLike[str] | None = None, on_text: Callable[[str], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> GenerationResult:
    """One answer constrained to ``spec`` (a Schema), validated, retried once with the error when invalid."""
    fmt = ResponseFormat(spec.json_schema, spec.name)
    manager.check_format(fmt, model)  # an unsupported schema fails here, before any generation
    options = options.with_seed()
    result = manager.generate(messages, options, model=model, on_text=on_text, should_stop=should_stop,
                              response_format=fmt)
    parsed = spec.parse(result.text, result.finish_reason)
    if parsed.status == "invalid":
        first = parsed.error
        if on_text is not None:
            on_text("\n")
        result = manager.generate(spec.retry_messages(messages, result.text, first), options, model=model,
                                  on_text=on_text, should_stop=should_stop, response_format=fmt)
        result.notices.insert(0, f"The first answer did not fit the schema ({first}); asked once more with that "
                                 "error.")
        parsed = spec.parse(result.text, result.finish_reason)
    if parsed.status == "truncated":
        raise StructuredOutputError(
            f"max_tokens ({options.max_tokens}) cut the answer before its JSON was complete; raise max_tokens "
            f"(e.g. {options.max_tokens * 2}).", status="truncated", result=result, error=parsed.error)
    if parsed.status != "ok":
        raise StructuredOutputError(
            f"The answer does not fit the schema even after one retry ({parsed.error}); loosen the schema or try a "
            "larger model.", status="invalid", result=result, error=parsed.error)
    result.data = parsed.value
    return result


# -- models -------------------------------------------------------------------------------------------

def load(name: str | os.PathLike[str] | None = None, *, n_ctx: int | None = None, n_threads: int | None = None,
         n_batch: int | None = None, force: bool = False, download: bool = False) -> LoadedModel:
    """Load a model (default: the configured default, else the bundled one) and keep it loaded.

    Settings not given come from the kernel's (``%gpt4all config``); ``n_threads=0`` means the physical
    cores. ``download=True`` first fetches a catalog or Hub model that is not on disk yet, as
    ``%gpt4all load NAME --download`` does (refused before fetching if it cannot fit in free RAM).
    """
    manager = get_manager()
    if download:
        download_for_load(name, force=force, manager=manager)
    try:
        return manager.load(name, n_ctx=n_ctx, n_threads=n_threads, n_batch=n_batch, force=force)
    except ModelNotDownloadedError as exc:
        raise exc.for_python() from None


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


def model_info(name: str | os.PathLike[str] | None = None, *, manager: ModelManager | None = None) -> dict[str, Any]:
    """A model's GGUF metadata, read without loading it, plus its catalog entry's recommended sampling
    settings (not applied on their own: ``%gpt4all config`` them to use them)."""
    from .models import catalog
    from .models.gguf import read_gguf

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


def download(name: str, file: str | None = None, *, revision: str | None = None,
             models_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
    """Download a catalog model (``name``), ``REPO_ID FILE`` or ``REPO_ID/FILE.gguf``, sha256-verified and
    resumable, into the kernel's models setup (see :func:`gpt4all_magic.models.download.download`)."""
    from .models.download import download as fetch

    folder = models_dir if models_dir is not None else get_manager().models_dir
    return fetch(name, file, revision=revision, models_dir=folder, **kwargs)


def download_for_load(name: str | os.PathLike[str] | None = None, *, force: bool = False,
                      manager: ModelManager | None = None, progress: bool | None = None,
                      token: str | bool | None = None) -> Any:
    """The download step of ``load(name, download=True)``: fetch ``name`` (default: the default model) if
    it is known but not on disk; None if there is nothing to fetch.

    A catalog model whose RAM estimate exceeds free memory is refused before any byte is fetched
    (``force`` skips that, as it skips the check at load time).
    """
    from .models import catalog
    from .models.download import download as fetch
    from .models.memory import check_catalog_ram

    manager = manager or get_manager()
    try:
        manager.resolve(name)
        return None
    except ModelNotDownloadedError:
        pass
    wanted = str(name) if name is not None else manager.default_model
    entry = catalog.find_entry(wanted or "", catalog.load_catalog(manager.models_dir))
    if entry is not None:
        try:
            check_catalog_ram(entry, force)
        except NotEnoughMemoryError as exc:
            raise NotEnoughMemoryError(f"{str(exc).removesuffix('.')} (or gpt4all_magic.load({entry.name!r}, "
                                       "download=True, force=True)).") from None
    return fetch(wanted, models_dir=manager.models_dir, progress=progress, token=token)


def remove(name: str, *, models_dir: str | os.PathLike[str] | None = None, manager: ModelManager | None = None) -> Any:
    """Delete a downloaded model (or an unfinished download of it); the loaded model is refused."""
    from .models.remove import remove as delete

    manager = manager or get_manager()
    current = manager.current
    loaded = current.ref.path if current is not None else None
    return delete(name, models_dir=models_dir if models_dir is not None else manager.models_dir, loaded=loaded)


# -- servers ------------------------------------------------------------------------------------------

def connect(url: str | None = None, model: str | None = None, *, api_key_env: str | None = "OPENAI_API_KEY",
            timeout: float | None = None, concurrency: int | None = None,
            manager: ModelManager | None = None) -> LoadedModel:
    """Send generation, chat, batch and scoring to an OpenAI-compatible server; returns its model.

    What is not given comes from the environment: the URL from ``GPT4ALL_MAGIC_SERVER_URL`` (or
    ``OPENAI_BASE_URL``), the model from ``GPT4ALL_MAGIC_SERVER_MODEL``, the timeout and concurrency
    from ``GPT4ALL_MAGIC_SERVER_TIMEOUT`` / ``GPT4ALL_MAGIC_SERVER_CONCURRENCY`` (defaults 120 s and 4).
    The API key is read from the environment variable ``api_key_env`` at each request. Nothing
    changes if the server cannot be reached.
    """
    from .engines.openai.model import DEFAULT_TIMEOUT, ENV_CONCURRENCY, ENV_MODEL, ENV_TIMEOUT, ENV_URL, OpenAIBackend
    from .models.resolve import resolve_served

    url = url or next((os.environ[v] for v in ENV_URL if os.environ.get(v)), None)
    if not url:
        raise InvalidOptionError(f"No server URL: pass one (`%gpt4all connect http://127.0.0.1:8080`) "
                                 f"or set ${ENV_URL[0]}.")
    model = model or os.environ.get(ENV_MODEL) or None
    timeout = timeout if timeout is not None else _env_number(ENV_TIMEOUT, float, DEFAULT_TIMEOUT)
    concurrency = concurrency if concurrency is not None else _env_number(ENV_CONCURRENCY, int, 4)
    manager = manager or get_manager()
    backend = OpenAIBackend(url, model, api_key_env=api_key_env, timeout=timeout, concurrency=concurrency)
    try:
        ref = resolve_served(model, backend.served_models())  # fails here, before the local model is unloaded
    except BaseException:
        backend.close()
        raise
    manager.use(backend)
    return manager.load(ref.name)


def _env_number(name: str, kind: type, default: Any) -> Any:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        raise InvalidOptionError(f"${name} must be {'an integer' if kind is int else 'a number'}, got {text!r}; "
                                 "fix or unset it.") from None


def disconnect(manager: ModelManager | None = None) -> bool:
    """Go back to local models (llama.cpp); True if a server was connected."""
    manager = manager or get_manager()
    if not manager.backend.remote:
        return False
    manager.use(None)
    return True
