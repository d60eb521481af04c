"""A small scripted OpenAI-compatible server on 127.0.0.1, for the faults a real server will not show on
demand: stalls, dropped streams, resets, 429/503, refused parameters, missing logprobs or echo.

    with FakeOpenAIServer(stall_s=2.0) as server:
        connect(server.url, timeout=0.5)
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Script:
    """What the fake does; every field is a fault or a capability switch."""

    models: list[str] = field(default_factory=lambda: ["fake-model"])
    usage: bool = True  # stream_options.include_usage honoured
    stall_s: float = 0.0  # sleep before the first byte of a chat answer
    drop_after: int | None = None  # stream this many pieces, then close the connection (no [DONE])
    fail_first: list[int] = field(default_factory=list)  # statuses for the first chat requests (429, 503)
    reset_first: int = 0  # close the connection without an answer for the first N chat requests
    fail_when: str | None = None  # a chat request whose last message contains this gets HTTP 400
    reject_extras: bool = False  # answer 400 to llama.cpp parameters, as OpenAI does
    completions: str = "no-logprobs"  # "no-logprobs", "no-echo", "missing" (404)
    api_key: str | None = None
    delay_s: float = 0.0  # sleep per non-streamed chat answer (for concurrency checks)
    tokenize: bool = False  # vLLM's POST /tokenize (one token per word of each message, plus 3 per message)
    tokenize_fails_after: int | None = None  # that many /tokenize answers, then HTTP 500


class FakeOpenAIServer:
    """A threaded HTTP server following ``Script``; ``requests`` records (path, body) of each request."""

    def __init__(self, **script: Any):
        self.script = Script(**script)
        self.requests: list[tuple[str, dict]] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self._chat_count = 0
        self.connections: list[socket.socket] = []
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        with self._lock:  # keep-alive connections too: a stopped server answers nothing
            for conn in self.connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def next_chat(self) -> int:
        with self._lock:
            self._chat_count += 1
            return self._chat_count


def _answer_words(body: dict) -> list[str]:
    last = next((m["content"] for m in reversed(body.get("messages", [])) if m["role"] == "user"), "")
    return ["Echo:"] + [" " + w for w in last.split()]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake.connections.append(self.connection)

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _json(self, status: int, data: Any) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        self._json(status, {"error": {"message": message, "type": "invalid_request_error", "code": code}})

    def _authorized(self) -> bool:
        key = self.fake.script.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._error(401, "Invalid API key")
        return False

    def do_GET(self) -> None:
        self.fake.requests.append((self.path, {}))
        if not self._authorized():
            return
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fake"}
                                                        for m in self.fake.script.models]})
        else:
            self._error(404, "Not Found")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.fake.requests.append((self.path, body))
        if not self._authorized():
            return
        if self.path == "/v1/chat/completions":
            with self.fake._lock:
                self.fake.active += 1
                self.fake.max_active = max(self.fake.max_active, self.fake.active)
            try:
                self._chat(body)
            finally:
                with self.fake._lock:
                    self.fake.active -= 1
        elif self.path == "/v1/completions":
            self._completions(body)
        elif self.path == "/tokenize" and self.fake.script.tokenize:
            self._tokenize(body)
        else:
            self._error(404, "Not Found")

    def _tokenize(self, body: dict) -> None:
        s = self.fake.script
        done = sum(1 for path, _ in self.fake.requests if path == "/tokenize") - 1
        if s.tokenize_fails_after is not None and done >= s.tokenize_fails_after:
            self._error(500, "tokenizer crashed")
            return
        count = sum(len(str(m.get("content", "")).split()) + 3 for m in body.get("messages", []))
        self._json(200, {"count": count, "tokens": list(range(count))})

    def _chat(self, body: dict) -> None:
        s = self.fake.script
        n = self.fake.next_chat()
        if body.get("model") not in s.models:
            # vLLM's answer to an unknown model
            self._error(404, f"The model `{body.get('model')}` does not exist.", "model_not_found")
            return
        if n <= s.reset_first:
            self.connection.shutdown(socket.SHUT_RDWR)  # a connection reset with no answer
            self.close_connection = True
            return
        if n <= s.reset_first + len(s.fail_first):
            status = s.fail_first[n - s.reset_first - 1]
            self.send_response(status)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if s.reject_extras and "top_k" in body:
            self._error(400, "Unrecognized request argument supplied: top_k")
            return
        last = body["messages"][-1]["content"]
        if s.fail_when and s.fail_when in last:
            self._error(400, f"cannot answer {last!r}")
            return
        words = _answer_words(body)[: body.get("max_tokens") or None]
        if s.stall_s:
            time.sleep(s.stall_s)
        if not body.get("stream"):
            time.sleep(s.delay_s)
            self._json(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(words)},
                                          "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 7, "completion_tokens": len(words), "total_tokens": 7}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")  # the body ends when the connection closes
        self.end_headers()
        self.close_connection = True

        def event(data: Any) -> None:
            self.wfile.write(b"data: " + (data if isinstance(data, bytes) else json.dumps(data).encode()) + b"\n\n")
            self.wfile.flush()

        for i, word in enumerate(words):
            if s.drop_after is not None and i >= s.drop_after:
                return  # the connection closes without [DONE]
            event({"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]})
        event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if s.usage and (body.get("stream_options") or {}).get("include_usage"):
            event({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": len(words),
                                            "total_tokens": 7 + len(words)}})
        event(b"[DONE]")

    def _completions(self, body: dict) -> None:
        mode = self.fake.script.completions
        if mode == "missing":
            self._error(404, "Not Found")
            return
        prompt = body["prompt"]
        if mode == "no-logprobs":
            text = (prompt if body.get("echo") else "") + " Paris"
            self._json(200, {"choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "length"}]})
            return
        # "no-echo": like llama-server, logprobs only for the generated tokens, whatever echo says.
        self._json(200, {"choices": [{"index": 0, "text": " Paris", "finish_reason": "length", "logprobs": {
            "tokens": [" Paris"], "token_logprobs": [-0.5], "text_offset": [len(prompt)],
            "top_logprobs": [{" Paris": -0.5}]}}]})
