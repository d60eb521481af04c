"""The remote backend: models served by an OpenAI-compatible server (llama.cpp's ``llama-server``,
``llama_cpp.server``, vLLM, Ollama) behind the same manager, magics, chat and batch API.

:func:`connect` points the process-wide manager at a server; :func:`disconnect` goes back to local
models. Answers stream over Server-Sent Events from ``/v1/chat/completions``. Features a server lacks
(token counts, reproducible seeds, llama.cpp sampling parameters) are reported once per connection as
a notice on the result. API keys are read from an environment variable at each request and never
kept. Streaming lives in :mod:`.stream`, scoring in :mod:`.scoring`, batches in :mod:`.batch`, token
counting in :mod:`.tokens`.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Any, Callable, Iterator, Sequence

from ...errors import InvalidOptionError, RemoteError
from ...options import GenerationOptions
from ..base import (
    Backend,
    Embedder,
    LoadedModel,
    Message,
    ModelRef,
    OnResult,
    ResponseFormat,
    ScoreRequest,
    ScoreResult,
    Served,
    StreamStats,
    TokenCount,
)
from .batch import generate_many
from .formats import downgrade, format_payload, refuses_format
from .http import Transport
from .scoring import score_requests
from .stream import ChatStream
from .tokens import count_tokens

__all__ = ["DEFAULT_TIMEOUT", "ENV_CONCURRENCY", "ENV_MODEL", "ENV_TIMEOUT", "ENV_URL", "OpenAIBackend",
           "RemoteModel"]

DEFAULT_TIMEOUT = 120.0
# Connection settings a deployment can give through the environment (arguments win):
ENV_URL = ("GPT4ALL_MAGIC_SERVER_URL", "OPENAI_BASE_URL")
ENV_MODEL = "GPT4ALL_MAGIC_SERVER_MODEL"
ENV_TIMEOUT = "GPT4ALL_MAGIC_SERVER_TIMEOUT"
ENV_CONCURRENCY = "GPT4ALL_MAGIC_SERVER_CONCURRENCY"
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
# Parameters llama.cpp-based servers accept beyond OpenAI's (vLLM calls the penalty repetition_penalty);
# servers ignore fields they do not know, except OpenAI itself, which refuses them (handled below).
_EXTRA_PARAMS = ("top_k", "min_p", "repeat_penalty", "repetition_penalty", "repeat_last_n")


class OpenAIBackend(Backend):
    """Models on one OpenAI-compatible server; ``model`` picks one when the server has several."""

    name = "openai"
    remote = True

    def __init__(self, base_url: str, model: str | None = None, *, api_key_env: str | None = "OPENAI_API_KEY",
                 timeout: float = DEFAULT_TIMEOUT, concurrency: int = 4, max_retries: int = 4,
                 backoff: float = 0.5, verify: bool | str = True):
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
            raise InvalidOptionError(f"timeout must be a positive number of seconds, got {timeout!r}; e.g. 120.")
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= 256:
            raise InvalidOptionError(f"concurrency must be an integer in [1, 256], got {concurrency!r}; e.g. 4.")
        if api_key_env is not None and not (isinstance(api_key_env, str) and _ENV_NAME.fullmatch(api_key_env)):
            # Not echoed: what was passed may well be the key itself.
            raise InvalidOptionError("api_key_env takes the NAME of an environment variable in capitals "
                                     "(e.g. OPENAI_API_KEY), not the key itself: put the key in that "
                                     "variable, never in the notebook.")
        self.model = model or None
        self.concurrency = concurrency
        self.http = Transport(base_url, api_key_env=api_key_env, timeout=float(timeout),
                              max_connections=concurrency + 2, max_retries=max_retries, backoff=backoff,
                              verify=verify)
        self.http.models_hint = lambda: [m["id"] for m in (self._models or [])]
        self._models: list[dict[str, Any]] | None = None
        self._notified: set[str] = set()
        self._notice_lock = threading.Lock()
        self._answers: dict[str, str] = {}  # request digest -> answer digest (reproducibility check)
        self.echo_verdicts: dict[str, Any] = {}  # model -> EchoVerdict (scoring self-check, once per connection)
        self.tokenizer_route: str | None = None  # which tokenize endpoint works (see RemoteModel.count_tokens)
        self.closed = False

    @property
    def base_url(self) -> str:
        return self.http.base_url

    @property
    def timeout(self) -> float:
        return self.http.timeout

    @property
    def api_key_env(self) -> str | None:
        return self.http.api_key_env

    def __repr__(self) -> str:
        return (f"OpenAIBackend({self.base_url!r}, model={self.model!r}, api_key={self.http.api_key_state()}, "
                f"timeout={self.timeout:g}, concurrency={self.concurrency})")

    # -- the server's models ---------------------------------------------------------------------
    def list_models(self, refresh: bool = False) -> list[dict[str, Any]]:
        """The server's ``/v1/models`` entries (fetched once per connection unless ``refresh``)."""
        if self._models is None or refresh:
            data = self.http.json("GET", "/models", retries=1)
            entries = data.get("data") if isinstance(data, dict) else None
            if entries is None and isinstance(data, dict):
                entries = data.get("models")  # some servers use Ollama's own shape
            if not isinstance(entries, list):
                raise RemoteError(f"The server at {self.base_url} answered /models without a model list; "
                                  "is this an OpenAI-compatible API root (usually ending in /v1)?")
            self._models = [e if isinstance(e, dict) else {"id": str(e)} for e in entries
                            if isinstance(e, (dict, str))]
            for e in self._models:
                e["id"] = str(e.get("id") or e.get("name") or e.get("model") or "")
        return self._models

    def model_names(self) -> list[str]:
        return [m["id"] for m in self.list_models() if m["id"]]

    def served_models(self) -> Served:
        return Served(self.model_names(), self.base_url, self.model)

    def model_rows(self, loaded: str | None = None) -> list[dict[str, Any]]:
        """One row per server model, for ``%gpt4all list``."""
        rows = []
        for m in self.list_models(refresh=True):
            meta = m.get("meta") if isinstance(m.get("meta"), dict) else {}
            rows.append({"name": m["id"], "source": "remote", "server": self.base_url,
                         "owned_by": m.get("owned_by"),
                         "context": m.get("max_model_len") or meta.get("n_ctx_train"),
                         "loaded": m["id"] == loaded})
        return rows

    def load(self, ref: ModelRef, *, n_ctx: int, n_threads: int, n_batch: int = 512) -> RemoteModel:
        entry = next((m for m in self.list_models() if m["id"] == ref.name), {})
        reported = entry.get("max_model_len")  # vLLM
        if not reported:
            reported = self._props_n_ctx()  # llama.cpp's llama-server
        return RemoteModel(self, ref, n_ctx=int(reported or n_ctx), n_threads=n_threads,
                           n_ctx_reported=bool(reported))

    def load_embedder(self, ref: ModelRef, *, n_ctx: int, n_threads: int, pooling: str | None) -> Embedder:
        """The server's model for ``/v1/embeddings`` (the server decides the pooling)."""
        from .embed import RemoteEmbedder

        return RemoteEmbedder(self, ref, n_ctx=int(self._props_n_ctx() or n_ctx))

    def _props_n_ctx(self) -> int | None:
        try:
            props = self.http.json("GET", "/props", at_root=True, retries=0)
        except Exception:  # most servers have no /props: the context size stays assumed
            return None
        settings = props.get("default_generation_settings") if isinstance(props, dict) else None
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
        return n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None

    # -- once-per-connection notices -------------------------------------------------------------
    def notify_once(self, key: str, text: str, stats: StreamStats) -> None:
        """Add ``text`` to this result's notices the first time ``key`` comes up on this connection."""
        with self._notice_lock:
            if key in self._notified:
                return
            self._notified.add(key)
        stats.notices.append(text)

    def close(self) -> None:
        """Close the connection pool (on disconnect)."""
        self.closed = True
        self.http.close()


