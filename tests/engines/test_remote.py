"""The remote backend against a real ``python -m llama_cpp.server`` on the bundled model (started here on
127.0.0.1), and against a scripted fake server for the faults a real one will not show on demand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import openai_fakes
import pytest
from helpers import raw_llama, run, usage_error
from openai_fakes import FakeOpenAIServer
from real_servers import ALIAS, KEY_ENV, SERVER_KEY, Server

import gpt4all_magic
from gpt4all_magic.api import connect, disconnect, generate
from gpt4all_magic.bench.servers import free_port
from gpt4all_magic.conversation.session import ChatSession
from gpt4all_magic.engines.base import ScoreRequest
from gpt4all_magic.engines.openai.model import OpenAIBackend
from gpt4all_magic.errors import (
    ContextOverflowError,
    EmptyPromptError,
    ModelNotFoundError,
    RemoteAuthError,
    RemoteConnectionError,
    RemoteError,
    RemoteTimeoutError,
    ScoringNotSupportedError,
)
from gpt4all_magic.options import PARALLEL_ROWS, GenerationOptions

# -- the magics on a real server ---------------------------------------------------------------------

def test_magics_connect_list_load_cell_status_disconnect(server, remote_manager, shell_factory, capsys):
    shell = shell_factory()
    result = run(shell, f"%gpt4all connect {server.url} --api-key-env {KEY_ENV} --timeout 60 --concurrency 2")
    assert result.success, result.error_in_exec
    out = capsys.readouterr().out
    assert f"Connected to {server.url}/v1: using {ALIAS}" in out
    assert f"${KEY_ENV} (set)" in out

    listed = run(shell, "%gpt4all list").result
    assert listed.to_dict("records") == [{"name": ALIAS, "source": "remote", "server": server.url + "/v1",
                                          "owned_by": "me", "context": None, "loaded": True}]

    assert run(shell, f"%gpt4all load {ALIAS}").success
    message = usage_error(run(shell, "%gpt4all load smol-serve"))
    assert "has no model 'smol-serve'" in message and f"Did you mean '{ALIAS}'" in message
    assert remote_manager.current.name == ALIAS  # the failed load changed nothing

    capsys.readouterr()
    cell = run(shell, f"%%gpt4all -m {ALIAS} -t 0 -n 20\nName a colour.")
    assert cell.success, cell.error_in_exec
    captured = capsys.readouterr()
    assert type(cell.result) is str and cell.result and cell.result in captured.out
    assert f"{ALIAS} · " in captured.out and "seed " in captured.out
    assert captured.err.count("does not report token counts") == 1  # llama_cpp.server streams no usage
    again = run(shell, "%%gpt4all -t 0 -n 20\nName a colour.")
    assert again.success
    assert "does not report token counts" not in capsys.readouterr().err  # told once per connection

    status = run(shell, "%gpt4all status").result
    assert status["backend"] == "openai" and status["server"] == server.url + "/v1"
    assert status["api_key"] == f"${KEY_ENV} (set)"
    assert status["scoring"] == "not checked yet"

    assert run(shell, "%gpt4all disconnect").success
    assert f"Disconnected from {server.url}/v1" in capsys.readouterr().out
    assert remote_manager.backend.name == "llama.cpp" and remote_manager.current is None
    assert run(shell, "%gpt4all disconnect").success
    assert "Not connected to a server" in capsys.readouterr().out

    # The key was read from the environment only: not in the notebook, its output, or any repr.
    everything = repr(shell.user_ns) + repr(shell.history_manager.input_hist_raw) + repr(status)
    assert SERVER_KEY not in everything


def test_remote_greedy_seeded_and_chat_match_the_local_backend(remote, server, local):
    """Same model, same options: same text. The server is flushed first because it reuses the previous
    request's prompt cache, which changes the arithmetic slightly (the local backend starts afresh)."""
    server.flush_cache()
    for options in ({"temp": 0, "max_tokens": 40}, {"temp": 0.8, "seed": 42, "max_tokens": 30}):
        server.flush_cache()
        here = generate("Write a haiku about tea.", manager=local, **options)
        there = generate("Write a haiku about tea.", manager=remote, **options)
        assert there.text == here.text and len(there.text) > 20
        assert there.finish_reason == here.finish_reason
        if "seed" in options:
            assert there.seed == here.seed == options["seed"]

    # A two-turn conversation: both sides keep their cache between turns and start from an empty one.
    server.flush_cache()
    local.current.llm.reset()
    local_chat = ChatSession(manager=local, temp=0, max_tokens=25)
    remote_chat = ChatSession(manager=remote, temp=0, max_tokens=25)
    for question in ["Name a large animal.", "Where does it live?"]:
        assert remote_chat.send(question).text == local_chat.send(question).text
    assert remote_chat.messages == local_chat.messages and len(remote_chat.messages) == 4

    # Warm: asked the same prompt again, the server evaluates only its last token on top of its cache.
    # The local backend does exactly that with reuse_cache=True, and the two agree again.
    messages = [{"role": "user", "content": "Write a haiku about tea."}]
    options = GenerationOptions(temp=0, max_tokens=40)
    server.flush_cache()
    cold = local.generate(messages, options)
    assert remote.generate(messages, options).text == cold.text
    assert remote.generate(messages, options).text == local.generate(messages, options, reuse_cache=True).text


