"""One streamed answer from ``/v1/chat/completions`` (Server-Sent Events), cut at stop strings, with the
server's usage (or an estimate, said once) and a reproducibility check on the finished text."""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterator, Sequence

from ...errors import RemoteError
from ...options import GenerationOptions
from ...text import StopScanner
from ..base import Message, StreamStats
from .formats import note_format
from .http import iter_sse, server_message

__all__ = ["ChatStream"]

_FINISH = {"stop": "stop", "eos": "stop", "length": "length", "max_tokens": "length"}


class ChatStream:
    """Iterates one streamed answer; ``close()`` closes the HTTP response even if never started."""

    def __init__(self, model: Any, response: Any, payload: dict, messages: Sequence[Message],
                 options: GenerationOptions, stats: StreamStats, should_stop: Callable[[], bool]):
        self.model, self.response, self.payload, self.stats = model, response, payload, stats
        self._gen = self._run(messages, options, should_stop)

    def __iter__(self) -> ChatStream:
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

        http = self.model.backend.http
        self.scanner = StopScanner(options.stop)
        self.finish: str | None = None
        self.done = self.stopped = self.got_event = False
        self.usage: dict | None = None
        try:
            for piece in self._events(should_stop):
                out = self.scanner.feed(piece)
                if out:
                    yield out
        except httpx.TimeoutException:
            rest = self.scanner.flush()
            if rest:
                yield rest
            raise http.timed_out() from None
        except httpx.HTTPError as exc:  # the server died or the network dropped mid-answer
            rest = self.scanner.flush()
            if rest:
                yield rest
            raise http.dropped(exc) from None
        finally:
            self.response.close()
        rest = self.scanner.flush()
        if rest:
            yield rest
        self._end()
        self._account(messages, self.usage)
        if self.stats.finish_reason in ("stop", "length"):
            self.model.note_answer(messages, options, self.scanner.text, self.stats)
            note_format(self.model, self.payload, self.scanner.text, self.stats)

    def _events(self, should_stop: Callable[[], bool]) -> Iterator[str]:
        """The text pieces of the stream, until [DONE], a stop string, Stop, or the end of the body."""
        http = self.model.backend.http
        last_data = time.monotonic()
        for data in iter_sse(self.response):
            if data is None:  # keep-alive ping: a chance to stop or time out while the server thinks
                if should_stop():
                    self.stopped = True
                    return
                if time.monotonic() - last_data > http.timeout:
                    raise http.timed_out()
                continue
            last_data = time.monotonic()
            self.got_event = True
            if data.strip() == "[DONE]":
                self.done = True
                return
            yield from self._pieces(data)
            if self.scanner.hit:
                self.finish = "stop"
                return
            if should_stop():
                self.stopped = True
                return

    def _pieces(self, data: str) -> Iterator[str]:
        """The text in one event (counted as tokens as they come); its usage and finish reason are kept."""
        http = self.model.backend.http
        try:
            chunk = json.loads(data)
        except ValueError:
            raise RemoteError(f"The server at {http.base_url} streamed something that is not JSON "
                              f"({data[:80]!r}); is it an OpenAI-compatible server?") from None
        if not isinstance(chunk, dict):
            return
        if chunk.get("error"):
            raise RemoteError(f"The server at {http.base_url} failed mid-answer: {server_message(json.dumps(chunk))}")
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                self.stats.token_sampled()
                yield piece
                if self.scanner.hit:
                    return
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]

    def _end(self) -> None:
        """Why the answer ended, from what the stream said (or did not say)."""
        stats, http = self.stats, self.model.backend.http
        if self.stopped:
            stats.finish_reason = "stopped"
        elif self.finish is not None:
            stats.finish_reason = _FINISH.get(self.finish, "stop")
        elif self.done:
            # llama_cpp.server ends a stream early with [DONE] when another request arrives.
            stats.finish_reason = "stopped"
            stats.notices.append(
                f"{http.base_url} ended this answer early without saying why (llama_cpp.server does that when "
                "another request arrives, unless started with --interrupt_requests False).")
        elif not self.got_event:
            raise self.model.explain_empty_stream(self.payload)
        else:
            raise http.dropped("the stream ended before the answer was complete")

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
