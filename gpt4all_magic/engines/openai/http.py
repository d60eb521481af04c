"""HTTP plumbing for the OpenAI-compatible backend: the server URL, the API key read from the
environment at request time, retries of transient failures with backoff, Server-Sent Events, and
HTTP failures turned into typed one-line errors that name the fix.

httpx is imported here, and this module is imported only when a server is connected.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import threading
import time
import urllib.parse
import warnings
from typing import Any, Callable, Iterator

import httpx

from ...errors import (
    ContextOverflowError,
    InvalidOptionError,
    ModelNotFoundError,
    RemoteAuthError,
    RemoteConnectionError,
    RemoteError,
    RemoteTimeoutError,
)

__all__ = ["Transport", "is_local_host", "iter_sse", "normalize_url", "server_message"]

TRANSIENT_STATUS = frozenset({429, 502, 503, 504})
_NETWORK_DROPS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def normalize_url(url: str) -> str:
    """``127.0.0.1:8000`` → ``http://127.0.0.1:8000/v1``; a URL with a path keeps it (proxies)."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidOptionError("connect needs the server's URL, e.g. `%gpt4all connect http://127.0.0.1:8000`.")
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidOptionError(f"Not an http(s) URL: {url!r}; e.g. `%gpt4all connect http://127.0.0.1:8000`.")
    if parts.username or parts.password:
        # A key in the URL would end up in the notebook and in status output.
        raise InvalidOptionError("Do not put credentials in the URL; put the API key in an environment variable "
                                 "and name it with --api-key-env (default OPENAI_API_KEY).")
    try:
        _ = parts.port  # raises for a port that is not a number or out of range
    except ValueError:
        raise InvalidOptionError(f"Bad port in {url!r}; e.g. http://127.0.0.1:8000.") from None
    path = parts.path.rstrip("/") or "/v1"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def is_local_host(host: str | None) -> bool:
    """True for localhost and loopback addresses (plain HTTP to them does not leave the machine)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_message(body: bytes | str, limit: int = 240) -> str:
    """The error text a server sent (OpenAI, FastAPI, llama.cpp and Ollama shapes), on one line."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    message: Any = text
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or err.get("msg") or json.dumps(err)
        elif isinstance(err, list) and err and isinstance(err[0], dict):  # FastAPI validation errors
            err = "; ".join(str(e.get("msg", e)) for e in err)
        if err:
            message = err
    message = " ".join(str(message).split())
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _error_code(body: bytes) -> str:
    try:
        err = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return ""
    return str(err.get("code") or "") if isinstance(err, dict) else ""


def iter_sse(response: httpx.Response) -> Iterator[str | None]:
    """The ``data`` of each Server-Sent Event; None for a comment line (a keep-alive ping)."""
    data: list[str] = []
    for line in response.iter_lines():
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            yield None
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