def test_chat_panel_answers_from_the_server(remote):
    from gpt4all_magic.conversation.panel import ChatPanel

    panel = ChatPanel(manager=remote, update_interval=0.0)
    try:
        assert panel.model_select.value == ALIAS
        result = panel.ask("Name a fruit.", timeout=120)
        assert result.model == ALIAS and result.text and result.finish_reason in ("stop", "length")
        assert [t.role for t in panel.turns] == ["user", "assistant"] and panel.turns[1].text == result.text
        assert any("does not report token counts" in n for n in result.notices)
    finally:
        panel.close()


def test_stop_sequences_should_stop_and_the_next_call(remote, server):
    opts = {"temp": 0, "max_tokens": 40}
    server.flush_cache()
    full = generate("Write a haiku about tea.", manager=remote, **opts)
    stop = full.text.split()[3]
    server.flush_cache()
    cut = generate("Write a haiku about tea.", stop=[stop], manager=remote, **opts)
    assert cut.text == full.text[: full.text.index(stop)] and cut.finish_reason == "stop"

    pieces: list[str] = []
    stopped = generate("Tell me a long story about a dragon.", manager=remote, temp=0, max_tokens=200,
                       on_text=pieces.append, should_stop=lambda: len(pieces) >= 3)
    assert stopped.finish_reason == "stopped" and stopped.text == "".join(pieces)
    assert 0 < len(pieces) <= 4
    after = generate("Name a fruit.", manager=remote, temp=0, max_tokens=10)  # the server is not stuck
    assert after.text and after.finish_reason in ("stop", "length")

    with pytest.raises(ContextOverflowError, match="maximum context length is 2048 tokens"):
        generate("word " * 2100, manager=remote, max_tokens=10)
    assert generate("Name a fruit.", manager=remote, temp=0, max_tokens=10).text == after.text


def test_batch_keeps_input_order_and_matches_single_requests(remote):
    model = remote.current
    questions = ["Name a fruit.", "Name a colour.", "Name a city.", "Count to five.", "Say hello.", "Name an animal."]
    prompts = [[{"role": "user", "content": q}] for q in questions]
    options = GenerationOptions(temp=0, max_tokens=16, seed=1)
    seen: list[int] = []
    rows = model.generate_many(prompts, options, lambda i, text, stats, error: seen.append(i), max_parallel=3)
    assert sorted(seen) == list(range(len(prompts)))
    for (text, stats, error), prompt in zip(rows, prompts):
        assert error is None and text
        assert stats.completion_tokens > 0 and stats.prompt_tokens > 0  # non-streamed answers carry usage
        single = model.generate_many([prompt], options, max_parallel=1)[0]
        assert single[0] == text  # row i is the answer to prompt i
    assert len(set(text for text, _, _ in rows)) == len(rows)


# -- scoring ------------------------------------------------------------------------------------------

