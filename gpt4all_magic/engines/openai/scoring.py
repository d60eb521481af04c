"""Log-likelihood scoring on a server, from ``/v1/completions`` with ``echo`` and ``logprobs`` (as
lm-evaluation-harness's gguf backend does), but only after checking that the server's echoed
log-probabilities are right.

Why check: llama-cpp-python (and so ``llama_cpp.server``) reads each echoed prompt token's logprob
from the wrong position for tokenizers that add no BOS token (llama-cpp-python#1983; SmolLM2 and
Qwen2 are such models), and llama.cpp's ``llama-server`` ignores ``echo``. The check, run once per
connection and model: generate a few tokens greedily after a probe prompt with their logprobs,
then echo-score probe + those tokens and compare the logprobs the server gives the same tokens at
the same positions both ways. They agree (within :data:`TOLERANCE`) on a correct server and differ
by whole nats under the off-by-one bug; a server that ignores echo or returns no logprobs fails too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ...errors import JOB_ENDING_ERRORS, GenerationError, RemoteError, ScoringNotSupportedError
from ...text import move_trailing_whitespace
from ..base import ScoreRequest, ScoreResult
from .batch import run_bounded

__all__ = ["EchoVerdict", "TOLERANCE", "check_echo", "score_requests"]

TOLERANCE = 0.1  # nats per token; the bug's errors are whole nats, arithmetic noise ~1e-3
PROBES = ("The capital of France is", "Monday, Tuesday, Wednesday,", "Once upon a time, there was a")


@dataclass(frozen=True)
class EchoVerdict:
    """Whether a server's echoed logprobs can be trusted, and why."""

    ok: bool
    reason: str
    max_difference: float | None = None  # nats, echo vs generation, over the probe's tokens

    def summary(self) -> str:
        return ("echo logprobs checked: " if self.ok else "refused: ") + self.reason


@dataclass(frozen=True)
class _Token:
    text: str
    logprob: float | None
    offset: int
    top: dict[str, float] | None


def _complete(model: Any, prompt: str, *, max_tokens: int, echo: bool) -> dict:
    payload = {"model": model.name, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0,
               "logprobs": 1, "echo": echo, "seed": 0, "stream": False}
    data = model.backend.http.json("POST", "/completions", payload, retry_connect=True)
    try:
        choice = data["choices"][0]
    except (KeyError, IndexError, TypeError):
        raise RemoteError(f"The server at {model.backend.base_url} answered /completions without a choice.") from None
    return choice if isinstance(choice, dict) else {}


def _tokens(choice: dict) -> list[_Token] | None:
    """The choice's tokens with logprobs and character offsets (legacy or chat-style format); None if absent."""
    lp = choice.get("logprobs")
    text = choice.get("text") or ""
    if not isinstance(lp, dict):
        return None
    if isinstance(lp.get("tokens"), list) and isinstance(lp.get("token_logprobs"), list):
        texts = [str(t) for t in lp["tokens"]]
        logprobs = lp["token_logprobs"]
        tops = lp.get("top_logprobs") or [None] * len(texts)
        offsets = lp.get("text_offset")
    elif isinstance(lp.get("content"), list):  # the chat-style format some servers use for completions too
        texts = [str(c.get("token", "")) for c in lp["content"]]
        logprobs = [c.get("logprob") for c in lp["content"]]
        tops = [{t.get("token"): t.get("logprob") for t in c.get("top_logprobs") or []} for c in lp["content"]]
        offsets = None
    else:
        return None
    joined = "".join(texts)
    if text.startswith(joined) or joined.startswith(text) or offsets is None:
        # Offsets from the tokens themselves: llama-cpp-python's text_offset is off by one character
        # for tokenizers that add a BOS token.
        offsets, at = [], 0
        for t in texts:
            offsets.append(at)
            at += len(t)
    return [_Token(t, None if p is None else float(p), int(o), top if isinstance(top, dict) else None)
            for t, p, o, top in zip(texts, logprobs, offsets, tops)]


def _echoed(tokens: list[_Token], prompt: str) -> bool:
    """Did the server return the prompt's own tokens (is echo honoured)?"""
    return bool(tokens) and tokens[0].offset == 0 and "".join(t.text for t in tokens).startswith(prompt)


def _looks_like_llama_cpp_python(model: Any) -> bool:
    entry = next((m for m in (model.backend._models or []) if m.get("id") == model.name), {})
    return entry.get("owned_by") == "me"  # what llama_cpp.server's /v1/models says