class RemoteModel(LoadedModel):
    """One model on the server; holds no weights, so loading and closing are cheap."""

    backend_name = "openai"

    def __init__(self, backend: OpenAIBackend, ref: ModelRef, *, n_ctx: int, n_threads: int,
                 n_ctx_reported: bool = False):
        self.backend = backend
        self.ref = ref
        self.name = ref.name
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_ctx_reported = n_ctx_reported
        self.send_extras = True  # llama.cpp sampling parameters, until a server refuses them
        self.format_style = "json_schema"  # response_format's shape, until a server refuses it (.formats)
        self.usage_reported: bool | None = None

    # -- requests --------------------------------------------------------------------------------
    def chat_payload(self, messages: Sequence[Message], options: GenerationOptions, *, stream: bool,
                     response_format: ResponseFormat | None = None) -> dict:
        """The /chat/completions body for ``options`` (GPT4All names mapped to the server's)."""
        payload: dict[str, Any] = {
            "model": self.name, "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": options.max_tokens, "temperature": options.temp, "top_p": options.top_p,
            "seed": options.seed, "stream": stream}
        if options.stop:
            payload["stop"] = list(options.stop)
        if stream:
            payload["stream_options"] = {"include_usage": True}
        if self.send_extras:
            payload.update(top_k=options.top_k, min_p=options.min_p, repeat_penalty=options.repeat_penalty,
                           repetition_penalty=options.repeat_penalty, repeat_last_n=options.repeat_last_n)
        if response_format is not None:
            payload["response_format"] = format_payload(response_format, self.format_style)
        return payload

    def post(self, path: str, payload: dict, stats: StreamStats | None, **kwargs: Any) -> Any:
        """POST, dropping the llama.cpp-only parameters once if the server refuses unknown fields, and
        sending ``response_format`` in its older shape once if the server refuses the json_schema one."""
        try:
            return self.backend.http.request("POST", path, json_body=payload, **kwargs)
        except RemoteError as exc:
            if refuses_format(payload, exc):
                self.format_style = "json_object"
                downgrade(payload)
                return self.post(path, payload, stats, **kwargs)
            text = getattr(exc, "detail", "").lower()
            refused = any(p in text for p in _EXTRA_PARAMS) or "unrecognized" in text or "extra" in text
            if not (self.send_extras and refused and getattr(exc, "status", None) in (400, 422)):
                raise
        self.send_extras = False
        if stats is not None:
            self.backend.notify_once(
                "extras", f"{self.backend.base_url} refuses llama.cpp's sampling parameters (top_k, min_p, "
                "repeat_penalty, repeat_last_n); only temperature, top_p, seed, stop and max_tokens are sent.", stats)
        for key in _EXTRA_PARAMS:
            payload.pop(key, None)
        return self.backend.http.request("POST", path, json_body=payload, **kwargs)

    # -- generation ------------------------------------------------------------------------------
    def stream_chat(self, messages: Sequence[Message], options: GenerationOptions, stats: StreamStats,
                    should_stop: Callable[[], bool], *, reuse_cache: bool = False,
                    response_format: ResponseFormat | None = None) -> Iterator[str]:
        """Open the stream now (so HTTP and context errors raise before anything is yielded)."""
        payload = self.chat_payload(messages, options, stream=True, response_format=response_format)
        response = self.post("/chat/completions", payload, stats, stream=True)
        return ChatStream(self, response, payload, messages, options, stats, should_stop)

    def explain_empty_stream(self, payload: dict) -> Exception:
        """Why a stream ended before its first event: ask again unstreamed for one token (llama_cpp.server
        swallows errors such as a prompt longer than its window once a stream has started)."""
        from ...errors import Gpt4AllError

        probe = {k: v for k, v in payload.items() if k != "stream_options"}
        probe.update(stream=False, max_tokens=1)
        try:
            self.backend.http.request("POST", "/chat/completions", json_body=probe, retries=1).close()
        except Gpt4AllError as exc:
            return exc
        return RemoteError(f"The server at {self.backend.base_url} ended the answer without sending anything; "
                           "its log may say why.")

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens with the chat template: exact where the server can say (vLLM, llama-server), else
        the server's tokenizer on the text plus a few tokens per message, else ~4 characters a token."""
        return count_tokens(self, messages).tokens

    def count_text(self, text: str) -> TokenCount:
        """Tokens of plain text; ``exact`` is False whenever this count was estimated (no tokenize endpoint,
        or the one found earlier failed this time)."""
        base = count_tokens(self, [{"role": "user", "content": ""}])
        whole = count_tokens(self, [{"role": "user", "content": text}])
        return TokenCount(max(0, whole.tokens - base.tokens), exact=whole.exact and base.exact)

    def note_answer(self, messages: Sequence[Message], options: GenerationOptions, text: str,
                    stats: StreamStats) -> None:
        """Tell the user once when the same request with the same seed gave a different answer."""
        key = hashlib.sha256(json.dumps([self.name, list(messages), options.to_dict()], sort_keys=True,
                                        default=str).encode()).hexdigest()
        digest = hashlib.sha256(text.encode()).hexdigest()
        answers = self.backend._answers
        previous = answers.get(key)
        if len(answers) > 512:
            answers.clear()
        answers[key] = digest
        if previous is not None and previous != digest:
            self.backend.notify_once(
                "seed", f"{self.backend.base_url} gave a different answer to the same prompt, options and seed, so "
                "its answers are not reproducible (it may ignore seed, or, like llama_cpp.server, reuse the "
                "previous request's cached prompt, which changes the arithmetic slightly).", stats)

    def generate_many(self, prompts: Sequence[Sequence[Message]], options: GenerationOptions,
                      on_result: OnResult | None = None, *,
                      should_stop: Callable[[], bool] = lambda: False, max_parallel: int | None = None,
                      response_format: ResponseFormat | None = None,
                      ) -> list[tuple[str, StreamStats, Exception | None]]:
        """Answer each message list with several requests in flight: the connection's ``concurrency``,
        or fewer if ``max_parallel`` says so (a server has as many slots as it has, whatever a batch
        asks); transient failures are retried. See :func:`.batch.generate_many`."""
        limit = self.backend.concurrency if max_parallel is None else max(1, min(max_parallel,
                                                                                 self.backend.concurrency))
        return generate_many(self, prompts, options, on_result, should_stop=should_stop, max_parallel=limit,
                             response_format=response_format)

    # -- scoring ---------------------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Log-likelihoods from the server's echoed logprobs, after checking once that they are right."""
        return score_requests(self, requests)

    def describe(self) -> dict[str, Any]:
        b = self.backend
        verdict = b.echo_verdicts.get(self.name)
        return {"server": b.base_url, "api_key": b.http.api_key_state(), "timeout_s": b.timeout,
                "concurrency": b.concurrency,
                "n_ctx_source": "server" if self.n_ctx_reported else "assumed (the server does not say)",
                "token_counts": {None: "not seen yet", True: "reported by the server",
                                 False: "estimated (the server does not report them)"}[self.usage_reported],
                "scoring": verdict.summary() if verdict is not None else "not checked yet"}

    def close(self) -> None:
        pass  # the server keeps the model; the connection pool belongs to the backend