def reference_logprobs(path: Path, pairs: list[tuple[str, str]], *, add_bos: bool,
                       flash_attn: bool = False) -> list[tuple[float, int, bool]]:
    """Naive log-likelihoods with llama_cpp.Llama(logits_all=True) and a numpy log-softmax."""
    llm = raw_llama(model_path=str(path), n_ctx=512, logits_all=True, verbose=False, n_threads=1,
                    n_threads_batch=1, flash_attn=flash_attn, kv_overrides={"tokenizer.ggml.add_bos_token": add_bos})
    try:
        out = []
        for context, continuation in pairs:
            moved = len(context) - len(context.rstrip())  # lm-eval: trailing whitespace joins the continuation
            if moved:
                context, continuation = context[:-moved], context[-moved:] + continuation
            ctx = llm.tokenize(context.encode(), add_bos=True, special=False)
            full = llm.tokenize((context + continuation).encode(), add_bos=True, special=False)
            assert full[: len(ctx)] == ctx
            llm.reset()
            llm.eval(full)
            logits = np.asarray(llm.scores[: len(full)], dtype=np.float64)
            logsm = logits - logits.max(axis=1, keepdims=True)
            logsm -= np.log(np.exp(logsm).sum(axis=1, keepdims=True))
            rows = range(len(ctx) - 1, len(full) - 1)
            lps = [logsm[r, full[r + 1]] for r in rows]
            greedy = all(int(np.argmax(logsm[r])) == full[r + 1] for r in rows)
            out.append((float(sum(lps)), len(lps), greedy))
        return out
    finally:
        llm.close()


def test_llama_cpp_server_echo_logprobs_are_wrong_for_smollm2_so_scoring_refuses(remote, server, bundled_path):
    # The measured fact behind the refusal: the server's generation logprob is right, its echo is not.
    body = {"prompt": "The capital of France is", "max_tokens": 1, "temperature": 0, "logprobs": 1}
    gen = httpx.post(server.url + "/v1/completions", json=body, headers=server.headers(), timeout=60).json()
    token = gen["choices"][0]["logprobs"]["tokens"][0]
    echo = httpx.post(server.url + "/v1/completions", headers=server.headers(), timeout=60,
                      json={**body, "prompt": body["prompt"] + token, "echo": True}).json()
    echoed = echo["choices"][0]["logprobs"]["token_logprobs"][-1]
    (truth, n, _), = reference_logprobs(bundled_path, [(body["prompt"], token)], add_bos=False)
    assert n == 1
    assert abs(gen["choices"][0]["logprobs"]["token_logprobs"][0] - truth) < 0.01
    assert abs(echoed - truth) > 1.0  # llama-cpp-python#1983

    model = remote.current
    with pytest.raises(ScoringNotSupportedError) as exc:
        model.score([ScoreRequest("The capital of France is", " Paris")])
    message = str(exc.value)
    assert "\n" not in message and "disagree" in message and "llama-cpp-python#1983" in message
    assert "`%gpt4all disconnect`" in message
    verdict = model.backend.echo_verdicts[model.name]
    assert not verdict.ok and verdict.max_difference > 1.0
    with pytest.raises(ScoringNotSupportedError):  # the verdict is cached: no second probe
        model.score([ScoreRequest("One, two,", " three")])
    assert model.backend.echo_verdicts[model.name] is verdict
    assert model.describe()["scoring"].startswith("refused: ")


def test_llama_cpp_server_without_logits_all_refuses_to_score(remote_manager, tmp_path):
    server = Server(tmp_path / "no_logits.log", "--logits_all", "False").wait_ready()
    try:
        model = connect(server.url, manager=remote_manager)
        with pytest.raises(ScoringNotSupportedError) as exc:
            model.score([ScoreRequest("The capital of France is", " Paris")])
        message = str(exc.value)
        assert "\n" not in message and "cannot return logprobs (start llama_cpp.server with --logits_all True)" \
            in message
        assert generate("Name a fruit.", manager=remote_manager, max_tokens=5).text  # generation still works
    finally:
        server.stop()


PAIRS = [("The capital of France is", " Paris"), ("The capital of France is", " London"),
         ("Question: What colour is the sky?\nAnswer:", " blue"),
         ("Question: What colour is the sky?\nAnswer: ", "green grass")]  # trailing space moves over


