"""The remote backend: models served by an OpenAI-compatible server (llama.cpp's ``llama-server``,
``llama_cpp.server``, vLLM, Ollama) behind the same manager, magics, chat and batch API.

:func:`connect` points the process-wide manager at a server; :func:`disconnect` goes back to local
models. Answers stream over Server-Sent Events from ``/v1/chat/completions``. Features a server lacks
(token counts, reproducible seeds, llama.cpp sampling parameters) are reported once per connection as
a notice on the result. API keys are read from an environment variable at each request and never
kept. Scoring and batch generation live in ``openai_scoring`` and ``openai_batch``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import InvalidOptionError, ModelNotFoundError, RemoteError
from ..options import GenerationOptions
from .base import Backend, LoadedModel, Message, ModelRef, ScoreRequest, ScoreResult, StreamStats
from .openai_http import Transport, iter_sse

__all__ = ["OpenAIBackend", "RemoteModel", "connect", "disconnect"]

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
_FINISH = {"stop": "stop", "eos": "stop", "length": "length", "max_tokens": "length"}


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

    def resolve(self, name: Any, default: str | None) -> ModelRef | None:
        names = self.model_names()
        wanted = name if name is not None else (self.model or (default if default in names else None))
        if wanted is None:
            if not names:
                raise ModelNotFoundError(f"The server at {self.base_url} lists no models; load one on the server, "
                                         "or `%gpt4all disconnect` to use local models.")
            return ModelRef(names[0], None, "remote")
        if os.fspath(wanted) in names:  # llama_cpp.server names a model by its path on the server
            return ModelRef(os.fspath(wanted), None, "remote")
        if isinstance(wanted, os.PathLike) or (isinstance(wanted, str) and wanted.endswith(".gguf")
                                               and Path(wanted).expanduser().is_file()):
            raise ModelNotFoundError(f"{os.fspath(wanted)!r} is a local file but a server is connected "
                                     f"({self.base_url}); run `%gpt4all disconnect` to use local models.")
        wanted = str(wanted)
        # Ids are often paths (llama_cpp.server) or carry tags (Ollama's "llama3:latest").
        short = {n: Path(n).name for n in names}
        matches = [n for n in names if wanted.lower() in (short[n].lower(), Path(short[n]).stem.lower(),
                                                          n.lower().split(":")[0])]
        if len(matches) == 1:
            return ModelRef(matches[0], None, "remote")
        close = difflib.get_close_matches(wanted, names + list(short.values()), n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ModelNotFoundError(f"The server at {self.base_url} has no model '{wanted}'.{hint} Its models: "
                                 f"{', '.join(names) or 'none'} (`%gpt4all list`); `%gpt4all disconnect` "
                                 "goes back to local models.")

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

    def load(self, ref: ModelRef, *, n_ctx: int, n_threads: int) -> RemoteModel:
        entry = next((m for m in self.list_models() if m["id"] == ref.name), {})
        reported = entry.get("max_model_len")  # vLLM
        if not reported:
            reported = self._props_n_ctx()  # llama.cpp's llama-server
        return RemoteModel(self, ref, n_ctx=int(reported or n_ctx), n_threads=n_threads,
                           n_ctx_reported=bool(reported))

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
        self.usage_reported: bool | None = None

    # -- requests --------------------------------------------------------------------------------
    def chat_payload(self, messages: Sequence[Message], options: GenerationOptions, *, stream: bool) -> dict:
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
        return payload

    def post(self, path: str, payload: dict, stats: StreamStats | None, **kwargs: Any) -> Any:
        """POST, dropping the llama.cpp-only parameters once if the server refuses unknown fields."""
        try:
            return self.backend.http.request("POST", path, json_body=payload, **kwargs)
        except RemoteError as exc:
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
                    should_stop: Callable[[], bool], *, reuse_cache: bool = False) -> Iterator[str]:
        """Open the stream now (so HTTP and context errors raise before anything is yielded)."""
        payload = self.chat_payload(messages, options, stream=True)
        response = self.post("/chat/completions", payload, stats, stream=True)
        return _ChatStream(self, response, payload, messages, options, stats, should_stop)

    def explain_empty_stream(self, payload: dict) -> Exception:
        """Why a stream ended before its first event: ask again unstreamed for one token (llama_cpp.server
        swallows errors such as a prompt longer than its window once a stream has started)."""
        from ..errors import Gpt4AllError

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
        from .openai_tokens import count_tokens

        return count_tokens(self, messages)

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
                      on_result: Callable[[int, str, StreamStats, Exception | None], None] | None = None, *,
                      should_stop: Callable[[], bool] = lambda: False, max_parallel: int | None = None,
                      ) -> list[tuple[str, StreamStats, Exception | None]]:
        """Answer each message list with several requests in flight: the connection's ``concurrency``,
        or fewer if ``max_parallel`` says so (a server has as many slots as it has, whatever a batch
        asks); transient failures are retried. See :func:`openai_batch.generate_many`."""
        from .openai_batch import generate_many

        limit = self.backend.concurrency if max_parallel is None else max(1, min(max_parallel,
                                                                                 self.backend.concurrency))
        return generate_many(self, prompts, options, on_result, should_stop=should_stop, max_parallel=limit)

    # -- scoring ---------------------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Log-likelihoods from the server's echoed logprobs, after checking once that they are right."""
        from .openai_scoring import score_requests

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


