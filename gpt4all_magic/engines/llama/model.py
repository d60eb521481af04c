"""The default engine: GGUF models run in-process by llama-cpp-python.

llama_cpp is imported when the first model loads, not before (:mod:`.native`, which also keeps its
log out of notebook cells). Batches run on extra contexts of the same weights (:mod:`.batchctx`):
log-likelihood scoring in :mod:`.scoring`, generation of many rows at once in :mod:`.multiseq`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from ...errors import GenerationError, ModelLoadError
from ...options import PARALLEL_ROWS, GenerationOptions
from ...text import StopScanner
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
    StreamStats,
    TokenCount,
)
from .batchctx import BatchContexts
from .embed import load_embedder
from .multiseq import generate_many
from .native import (
    FALLBACK_TEMPLATE,
    clear_native_log,
    context_overflow,
    deferred_interrupt,
    import_llama_cpp,
    native_log_tail,
    without_amx_repack,
)
from .sampling import GrammarSampler, check_grammar
from .scoring import score_chat_requests, score_requests

__all__ = ["LlamaCppBackend", "LlamaCppModel"]

class LlamaCppBackend(Backend):
    """Loads GGUF files with ``llama_cpp.Llama``."""

    name = "llama.cpp"

    def __init__(self, *, flash_attn: bool = False, use_mlock: bool = False):
        self.flash_attn = flash_attn
        self.use_mlock = use_mlock

    def load(self, ref: ModelRef, *, n_ctx: int, n_threads: int, n_batch: int = 512) -> LlamaCppModel:
        llama_cpp = import_llama_cpp()
        if ref.path is None:
            raise ModelLoadError(f"'{ref.name}' has no local file; the llama.cpp backend needs a .gguf path.")
        clear_native_log()
        try:
            with deferred_interrupt(), without_amx_repack(llama_cpp):
                llm = llama_cpp.Llama(
                    model_path=str(ref.path), n_ctx=n_ctx, n_batch=min(n_batch, n_ctx),
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

    def load_embedder(self, ref: ModelRef, *, n_ctx: int, n_threads: int, pooling: str | None) -> Embedder:
        return load_embedder(ref, n_ctx=n_ctx, n_threads=n_threads, pooling=pooling)


class LlamaCppModel(LoadedModel):
    """One ``llama_cpp.Llama`` owned by the manager."""

    backend_name = "llama.cpp"

    def __init__(self, ref: ModelRef, llm: Any, *, n_ctx: int, n_threads: int):
        self.ref = ref
        self.name = ref.name
        self.llm = llm
        self.n_ctx = llm.n_ctx()
        self.n_threads = n_threads
        self.n_batch = llm.n_batch
        self._pieces: dict[int, bytes] = {}
        self.is_eog = self._eog_checker()
        self._formatter = self._make_formatter()
        self.batch_contexts = BatchContexts()  # the scoring context, made on first use
        self._grammars: dict[str, str] = {}  # JSON Schema text -> GBNF that llama.cpp has parsed

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

    def count_text(self, text: str) -> TokenCount:
        return TokenCount(len(self.tokenize(text, special=False)))

    # -- generation ------------------------------------------------------------------------------
    def _eog_checker(self) -> Callable[[int], bool]:
        import llama_cpp

        vocab = self.llm._model.vocab
        return lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))

    def piece(self, token: int) -> bytes:
        """The bytes of one token (cached: a token's text never changes)."""
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self.llm.detokenize([token])
        return piece

    def stream_chat(self, messages: Sequence[Message], options: GenerationOptions, stats: StreamStats,
                    should_stop: Callable[[], bool], *, reuse_cache: bool = False,
                    response_format: ResponseFormat | None = None) -> Iterator[str]:
        grammar = self.grammar(response_format) if response_format is not None else None
        prompt = self.tokenize(self.render(messages))
        return self.stream_tokens(prompt, options, stats, should_stop, reuse_cache=reuse_cache, grammar=grammar)

    # -- grammars ----------------------------------------------------------------------------------
    def grammar(self, response_format: ResponseFormat) -> str:
        """The GBNF of a response format's schema (made once per schema, checked by llama.cpp's parser)."""
        from ...structured.gbnf import describe, schema_to_gbnf

        key = describe(response_format.schema)
        text = self._grammars.get(key)
        if text is None:
            text = schema_to_gbnf(response_format.schema)
            check_grammar(self, text)
            self._grammars[key] = text
        return text

    def check_format(self, response_format: ResponseFormat) -> None:
        self.grammar(response_format)

    def stream_tokens(self, prompt: list[int], options: GenerationOptions, stats: StreamStats,
                      should_stop: Callable[[], bool], *, reuse_cache: bool = False,
                      grammar: str | None = None) -> Iterator[str]:
        """Check the context window now, then return the generator that streams the answer (constrained
        by ``grammar``, GBNF, when given)."""
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
        if not reuse_cache or grammar is not None:
            # A prompt evaluated in one batch and a cached prefix plus a short batch give slightly
            # different logits, so greedy answers could differ between two identical calls.
            self.llm.reset()
        return self._generate(prompt, options, max_tokens, stats, should_stop, grammar)

    def _constrained(self, prompt: list[int], options: GenerationOptions, grammar: str) -> Iterator[int]:
        """Tokens sampled with the grammar (:class:`~.sampling.GrammarSampler`, as batch rows are), on the
        main context evaluated as ``Llama.generate`` evaluates it: the prompt, then one token at a time."""
        llm = self.llm
        sampler = GrammarSampler(self, options, options.seed if options.seed is not None else 0xFFFFFFFF, grammar)
        try:
            llm.eval(prompt)
            while True:
                token = sampler.sample(llm._ctx.ctx, -1)
                if token is None:  # the grammar allows nothing more
                    return
                yield token
                llm.eval([token])
        finally:
            sampler.close()

    def _generate(self, prompt: list[int], options: GenerationOptions, max_tokens: int,
                  stats: StreamStats, should_stop: Callable[[], bool], grammar: str | None = None) -> Iterator[str]:
        llm = self.llm
        llm.set_seed(options.seed if options.seed is not None else 0xFFFFFFFF)
        llm.last_n_tokens_size = options.repeat_last_n
        scanner = StopScanner(options.stop, binary=True)
        n = 0
        if grammar is not None:
            tokens = self._constrained(prompt, options, grammar)
            stats.finish_reason = "stop"  # unless max_tokens or a stop ends it first (set below)
        else:
            tokens = llm.generate(prompt, top_k=options.top_k, top_p=options.top_p, min_p=options.min_p,
                                  typical_p=1.0, temp=options.temp, repeat_penalty=options.repeat_penalty)
            stats.finish_reason = "length"
        try:
            for token in tokens:
                stats.token_sampled()
                if self.is_eog(token):
                    stats.completion_tokens -= 1  # the end-of-turn token is not part of the answer
                    stats.finish_reason = "stop"
                    break
                n += 1
                out = scanner.feed(self.piece(token))
                if out:
                    yield out.decode("utf-8", errors="replace")
                if scanner.hit:
                    stats.finish_reason = "stop"
                    break
                if n >= max_tokens:
                    stats.finish_reason = "length"
                    break
                if should_stop():
                    stats.finish_reason = "stopped"
                    break
        finally:
            tokens.close()
        rest = scanner.flush()
        if rest:
            yield rest.decode("utf-8", errors="replace")

    def recover(self) -> None:
        # An interrupt may land between llama-cpp-python's bookkeeping steps; forget the cached
        # prefix so the next call re-evaluates its prompt from a clean KV cache.
        self.llm.reset()

    # -- scoring ---------------------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        return score_requests(self, requests)

    def score_chat(self, requests: Sequence[ScoreRequest], *, system_prompt: str | None = None) -> list[ScoreResult]:
        """Log-likelihoods of continuations as answers to contexts sent as user messages (chat template)."""
        return score_chat_requests(self, requests, system_prompt=system_prompt)

    # -- batches ---------------------------------------------------------------------------------
    def generate_many(self, prompts: Sequence[Sequence[Message]], options: GenerationOptions,
                      on_result: OnResult | None = None, *,
                      should_stop: Callable[[], bool] = lambda: False, max_parallel: int | None = None,
                      response_format: ResponseFormat | None = None,
                      ) -> list[tuple[str, StreamStats, Exception | None]]:
        """Answer many message lists, one token of every running row per llama.cpp decode (see
        :mod:`.multiseq`); greedy rows give the same text as :meth:`stream_chat`."""
        grammar = self.grammar(response_format) if response_format is not None else None
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
                      should_stop=should_stop, max_parallel=max_parallel or PARALLEL_ROWS, grammar=grammar)
        return results

    def scoring_settings(self) -> dict[str, Any]:
        return self.batch_contexts.describe().get("scoring", {})

    def describe(self) -> dict[str, Any]:
        return {"n_batch": self.n_batch, "chat_template": "gguf" if self.has_chat_template else "fallback"}

    def close(self) -> None:
        self.batch_contexts.close()
        llm, self.llm = self.llm, None
        if llm is not None:
            with deferred_interrupt():
                llm.close()