def test_remote_scores_match_local_ones_on_a_server_whose_echo_is_right(servers, remote_manager, bundled_path):
    model = connect(servers["bos"].url, manager=remote_manager)
    assert Path(model.name).name == bundled_path.name  # llama_cpp.server names it by its path
    scores = model.score([ScoreRequest(c, k) for c, k in PAIRS])
    verdict = model.backend.echo_verdicts[model.name]
    assert verdict.ok and verdict.max_difference < 0.01
    reference = reference_logprobs(bundled_path, PAIRS, add_bos=True, flash_attn=True)
    for got, (logprob, n_tokens, greedy) in zip(scores, reference):
        assert got.n_tokens == n_tokens
        assert got.logprob == pytest.approx(logprob, abs=0.01)
        assert got.is_greedy == greedy
    assert scores[0].logprob > scores[1].logprob  # Paris over London

    # The local backend's own (fast, batched, flash-attention) scorer on the same model and BOS setting.
    from gpt4all_magic.engines.base import ModelRef
    from gpt4all_magic.engines.llama.model import LlamaCppModel

    llm = raw_llama(model_path=str(bundled_path), n_ctx=512, n_threads=1, n_threads_batch=1, verbose=False,
                    kv_overrides={"tokenizer.ggml.add_bos_token": True})
    local_model = LlamaCppModel(ModelRef("bos", bundled_path, "file"), llm, n_ctx=512, n_threads=1)
    try:
        local_scores = local_model.score([ScoreRequest(c, k) for c, k in PAIRS])
    finally:
        local_model.close()
    for got, want in zip(scores, local_scores):
        assert (got.n_tokens, got.is_greedy) == (want.n_tokens, want.is_greedy)
        assert got.logprob == pytest.approx(want.logprob, abs=0.01)


def test_dataframe_generate_score_and_choose_are_the_same_calls_on_a_server(servers, remote_manager):
    import pandas as pd

    from gpt4all_magic.batch.choose import choose
    from gpt4all_magic.batch.generate import generate_rows
    from gpt4all_magic.batch.score import score as score_rows

    model = connect(servers["bos"].url, manager=remote_manager, concurrency=2)
    things = pd.DataFrame({"thing": ["fruit", "colour", "city"]}, index=["a", "b", "c"])
    out = generate_rows(things, "Name a {thing}.", manager=remote_manager, temp=0, max_tokens=8, progress=False)
    assert list(out.index) == ["a", "b", "c"] and (out["status"] == "ok").all()
    assert (out["completion_tokens"] > 0).all() and out["response"].str.len().gt(0).all()
    options = GenerationOptions(temp=0, max_tokens=8, seed=out.attrs["options"]["seed"])
    for thing, response in zip(things["thing"], out["response"]):
        assert model.generate_many([[{"role": "user", "content": f"Name a {thing}."}]], options)[0][0] == response

    pairs = pd.DataFrame({"prompt": [c for c, _ in PAIRS], "response": [k for _, k in PAIRS]})
    scored = score_rows(pairs, manager=remote_manager, progress=False)
    direct = model.score([ScoreRequest(c, k) for c, k in PAIRS])
    assert scored["logprob"].tolist() == pytest.approx([r.logprob for r in direct], abs=1e-6)

    quiz = pd.DataFrame({"question": ["The capital of France is", "The opposite of hot is"],
                         "choices": [["London", "Paris"], ["cold", "purple"]], "gold": [1, 0]})
    chosen = choose(quiz, manager=remote_manager, progress=False)
    assert chosen["pred"].tolist() == [1, 0] and (chosen["status"] == "ok").all()


# -- faults ------------------------------------------------------------------------------------------

