"""Batch work against a server: a bounded number of requests in flight, answers kept in input order,
transient failures (connection reset, 429, 502-504) retried with exponential backoff, and a failing
row marked on its own instead of failing the batch.

Rows use non-streamed requests: ``llama_cpp.server`` cuts a stream short when another request arrives
(its default ``--interrupt_requests``), and a whole answer per request is all a batch needs.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Callable, Sequence, TypeVar

from ...errors import JOB_ENDING_ERRORS, EmptyPromptError, RemoteError
from ...options import GenerationOptions
from ...text import StopScanner
from ..base import Message, OnResult, ResponseFormat, StreamStats
from .formats import note_format

__all__ = ["generate_many", "run_bounded"]

T = TypeVar("T")


def run_bounded(items: Sequence[Any], work: Callable[[int, Any], T], *, max_parallel: int,
                should_stop: Callable[[], bool] = lambda: False,
                on_done: Callable[[int, T | None, Exception | None], None] | None = None,
                on_interrupt: Callable[[int], None] | None = None) -> list[tuple[T | None, Exception | None]]:
    """``work(i, item)`` for every item with at most ``max_parallel`` running; results in input order.

    A row's exception is its result (the others go on), except that once an error from
    ``JOB_ENDING_ERRORS`` is seen, rows not started yet get that error without a request. Rows not
    started when ``should_stop()`` turns true are skipped (their result is (None, None)). On Ctrl-C
    ``on_interrupt(i)`` is called for each row in flight (its thread finishes in the background,
    unheard) and KeyboardInterrupt propagates; ``on_done`` has seen every row finished before.
    """
    return _Bounded(items, work, should_stop, on_done).run(max_parallel, on_interrupt)


class _Bounded:
    """The state of one :func:`run_bounded` call, shared by its worker threads."""

    def __init__(self, items: Sequence[Any], work: Callable[[int, Any], Any], should_stop: Callable[[], bool],
                 on_done: Callable[[int, Any, Exception | None], None] | None):
        self.items, self.work, self.should_stop, self.on_done = items, work, should_stop, on_done
        self.results: list[tuple[Any, Exception | None]] = [(None, None)] * len(items)
        self.fatal: list[Exception] = []
        self.stop = threading.Event()
        self.running: set[int] = set()
        self.delivered: set[int] = set()
        self.lock = threading.Lock()

    def one(self, i: int) -> tuple[Any, Exception | None]:
        """Run row ``i`` in a worker thread (or skip it: stopping, or a job-ending error already seen)."""
        if self.stop.is_set() or self.should_stop():
            self.stop.set()
            return None, None
        if self.fatal:
            return None, self.fatal[0]
        with self.lock:
            self.running.add(i)
        try:
            return self.work(i, self.items[i]), None
        except Exception as exc:  # noqa: BLE001 - a failing row is marked, the batch goes on
            if isinstance(exc, JOB_ENDING_ERRORS):
                self.fatal.append(exc)
            return None, exc
        finally:
            with self.lock:
                self.running.discard(i)

    def deliver(self, i: int, future: concurrent.futures.Future) -> None:
        if i in self.delivered:
            return
        self.delivered.add(i)
        self.results[i] = future.result()
        if self.on_done is not None:
            self.on_done(i, *self.results[i])

    def run(self, max_parallel: int, on_interrupt: Callable[[int], None] | None) -> list[tuple[Any, Exception | None]]:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, max_parallel),
                                                     thread_name_prefix="gpt4all-remote")
        futures = {pool.submit(self.one, i): i for i in range(len(self.items))}
        pending = set(futures)
        try:
            while pending:
                done, pending = concurrent.futures.wait(pending, timeout=0.1,
                                                        return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    self.deliver(futures[future], future)
        except KeyboardInterrupt:
            self.interrupted(pool, futures, on_interrupt)
            raise
        pool.shutdown(wait=True)
        return self.results

    def interrupted(self, pool: Any, futures: dict, on_interrupt: Callable[[int], None] | None) -> None:
        """Ctrl-C: stop starting rows, keep the ones that finished meanwhile, report the ones in flight."""
        self.stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        with self.lock:
            abandoned = sorted(self.running)
        for future, i in futures.items():
            if future.done() and not future.cancelled() and i not in abandoned:
                try:
                    self.deliver(i, future)
                except KeyboardInterrupt:
                    pass
        for i in abandoned:
            if on_interrupt is not None:
                on_interrupt(i)


def generate_many(model: Any, prompts: Sequence[Sequence[Message]], options: GenerationOptions,
                  on_result: OnResult | None = None, *, should_stop: Callable[[], bool] = lambda: False,
                  max_parallel: int = 4, response_format: ResponseFormat | None = None,
                  ) -> list[tuple[str, StreamStats, Exception | None]]:
    """Answer each message list; ``on_result(i, text, stats, error)`` as each row finishes.

    Returns ``(text, stats, error)`` per prompt, in input order (the contract of
    :meth:`LoadedModel.generate_many`). A row that failed has ``error`` set and
    ``stats.finish_reason == "error"``; rows not started when ``should_stop()`` turned true are not
    reported and keep ``("", StreamStats(), None)``; on Ctrl-C the rows in flight are reported with
    ``finish_reason == "interrupted"`` before KeyboardInterrupt propagates.
    """
    options = options.with_seed()
    rows: list[tuple[str, StreamStats, Exception | None]] = [("", StreamStats(), None) for _ in prompts]

    def work(i: int, messages: Sequence[Message]) -> tuple[str, StreamStats]:
        if not any(str(m.get("content", "")).strip() for m in messages if m.get("role") == "user"):
            raise EmptyPromptError(f"Prompt {i} is empty; write something to ask the model.")
        return answer_once(model, messages, options, response_format)

    def done(i: int, value: tuple[str, StreamStats] | None, error: Exception | None) -> None:
        if value is None and error is None:
            return  # skipped after should_stop(): left to run another time
        rows[i] = (value[0], value[1], None) if value is not None else ("", StreamStats(finish_reason="error"), error)
        if on_result is not None:
            on_result(i, *rows[i])

    def interrupted(i: int) -> None:
        rows[i] = ("", StreamStats(finish_reason="interrupted"), None)
        if on_result is not None:
            on_result(i, *rows[i])

    run_bounded(list(prompts), work, max_parallel=max_parallel, should_stop=should_stop, on_done=done,
                on_interrupt=interrupted)
    return rows


def answer_once(model: Any, messages: Sequence[Message], options: GenerationOptions,
                response_format: ResponseFormat | None = None) -> tuple[str, StreamStats]:
    """One non-streamed chat completion, retried on transient failures (connection refused included:
    a server restarting between rows is the common case in long batches)."""
    stats = StreamStats()
    payload = model.chat_payload(messages, options, stream=False, response_format=response_format)
    response = model.post("/chat/completions", payload, stats, retry_connect=True)
    try:
        data = response.json()
        choice = data["choices"][0]
        text = (choice.get("message") or {}).get("content") or choice.get("text") or ""
    except (ValueError, KeyError, IndexError, TypeError):
        raise RemoteError(f"The server at {model.backend.base_url} answered /chat/completions without a "
                          "choice; is it an OpenAI-compatible server?") from None
    scanner = StopScanner(options.stop)  # servers strip stop strings; this covers those that do not
    scanner.feed(text)
    text = scanner.text
    stats.finish_reason = {"length": "length"}.get(choice.get("finish_reason"), "stop")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
    if usage and isinstance(usage.get("completion_tokens"), int):
        stats.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        stats.completion_tokens = usage["completion_tokens"]
    else:
        model.backend.notify_once("usage-batch", f"{model.backend.base_url} does not report token counts; "
                                  "batch rows show 0 tokens.", stats)
    note_format(model, payload, text, stats)
    return text, stats
