"""The default backend: GGUF models run in-process by llama-cpp-python.

llama_cpp is imported when the first model loads, not before. Its native log output is routed to the
``gpt4all_magic.llama_cpp`` logger (and a small ring buffer used to explain load failures), so it never
reaches a notebook cell.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import signal
import threading
from typing import Any, Callable, Iterator, Sequence

from ..errors import ContextOverflowError, GenerationError, ModelLoadError
from ..options import GenerationOptions
from .base import Backend, LoadedModel, Message, ModelRef, ScoreRequest, ScoreResult, StreamStats

__all__ = ["LlamaCppBackend", "LlamaCppModel", "context_overflow", "deferred_interrupt", "import_llama_cpp",
           "native_log_tail"]

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


class LlamaCppBackend(Backend):
    """Loads GGUF files with ``llama_cpp.Llama``."""

    name = "llama.cpp"

    def __init__(self, *, n_batch: int = 512, flash_attn: bool = False, use_mlock: bool = False):
        self.n_batch = n_batch
        self.flash_attn = flash_attn
        self.use_mlock = use_mlock

    def load(self, ref: ModelRef, *, n_ctx: int, n_threads: int) -> LlamaCppModel:
        llama_cpp = import_llama_cpp()
        if ref.path is None:
            raise ModelLoadError(f"'{ref.name}' has no local file; the llama.cpp backend needs a .gguf path.")
        _NATIVE_LOG.clear()
        try:
            with deferred_interrupt():
                llm = llama_cpp.Llama(
                    model_path=str(ref.path), n_ctx=n_ctx, n_batch=min(self.n_batch, n_ctx),
                    n_threads=n_threads, n_threads_batch=n_threads, flash_attn=self.flash_attn,
                    use_mlock=self.use_mlock, verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            detail = native_log_tail() or str(exc)
            raise ModelLoadError(
                f"llama.cpp could not load {ref.path.name}: {detail}. The file may be corrupt or use an "
                f"architecture this llama-cpp-python does not support; try `%gpt4all info {ref.name}`."
            ) from None
        return LlamaCppModel(ref, llm, n_ctx=n_ctx, n_threads=n_threads)


class LlamaCppModel(LoadedModel):
    """One ``llama_cpp.Llama`` owned by the manager."""

    backend_name = "llama.cpp"

    def __init__(self, ref: ModelRef, llm: Any, *, n_ctx: int, n_threads: int):
        self.ref = ref
        self.name = ref.name
        self.llm = llm
        self.n_ctx = llm.n_ctx()
        self.n_threads = n_threads
        self._pieces: dict[int, bytes] = {}
        self._eog = self._eog_checker()
        self._formatter = self._make_formatter()
        self._scorer: Any = None

    # -- chat template ---------------------------------------------------------------------------
    def _make_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        self.has_chat_template = bool(template)
        model = self.llm._model
        eos, bos = self.llm.token_eos(), self.llm.token_bos()
        return Jinja2ChatFormatter(
            template=template or FALLBACK_TEMPLATE,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "",
        )

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text the chat template makes of ``messages`` (sandboxed Jinja)."""
        messages = [dict(m) for m in messages]
        try:
            return self._formatter(messages=messages).prompt
        except Exception as exc:  # templates raise for e.g. unsupported roles
            if messages and messages[0]["role"] == "system" and len(messages) > 1:
                # Some templates (Gemma) reject a system role: fold it into the first user turn.
                merged = [{"role": messages[1]["role"],
                           "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
                try:
                    return self._formatter(messages=merged + messages[2:]).prompt
                except Exception:
                    pass
            raise GenerationError(
                f"The chat template of {self.name} failed ({exc}); try another model or no system prompt."
            ) from None

    def tokenize(self, text: str, *, special: bool = True, add_bos: bool = False) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.tokenize(self.render(messages)))

    # -- generation ------------------------------------------------------------------------------
    def _eog_checker(self) -> Callable[[int], bool]:
        import llama_cpp

        vocab = self.llm._model.vocab
        return lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self.llm.detokenize([token])
        return piece

    def stream_chat(self, messages: Sequence[Message], options: GenerationOptions, stats: StreamStats,
                    should_stop: Callable[[], bool], *, reuse_cache: bool = False) -> Iterator[str]:
        prompt = self.tokenize(self.render(messages))
        return self.stream_tokens(prompt, options, stats, should_stop, reuse_cache=reuse_cache)

    def stream_tokens(self, prompt: list[int], options: GenerationOptions, stats: StreamStats,
                      should_stop: Callable[[], bool], *, reuse_cache: bool = False) -> Iterator[str]:
        """Check the context window now, then return the generator that streams the answer."""
        n_prompt = len(prompt)
        stats.prompt_tokens = n_prompt
        room = self.n_ctx - n_prompt
        if room < 1:
            raise context_overflow(self, "The prompt", n_prompt, n_prompt + options.max_tokens)
        max_tokens = options.max_tokens
        if max_tokens > room:
            stats.notices.append(
                f"max_tokens lowered from {max_tokens} to {room}: the prompt ({n_prompt:,} tokens) "
                f"leaves only that much of the {self.n_ctx:,}-token context window.")
            max_tokens = room
        if not reuse_cache:
            # A prompt evaluated in one batch and a cached prefix plus a short batch give slightly
            # different logits, so greedy answers could differ between two identical calls.
            self.llm.reset()
        return self._generate(prompt, options, max_tokens, stats, should_stop)

    def _generate(self, prompt: list[int], options: GenerationOptions, max_tokens: int,
                  stats: StreamStats, should_stop: Callable[[], bool]) -> Iterator[str]:
        llm = self.llm
        llm.set_seed(options.seed if options.seed is not None else 0xFFFFFFFF)
        llm.last_n_tokens_size = options.repeat_last_n
        stops = [s.encode("utf-8") for s in options.stop]
        hold = max((len(s) for s in stops), default=1) - 1
        buf = b""  # bytes generated so far
        sent = 0  # bytes of buf already yielded
        n = 0
        tokens = llm.generate(prompt, top_k=options.top_k, top_p=options.top_p, min_p=options.min_p,
                              typical_p=1.0, temp=options.temp, repeat_penalty=options.repeat_penalty)
        stats.finish_reason = "length"
        try:
            for token in tokens:
                stats.token_sampled()
                if self._eog(token):
                    stats.completion_tokens -= 1  # the end-of-turn token is not part of the answer
                    stats.finish_reason = "stop"
                    break
                n += 1
                buf += self._piece(token)
                if stops:
                    hit = min((i for i in (buf.find(s, sent) for s in stops) if i >= 0),
                              default=-1)
                    if hit >= 0:
                        buf = buf[:hit]
                        stats.finish_reason = "stop"
                        break
                safe = _utf8_safe_end(buf, len(buf) - hold if stops else len(buf))
                if safe > sent:
                    yield buf[sent:safe].decode("utf-8", errors="replace")
                    sent = safe
                if n >= max_tokens:
                    break
                if should_stop():
                    stats.finish_reason = "stopped"
                    break
        finally:
            tokens.close()
        if len(buf) > sent:
            yield buf[sent:].decode("utf-8", errors="replace")

    def recover(self) -> None:
        # An interrupt may land between llama-cpp-python's bookkeeping steps; forget the cached
        # prefix so the next call re-evaluates its prompt from a clean KV cache.
        self.llm.reset()

    # -- scoring ---------------------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        from .llama_scoring import score_requests

        return score_requests(self, requests)

    def score_chat(self, requests: Sequence[ScoreRequest], *, system_prompt: str | None = None) -> list[ScoreResult]:
        """Log-likelihoods of continuations as answers to contexts sent as user messages (chat template)."""
        from .llama_scoring import score_chat_requests

        return score_chat_requests(self, requests, system_prompt=system_prompt)

    # -- batches ---------------------------------------------------------------------------------
    def generate_many(self, prompts: Sequence[Sequence[Message]], options: GenerationOptions,
                      on_result: Callable[[int, str, StreamStats, Exception | None], None] | None = None, *,
                      should_stop: Callable[[], bool] = lambda: False, max_parallel: int | None = None,
                      ) -> list[tuple[str, StreamStats, Exception | None]]:
        """Answer many message lists, one token of every running row per llama.cpp decode (see
        :mod:`.llama_batch`); greedy rows give the same text as :meth:`stream_chat`."""
        from .llama_batch import generate_many

        results: list[tuple[str, StreamStats, Exception | None]] = [("", StreamStats(), None) for _ in prompts]

        def report(i: int, text: str, stats: StreamStats, error: Exception | None) -> None:
            results[i] = (text, stats, error)
            if on_result is not None:
                on_result(i, text, stats, error)

        tokens: list[list[int]] = []
        runnable: list[int] = []
        for i, messages in enumerate(prompts):
            try:
                tokens.append(self.tokenize(self.render(messages)))
                runnable.append(i)
            except GenerationError as exc:
                report(i, "", StreamStats(finish_reason="error"), exc)
        generate_many(self, tokens, options, lambda j, *rest: report(runnable[j], *rest),
                      should_stop=should_stop, max_parallel=max_parallel or 32)
        return results

    def describe(self) -> dict[str, Any]:
        return {"n_batch": self.llm.n_batch, "chat_template": "gguf" if self.has_chat_template else "fallback"}

    def close(self) -> None:
        scorer, self._scorer = self._scorer, None
        if scorer is not None:
            scorer.close()
        llm, self.llm = self.llm, None
        if llm is not None:
            with deferred_interrupt():
                llm.close()


def _utf8_safe_end(buf: bytes, end: int) -> int:
    """The largest index <= end that does not split a UTF-8 character."""
    end = max(0, min(end, len(buf)))
    for j in range(end - 1, max(end - 4, 0) - 1, -1):
        byte = buf[j]
        if byte & 0xC0 != 0x80:  # a lead byte (or ASCII): is its character complete before end?
            width = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return j if j + width > end else end
    return end


def context_overflow(model: LoadedModel, what: str, n_tokens: int, wanted: int) -> ContextOverflowError:
    """The one-line error for ``what`` (``n_tokens`` long) not fitting ``model``'s context window; it
    names the ``--n-ctx`` (a power of two >= ``wanted``) that would fit."""
    n_ctx = 512
    while n_ctx < wanted:
        n_ctx *= 2
    return ContextOverflowError(
        f"{what} is {n_tokens:,} tokens but {model.name}'s context window is {model.n_ctx:,}; shorten it or "
        f"reload with a larger window (`%gpt4all load {model.name} --n-ctx {n_ctx}`).",
        prompt_tokens=n_tokens, n_ctx=model.n_ctx)