class _StopScanner:
    """Cuts the answer at the first stop string, holding back text that could start one."""

    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buf = ""
        self.sent = 0
        self.hit = False

    def feed(self, piece: str) -> str:
        self.buf += piece
        if self.stops:
            found = [i for i in (self.buf.find(s, max(0, self.sent - self.hold)) for s in self.stops) if i >= 0]
            if found:
                self.buf = self.buf[: min(found)]
                self.hit = True
                return self.flush()
        end = len(self.buf) - self.hold if self.stops else len(self.buf)
        if end > self.sent:
            out, self.sent = self.buf[self.sent:end], end
            return out
        return ""

    def flush(self) -> str:
        out, self.sent = self.buf[self.sent:], len(self.buf)
        return out


class _ChatStream:
    """Iterates one streamed answer; ``close()`` closes the HTTP response even if never started."""

    def __init__(self, model: RemoteModel, response: Any, payload: dict, messages: Sequence[Message],
                 options: GenerationOptions, stats: StreamStats, should_stop: Callable[[], bool]):
        self.model, self.response, self.payload, self.stats = model, response, payload, stats
        self._gen = self._run(messages, options, should_stop)

    def __iter__(self) -> _ChatStream:
        return self

    def __next__(self) -> str:
        return next(self._gen)

    def close(self) -> None:
        try:
            self._gen.close()
        finally:
            self.response.close()

    def _run(self, messages: Sequence[Message], options: GenerationOptions,
             should_stop: Callable[[], bool]) -> Iterator[str]:
        import httpx

        model, stats, http = self.model, self.stats, self.model.backend.http
        scanner = _StopScanner(options.stop)
        finish: str | None = None
        done = stopped = got_event = False
        usage: dict | None = None
        last_data = time.monotonic()
        try:
            for data in iter_sse(self.response):
                if data is None:  # keep-alive ping: a chance to stop or time out while the server thinks
                    if should_stop():
                        stopped = True
                        break
                    if time.monotonic() - last_data > http.timeout:
                        raise http.timed_out()
                    continue
                last_data = time.monotonic()
                got_event = True
                if data.strip() == "[DONE]":
                    done = True
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise RemoteError(f"The server at {http.base_url} streamed something that is not JSON "
                                      f"({data[:80]!r}); is it an OpenAI-compatible server?") from None
                if not isinstance(chunk, dict):
                    continue
                if chunk.get("error"):
                    from .openai_http import server_message

                    raise RemoteError(f"The server at {http.base_url} failed mid-answer: "
                                      f"{server_message(json.dumps(chunk))}")
                if isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        stats.token_sampled()
                        out = scanner.feed(piece)
                        if out:
                            yield out
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
                if scanner.hit:
                    finish = "stop"
                    break
                if should_stop():
                    stopped = True
                    break
        except httpx.TimeoutException:
            rest = scanner.flush()
            if rest:
                yield rest
            raise http.timed_out() from None
        except httpx.HTTPError as exc:  # the server died or the network dropped mid-answer
            rest = scanner.flush()
            if rest:
                yield rest
            raise http.dropped(exc) from None
        finally:
            self.response.close()
        rest = scanner.flush()
        if rest:
            yield rest
        if stopped:
            stats.finish_reason = "stopped"
        elif finish is not None:
            stats.finish_reason = _FINISH.get(finish, "stop")
        elif done:
            # llama_cpp.server ends a stream early with [DONE] when another request arrives.
            stats.finish_reason = "stopped"
            stats.notices.append(
                f"{http.base_url} ended this answer early without saying why (llama_cpp.server does that when "
                "another request arrives, unless started with --interrupt_requests False).")
        elif not got_event:
            raise model.explain_empty_stream(self.payload)
        else:
            raise http.dropped("the stream ended before the answer was complete")
        self._account(messages, usage)
        if stats.finish_reason in ("stop", "length"):
            model.note_answer(messages, options, scanner.buf, stats)

    def _account(self, messages: Sequence[Message], usage: dict | None) -> None:
        """Token counts from the server's usage, or estimated (and said so once)."""
        model, stats = self.model, self.stats
        if usage and isinstance(usage.get("completion_tokens"), int):
            model.usage_reported = True
            stats.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            stats.completion_tokens = usage["completion_tokens"]
            return
        model.usage_reported = False
        try:
            stats.prompt_tokens = model.count_tokens(messages)
        except RemoteError:
            stats.prompt_tokens = 0
        model.backend.notify_once(
            "usage", f"{model.backend.base_url} does not report token counts for streamed answers; prompt and "
            "completion token counts (and tok/s) are estimates.", stats)