def check_echo(model: Any) -> EchoVerdict:
    """Compare echoed and generated logprobs of the same tokens; see the module docstring."""
    for probe in PROBES:
        try:
            generated = _complete(model, probe, max_tokens=3, echo=False)
        except JOB_ENDING_ERRORS:
            raise
        except RemoteError as exc:
            text = getattr(exc, "detail", str(exc))
            if getattr(exc, "status", None) == 404:
                return EchoVerdict(False, "it has no /v1/completions endpoint (only chat), so it cannot echo a prompt")
            if "logprob" in text.lower() or "logits_all" in text:
                hint = " (start llama_cpp.server with --logits_all True)" if "logits_all" in text else ""
                return EchoVerdict(False, f"it cannot return logprobs{hint}: {text.rstrip('.')}")
            return EchoVerdict(False, f"its /v1/completions refused a logprobs request: {text.rstrip('.')}")
        gen = _tokens(generated)
        if gen is None:
            return EchoVerdict(False, "it returns no logprobs (the completions answer has none)")
        gen_text = "".join(t.text for t in gen)
        if not gen_text.strip() or any(t.logprob is None for t in gen):
            continue
        full = probe + gen_text
        echo = _tokens(_complete(model, full, max_tokens=1, echo=True))
        if echo is None:
            return EchoVerdict(False, "it returns no logprobs for an echoed prompt")
        if not _echoed(echo, full):
            return EchoVerdict(False, "it ignores echo: the prompt's own tokens do not come back "
                                      "(llama.cpp's llama-server does that)")
        again = [t for t in echo if len(probe) <= t.offset < len(full)]
        if not again or [t.text for t in again] != [t.text for t in gen][: len(again)]:
            continue  # the generated text tokenizes differently as part of a prompt: try another probe
        if any(t.logprob is None for t in again):
            return EchoVerdict(False, "it returns no logprobs for some echoed prompt tokens")
        diff = max(abs(a.logprob - b.logprob) for a, b in zip(again, gen))  # type: ignore[operator]
        if diff > TOLERANCE:
            why = (" (llama_cpp.server reads echoed logprobs from the wrong position for models whose tokenizer "
                   "adds no BOS token: llama-cpp-python#1983)" if _looks_like_llama_cpp_python(model) else "")
            return EchoVerdict(False, f"its echoed prompt logprobs disagree with its own generation logprobs for "
                                      f"the same tokens by up to {diff:.2f} nats{why}", diff)
        return EchoVerdict(True, f"echoed and generated logprobs of {len(again)} probe tokens agree (largest "
                                 f"difference {diff:.3g} nats)", diff)
    return EchoVerdict(False, "its echoed tokens could not be lined up with generated ones, so its logprobs "
                              "could not be checked")


def verdict(model: Any) -> EchoVerdict:
    """The cached check for this connection and model (run on first use)."""
    verdicts = model.backend.echo_verdicts
    if model.name not in verdicts:
        verdicts[model.name] = check_echo(model)
    return verdicts[model.name]


def _score_one(model: Any, request: ScoreRequest) -> ScoreResult:
    context, continuation = move_trailing_whitespace(request.context, request.continuation)
    full = context + continuation
    tokens = _tokens(_complete(model, full, max_tokens=1, echo=True))
    if tokens is None or not _echoed(tokens, full):
        raise ScoringNotSupportedError(f"The server at {model.backend.base_url} stopped echoing logprobs; "
                                       "score with a local model (`%gpt4all disconnect`).")
    chosen = [t for t in tokens if len(context) <= t.offset < len(full)]
    if not chosen:
        raise GenerationError(f"Cannot score {request.continuation!r}: the server's tokenizer merges it into the "
                              "context's last token; end the context at a word boundary.")
    if any(t.logprob is None for t in chosen):
        raise ScoringNotSupportedError("A server gives no logprob for a text's first token; give each "
                                       "continuation a non-empty context.")
    logprobs = tuple(float(t.logprob) for t in chosen)  # type: ignore[arg-type]
    greedy = all(t.top and lp >= max(t.top.values()) - 1e-6 for t, lp in zip(chosen, logprobs))
    return ScoreResult(logprob=sum(logprobs), n_tokens=len(chosen), is_greedy=bool(greedy), token_logprobs=logprobs)


def score_requests(model: Any, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
    """Score every request (concurrently, in input order); refuse if the server's echo is not trustworthy."""
    requests = list(requests)
    if not requests:
        return []
    checked = verdict(model)
    if not checked.ok:
        raise ScoringNotSupportedError(
            f"The server at {model.backend.base_url} cannot score {model.name}: {checked.reason}. Score with a local "
            "model (`%gpt4all disconnect`) or a server whose /v1/completions echoes correct logprobs (e.g. vLLM).")
    results = run_bounded(requests, lambda i, r: _score_one(model, r), max_parallel=model.backend.concurrency)
    for _, error in results:
        if error is not None:
            raise error
    return [value for value, _ in results]  # type: ignore[misc]