class Transport:
    """One connection pool to one server; thread-safe (batch rows share it)."""

    def __init__(self, base_url: str, *, api_key_env: str | None, timeout: float, max_connections: int,
                 max_retries: int = 4, backoff: float = 0.5, verify: bool | str = True):
        self.base_url = normalize_url(base_url)
        parts = urllib.parse.urlsplit(self.base_url)
        self.host = parts.hostname or ""
        self.root = self.base_url[: -len("/v1")] if parts.path.endswith("/v1") else self.base_url
        self.api_key_env = api_key_env or None
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = backoff
        self.models_hint: Callable[[], list[str]] = lambda: []
        self._lock = threading.Lock()
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            verify=verify, follow_redirects=False)
        if parts.scheme == "http" and not is_local_host(self.host):
            warnings.warn(
                f"{self.base_url} is plain HTTP to another machine: prompts, answers and the API key cross the "
                "network unencrypted. Use https:// or an SSH tunnel (ssh -L 8000:localhost:8000 HOST).",
                UserWarning, stacklevel=3)

    # -- credentials -----------------------------------------------------------------------------
    def api_key_state(self) -> str:
        """``$OPENAI_API_KEY (set)``: the variable's name and whether it is set, never its value."""
        if not self.api_key_env:
            return "none"
        return f"${self.api_key_env} ({'set' if os.environ.get(self.api_key_env) else 'not set'})"

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None  # read now, never kept
        return {"Authorization": f"Bearer {key}"} if key else {}

    # -- requests --------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, json_body: Any = None, stream: bool = False,
                retry_connect: bool = False, retries: int | None = None, at_root: bool = False) -> httpx.Response:
        """Send with retries of transient failures; a response with status >= 400 becomes a typed error.

        ``path`` is relative to the base URL (``/chat/completions``), or to the server root with
        ``at_root`` (``/tokenize``). A streamed response must be closed by the caller.
        """
        url = (self.root if at_root else self.base_url) + path
        retries = self.max_retries if retries is None else retries
        attempt = 0
        while True:
            try:
                request = self._client.build_request(method, url, json=json_body, headers=self._headers())
                response = self._client.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if retry_connect and attempt < retries:
                    attempt = self._pause(attempt)
                    continue
                raise self.unreachable(exc) from None
            except httpx.TimeoutException:
                raise self.timed_out() from None
            except _NETWORK_DROPS as exc:
                if attempt < retries:
                    attempt = self._pause(attempt)
                    continue
                raise self.dropped(exc) from None
            except httpx.HTTPError as exc:
                raise RemoteError(f"Request to {url} failed: {exc.__class__.__name__}: {exc}.") from None
            status = response.status_code
            if status < 400:
                return response
            try:
                body = response.read()
            except httpx.HTTPError:
                body = b""
            finally:
                response.close()
            if status in TRANSIENT_STATUS and attempt < retries:
                attempt = self._pause(attempt, response.headers.get("retry-after"))
                continue
            raise self.http_error(status, body, path)

    def json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """Send and decode a JSON answer."""
        response = self.request(method, path, json_body=body, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise RemoteError(f"The server at {self.base_url} answered {path} with something that is not JSON; "
                              "is this an OpenAI-compatible API root (usually ending in /v1)?") from None

    def _pause(self, attempt: int, retry_after: str | None = None) -> int:
        """Sleep before the next try: Retry-After if the server sent one, else exponential backoff."""
        delay = self.backoff * (2 ** attempt) * (1 + random.random() / 4)
        if retry_after:
            try:
                delay = max(0.0, float(retry_after))
            except ValueError:
                pass
        time.sleep(min(delay, 30.0))
        return attempt + 1

    # -- errors ----------------------------------------------------------------------------------
    def unreachable(self, exc: BaseException) -> RemoteConnectionError:
        port = urllib.parse.urlsplit(self.base_url).port or 8000
        why = "connection refused" if isinstance(exc, httpx.ConnectError) else "no answer to connect"
        return RemoteConnectionError(
            f"Cannot reach an OpenAI-compatible server at {self.base_url} ({why}). Start one, e.g. "
            f"`python -m llama_cpp.server --model MODEL.gguf --host 127.0.0.1 --port {port}` or "
            f"`llama-server -m MODEL.gguf --port {port}`, or check the URL.")

    def dropped(self, exc: BaseException | str) -> RemoteConnectionError:
        detail = exc if isinstance(exc, str) else " ".join(str(exc).split()) or exc.__class__.__name__
        return RemoteConnectionError(
            f"The server at {self.base_url} dropped the connection mid-answer ({detail}); what arrived is kept. "
            "Check that the server is still running, then run it again.")

    def timed_out(self) -> RemoteTimeoutError:
        return RemoteTimeoutError(
            f"The server at {self.base_url} sent nothing for {self.timeout:g} s (the configured timeout). "
            f"If it is just slow, raise it: `%gpt4all connect {self.base_url} --timeout {max(60, 4 * self.timeout):g}` "
            "or connect(..., timeout=…).")

    def http_error(self, status: int, body: bytes, path: str) -> Exception:
        """The typed error for an HTTP failure; ``.status`` and ``.detail`` (the server's words) ride along."""
        message = server_message(body)
        error = self._http_error(status, message, _error_code(body), path)
        error.status, error.detail = status, message  # type: ignore[attr-defined]
        return error

    def _http_error(self, status: int, message: str, code: str, path: str) -> Exception:
        if status in (401, 403):
            env = self.api_key_env
            if env and os.environ.get(env):
                why = f"${env} is set but the server rejected it"
            elif env:
                why = f"${env} is not set"
            else:
                why = "no API key variable is configured"
            return RemoteAuthError(
                f"The server at {self.base_url} refused the request (HTTP {status}: {message}): {why}. Set the "
                f"key in the environment that starts Jupyter (or `os.environ['{env or 'OPENAI_API_KEY'}'] = "
                "getpass.getpass()`), or name another variable with --api-key-env.")
        lowered = message.lower()
        if code == "context_length_exceeded" or re.search(r"context (length|window|size)|maximum context", lowered):
            return ContextOverflowError(f"The server at {self.base_url} says the prompt is too long: {message} "
                                        "Shorten the prompt or lower max_tokens.")
        if code == "model_not_found" or (status in (400, 404) and "model" in lowered
                                         and re.search(r"not (found|exist)|does not exist|unknown", lowered)):
            models = ", ".join(self.models_hint()) or "none listed"
            return ModelNotFoundError(f"The server at {self.base_url} has no such model ({message}). "
                                      f"Its models: {models}; pick one with `%gpt4all load NAME`.")
        if status == 404:
            return RemoteError(f"The server at {self.base_url} has no {path} endpoint (HTTP 404); is that the "
                               "server's OpenAI API root (it usually ends in /v1)?")
        return RemoteError(f"The server at {self.base_url} answered HTTP {status} to {path}: {message}")

    def close(self) -> None:
        self._client.close()