# -- the Python equivalents of %gpt4all connect / disconnect ---------------------------------------

def connect(url: str | None = None, model: str | None = None, *, api_key_env: str | None = "OPENAI_API_KEY",
            timeout: float | None = None, concurrency: int | None = None, manager: Any = None) -> RemoteModel:
    """Send generation, chat, batch and scoring to an OpenAI-compatible server; returns its model.

    What is not given comes from the environment: the URL from ``GPT4ALL_MAGIC_SERVER_URL`` (or
    ``OPENAI_BASE_URL``), the model from ``GPT4ALL_MAGIC_SERVER_MODEL``, the timeout and concurrency
    from ``GPT4ALL_MAGIC_SERVER_TIMEOUT`` / ``GPT4ALL_MAGIC_SERVER_CONCURRENCY`` (defaults 120 s and 4).
    The API key is read from the environment variable ``api_key_env`` at each request. Nothing
    changes if the server cannot be reached.
    """
    url = url or next((os.environ[v] for v in ENV_URL if os.environ.get(v)), None)
    if not url:
        raise InvalidOptionError(f"No server URL: pass one (`%gpt4all connect http://127.0.0.1:8080`) "
                                 f"or set ${ENV_URL[0]}.")
    model = model or os.environ.get(ENV_MODEL) or None
    timeout = timeout if timeout is not None else _env_number(ENV_TIMEOUT, float, DEFAULT_TIMEOUT)
    concurrency = concurrency if concurrency is not None else _env_number(ENV_CONCURRENCY, int, 4)
    from ..manager import get_manager

    manager = manager or get_manager()
    backend = OpenAIBackend(url, model, api_key_env=api_key_env, timeout=timeout, concurrency=concurrency)
    try:
        backend.list_models()  # fail here, before the local model is unloaded
        ref = backend.resolve(model, None)
    except BaseException:
        backend.close()
        raise
    previous = manager.backend
    manager.set_backend(backend)
    if getattr(previous, "remote", False):
        previous.close()
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


def disconnect(manager: Any = None) -> bool:
    """Go back to local models (llama.cpp); True if a server was connected."""
    from ..manager import get_manager
    from .llama_cpp import LlamaCppBackend

    manager = manager or get_manager()
    backend = manager.backend
    if not getattr(backend, "remote", False):
        return False
    manager.set_backend(LlamaCppBackend())
    backend.close()
    return True