def test_server_killed_mid_stream_keeps_the_partial_answer(servers, remote_manager, shell_factory, capsys,
                                                           monkeypatch):
    bos = servers["bos"]
    shell = shell_factory()
    assert run(shell, f"%gpt4all connect {bos.url}").success
    from gpt4all_magic.magics import _stream

    feed = _stream.StreamDisplay.feed

    def feed_then_kill(self, piece):
        feed(self, piece)
        if len(self.text) > 20 and bos.proc.poll() is None:
            bos.proc.send_signal(signal.SIGKILL)
            bos.proc.wait()

    monkeypatch.setattr(_stream.StreamDisplay, "feed", feed_then_kill)
    capsys.readouterr()
    result = run(shell, "%%gpt4all -t 0 -n 400\nTell me a long story about a dragon and a knight.")
    message = usage_error(result)
    assert "dropped the connection mid-answer" in message and bos.url in message
    partial = remote_manager.last_result
    assert partial.finish_reason == "error" and len(partial.text) > 20
    out = capsys.readouterr().out
    assert partial.text in out and "failed" in out  # the partial answer and the status line stay visible

    monkeypatch.setattr(_stream.StreamDisplay, "feed", feed)
    message = usage_error(run(shell, "%%gpt4all -t 0 -n 5\nHello"))
    assert f"Cannot reach an OpenAI-compatible server at {bos.url}/v1 (connection refused)" in message
    assert "python -m llama_cpp.server" in message


def test_server_not_running_changes_nothing(fake_manager, shell_factory):
    loaded = fake_manager.load()
    shell = shell_factory()
    url = f"http://127.0.0.1:{free_port()}"
    message = usage_error(run(shell, f"%gpt4all connect {url}"))
    assert message.startswith(f"Cannot reach an OpenAI-compatible server at {url}/v1 (connection refused).")
    assert "--port" in message
    with pytest.raises(RemoteConnectionError):
        connect(url, manager=fake_manager)
    assert fake_manager.backend.name == "fake" and fake_manager.current is loaded  # nothing was unloaded


def test_slow_server_timeout_is_configurable_and_reported(remote_manager, shell_factory):
    with FakeOpenAIServer(stall_s=3.0) as fake:
        shell = shell_factory()
        assert run(shell, f"%gpt4all connect {fake.url} --timeout 0.5").success
        started = time.monotonic()
        message = usage_error(run(shell, "%%gpt4all\nHello there"))
        assert time.monotonic() - started < 2.5
        assert "sent nothing for 0.5 s (the configured timeout)" in message and "--timeout" in message
        assert remote_manager.backend.timeout == 0.5
    with FakeOpenAIServer(stall_s=0.8) as fake:
        connect(fake.url, timeout=0.3, manager=remote_manager)
        with pytest.raises(RemoteTimeoutError, match="0.3 s"):
            generate("Hello there", manager=remote_manager)
        connect(fake.url, timeout=5, manager=remote_manager)  # a longer timeout: the same server answers
        assert generate("Hello there", manager=remote_manager).text == "Echo: Hello there"


def test_bad_or_missing_api_key_is_shown_clearly(server, remote_manager, shell_factory, monkeypatch):
    shell = shell_factory()
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-77")
    message = usage_error(run(shell, f"%gpt4all connect {server.url} --api-key-env {KEY_ENV}"))
    assert "HTTP 401" in message and f"${KEY_ENV} is set but the server rejected it" in message
    assert "sk-wrong-key-77" not in message and SERVER_KEY not in message
    monkeypatch.delenv(KEY_ENV)
    message = usage_error(run(shell, f"%gpt4all connect {server.url} --api-key-env {KEY_ENV}"))
    assert f"${KEY_ENV} is not set" in message and "--api-key-env" in message
    for pasted in ("sk-123=x", "hf_SECRETtoken123", "sk-SECRET-abc"):  # the key itself, by mistake
        message = usage_error(run(shell, f"%gpt4all connect {server.url} --api-key-env {pasted}"))
        assert "NAME of an environment variable" in message and pasted not in message

    # The key is read at each request: set it now and the same connection works.
    with pytest.raises(RemoteAuthError):
        connect(server.url, api_key_env=KEY_ENV, manager=remote_manager)
    monkeypatch.setenv(KEY_ENV, SERVER_KEY)
    model = connect(server.url, api_key_env=KEY_ENV, manager=remote_manager)
    backend = model.backend
    assert SERVER_KEY not in repr(backend) and f"${KEY_ENV} (set)" in repr(backend)
    assert SERVER_KEY not in repr(model.describe()) and SERVER_KEY not in repr(remote_manager.status())
    monkeypatch.setenv(KEY_ENV, "sk-rotated-wrong")
    with pytest.raises(RemoteAuthError):
        generate("Hi", manager=remote_manager, max_tokens=2)


def test_connection_settings_from_the_environment(server, remote_manager, shell_factory, monkeypatch):
    shell = shell_factory()
    monkeypatch.delenv("GPT4ALL_MAGIC_SERVER_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert "GPT4ALL_MAGIC_SERVER_URL" in usage_error(run(shell, "%gpt4all connect"))
    monkeypatch.setenv(KEY_ENV, SERVER_KEY)
    monkeypatch.setenv("GPT4ALL_MAGIC_SERVER_URL", server.url)
    monkeypatch.setenv("GPT4ALL_MAGIC_SERVER_MODEL", ALIAS)
    monkeypatch.setenv("GPT4ALL_MAGIC_SERVER_TIMEOUT", "abc")
    assert "$GPT4ALL_MAGIC_SERVER_TIMEOUT must be a number" in usage_error(
        run(shell, f"%gpt4all connect --api-key-env {KEY_ENV}"))
    monkeypatch.setenv("GPT4ALL_MAGIC_SERVER_TIMEOUT", "42")
    monkeypatch.setenv("GPT4ALL_MAGIC_SERVER_CONCURRENCY", "3")
    run(shell, f"%gpt4all connect --api-key-env {KEY_ENV}")
    backend = remote_manager.backend
    assert backend.base_url.startswith(server.url) and remote_manager.current.name == ALIAS
    assert (backend.timeout, backend.concurrency) == (42.0, 3)
    run(shell, f"%gpt4all connect --api-key-env {KEY_ENV} --timeout 7 --concurrency 2")  # arguments win
    assert (remote_manager.backend.timeout, remote_manager.backend.concurrency) == (7.0, 2)


def test_plain_http_to_another_machine_warns():
    with pytest.warns(UserWarning, match="plain HTTP to another machine"):
        OpenAIBackend("http://gpu-box.example:8000").close()
    for url in ("https://gpu-box.example", "http://127.0.0.1:8000", "localhost:8000", "http://[::1]:8000"):
        OpenAIBackend(url).close()  # filterwarnings turns a warning into an error here
    with pytest.raises(gpt4all_magic.Gpt4AllError, match="credentials in the URL"):
        OpenAIBackend("http://user:secret@127.0.0.1:8000")
    assert OpenAIBackend("127.0.0.1:8000").base_url == "http://127.0.0.1:8000/v1"
    assert OpenAIBackend("http://h.localhost:1/proxy/v1/").base_url == "http://h.localhost:1/proxy/v1"


def test_connect_magic_repeats_the_plain_http_warning(remote_manager, shell_factory, monkeypatch, capsys):
    from gpt4all_magic.engines.openai import http as openai_http

    monkeypatch.setattr(openai_http, "is_local_host", lambda host: False)  # pretend 127.0.0.1 is far away
    shell = shell_factory()
    with FakeOpenAIServer() as fake:
        for _ in range(2):
            assert run(shell, f"%gpt4all connect {fake.url}").success
            assert "warning: " + fake.url + "/v1 is plain HTTP to another machine" in capsys.readouterr().err


def test_server_without_logprobs_or_echo_refuses_to_score(remote_manager):
    expected = {"no-logprobs": "it returns no logprobs", "no-echo": "it ignores echo",
                "missing": "no /v1/completions endpoint"}
    for mode, reason in expected.items():
        with FakeOpenAIServer(completions=mode) as fake:
            model = connect(fake.url, manager=remote_manager)
            with pytest.raises(ScoringNotSupportedError) as exc:
                model.score([ScoreRequest("The capital of France is", " Paris")])
            message = str(exc.value)
            assert "\n" not in message and reason in message and fake.url in message
            probes = [p for p, _ in fake.requests if p == "/v1/completions"]
            with pytest.raises(ScoringNotSupportedError):
                model.score([ScoreRequest("a", " b")])
            assert [p for p, _ in fake.requests if p == "/v1/completions"] == probes  # checked once


def test_unknown_model_lists_the_servers_models(remote_manager):
    with FakeOpenAIServer(models=["llama3:8b", "qwen2.5:0.5b"]) as fake:
        with pytest.raises(ModelNotFoundError, match=r"no model 'llama3:7b'.*Its models: llama3:8b, qwen2.5:0.5b"):
            connect(fake.url, "llama3:7b", manager=remote_manager)
        model = connect(fake.url, "qwen2.5", manager=remote_manager)  # Ollama-style tag left off
        assert model.name == "qwen2.5:0.5b"
        fake.script.models = ["llama3:8b"]  # the model went away on the server
        with pytest.raises(ModelNotFoundError, match=r"has no such model .*Its models: llama3:8b, qwen2.5:0.5b"):
            generate("Hi", manager=remote_manager)


def test_usage_stop_strings_and_refused_parameters_on_a_strict_server(remote_manager):
    with FakeOpenAIServer(reject_extras=True) as fake:
        connect(fake.url, manager=remote_manager)
        first = generate("alpha beta gamma delta", manager=remote_manager, stop=[" gam"])
        assert first.text == "Echo: alpha beta" and first.finish_reason == "stop"  # the fake ignores stop
        assert any("refuses llama.cpp's sampling parameters" in n for n in first.notices)
        second = generate("one two", manager=remote_manager, max_tokens=2)
        assert second.notices == [] and second.text == "Echo: one"
        assert second.prompt_tokens == 7 and second.completion_tokens == 2  # from the server's usage
        chats = [b for p, b in fake.requests if p == "/v1/chat/completions"]
        assert "top_k" in chats[0] and "top_k" not in chats[-1] and chats[-1]["seed"] == second.seed
        assert remote_manager.current.describe()["token_counts"] == "reported by the server"


def test_a_stream_that_ends_early_is_a_connection_error_with_the_partial_kept(remote_manager):
    with FakeOpenAIServer(drop_after=2) as fake:
        connect(fake.url, manager=remote_manager)
        with pytest.raises(RemoteConnectionError, match="dropped the connection mid-answer") as exc:
            generate("one two three four", manager=remote_manager)
        assert exc.value.result.text == "Echo: one" and exc.value.result.finish_reason == "error"


def test_batch_retries_transient_failures_and_marks_a_failing_row(remote_manager):
    prompts = [[{"role": "user", "content": f"row {i}"}] for i in range(8)] + [[{"role": "user", "content": " "}]]
    with FakeOpenAIServer(reset_first=1, fail_first=[503, 429], fail_when="row 5") as fake:
        model = connect(fake.url, manager=remote_manager, concurrency=3)
        model.backend.http.backoff = 0.01
        finished: dict[int, str] = {}
        rows = model.generate_many(prompts, GenerationOptions(), lambda i, t, s, e: finished.setdefault(i, t))
        assert [t for t, _, _ in rows] == [f"Echo: row {i}" if i != 5 else "" for i in range(8)] + [""]
        text, stats, error = rows[5]
        assert isinstance(error, RemoteError) and "HTTP 400" in str(error) and stats.finish_reason == "error"
        assert isinstance(rows[8][2], EmptyPromptError) and rows[8][1].finish_reason == "error"
        assert all(e is None for i, (_, _, e) in enumerate(rows) if i not in (5, 8))
        assert finished == {i: t for i, (t, _, _) in enumerate(rows)}  # every row reported as it finished
        assert len([p for p, _ in fake.requests if p == "/v1/chat/completions"]) == 8 + 3  # 3 retried
        assert fake.max_active <= 3


def test_batch_concurrency_is_bounded_and_used(remote_manager):
    prompts = [[{"role": "user", "content": f"row {i}"}] for i in range(9)]
    with FakeOpenAIServer(delay_s=0.15) as fake:
        model = connect(fake.url, manager=remote_manager, concurrency=3)
        rows = model.generate_many(prompts, GenerationOptions(), max_parallel=PARALLEL_ROWS)  # the batch default
        assert [t for t, _, _ in rows] == [f"Echo: row {i}" for i in range(9)]
        assert fake.max_active == 3  # the connection's concurrency caps what a batch asks for
        fake.max_active = 0
        rows = model.generate_many(prompts[:4], GenerationOptions(), max_parallel=1)
        assert fake.max_active == 1 and all(e is None for _, _, e in rows)


def test_batch_stop_and_ctrl_c_keep_finished_rows(remote_manager):
    prompts = [[{"role": "user", "content": f"row {i}"}] for i in range(6)]
    with FakeOpenAIServer(delay_s=0.2) as fake:
        model = connect(fake.url, manager=remote_manager, concurrency=2)
        reported: dict[int, tuple[str, str]] = {}

        def record(i, text, stats, error):
            reported[i] = (text, stats.finish_reason)

        rows = model.generate_many(prompts, GenerationOptions(), record, should_stop=lambda: len(reported) >= 2)
        assert 2 <= len(reported) < 6 and all(rows[i][0] == f"Echo: row {i}" for i in reported)
        assert all(rows[i] == ("", rows[i][1], None) and rows[i][1].finish_reason is None
                   for i in range(6) if i not in reported)  # not run: left for a rerun

        calls: list[int] = []

        def interrupt_after_first(i, text, stats, error):
            calls.append(i)
            if len(calls) == 1:
                raise KeyboardInterrupt  # Ctrl-C lands while the batch reports its first row

        reported.clear()
        with pytest.raises(KeyboardInterrupt):
            model.generate_many(prompts, GenerationOptions(), lambda *row: (record(*row), interrupt_after_first(*row)))
        assert len(calls) == len(set(calls))  # each row reported once
        finished = [i for i, (text, why) in reported.items() if why == "stop" and text == f"Echo: row {i}"]
        interrupted = [i for i, (text, why) in reported.items() if why == "interrupted" and text == ""]
        assert finished and interrupted and len(finished) + len(interrupted) == len(reported) < 6


def test_batch_against_a_dead_server_fails_fast_and_marks_every_row(remote_manager):
    with FakeOpenAIServer() as fake:
        model = connect(fake.url, manager=remote_manager, concurrency=2)
    model.backend.http.backoff = 0.01
    model.backend.http.max_retries = 1
    rows = model.generate_many([[{"role": "user", "content": f"q{i}"}] for i in range(6)], GenerationOptions())
    assert all(isinstance(e, RemoteConnectionError) and s.finish_reason == "error" for _, s, e in rows)


def test_seed_reproducibility_is_checked_once_per_connection(remote_manager, monkeypatch):
    with FakeOpenAIServer() as fake:
        connect(fake.url, manager=remote_manager)
        first = generate("same question", manager=remote_manager, seed=7)
        monkeypatch.setattr(openai_fakes, "_answer_words", lambda body: ["A", " different", " answer"])
        second = generate("same question", manager=remote_manager, seed=7)
        assert first.text != second.text
        assert any("not reproducible" in n for n in second.notices)
        third = generate("same question", manager=remote_manager, seed=8)
        fourth = generate("same question", manager=remote_manager, seed=8)
        assert not any("reproducible" in n for n in third.notices + fourth.notices)


def test_python_api_and_light_import():
    assert gpt4all_magic.connect is connect and gpt4all_magic.disconnect is disconnect
    code = ("import sys, gpt4all_magic, gpt4all_magic.magics; "
            "print(sorted(m for m in ('httpx', 'llama_cpp') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}).stdout
    assert out.strip() == "[]"


def test_a_count_is_marked_estimated_when_the_tokenize_route_fails_later(remote_manager):
    """The server's tokenizer is found and counts exactly; when it fails afterwards, the count falls back
    to the estimate and says so (it used to stay labelled exact)."""
    with FakeOpenAIServer(tokenize=True, tokenize_fails_after=2) as fake:
        connect(fake.url, manager=remote_manager)
        first = remote_manager.count_text("one two three four")
        assert (first.tokens, first.exact, first.label()) == (4, True, "4 tokens")
        later = remote_manager.count_text("one two three four five six seven eight")
        assert later.exact is False and later.label() == f"≈{later.tokens} tokens"
        assert remote_manager.backend.tokenizer_route == "vllm"  # the route is kept; this count was a guess
