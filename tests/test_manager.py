"""The kernel-resident manager on the real bundled model: loading, generation, interrupts, threads."""

from __future__ import annotations

import _thread
import logging
import threading
import time

import pytest

from gpt4all_magic import ChatSession, generate
from gpt4all_magic.errors import (
    ContextOverflowError,
    EmptyPromptError,
    GenerationInterrupted,
    InvalidModelFileError,
    ModelBusyError,
    ModelNotFoundError,
    NotEnoughMemoryError,
)
from gpt4all_magic.manager import ModelManager
from gpt4all_magic.options import GenerationOptions
from gpt4all_magic.system import default_threads, rss_bytes

GREEDY = GenerationOptions(temp=0, max_tokens=40)
STORY = [{"role": "user", "content": "Tell me a long story about a dragon who learns to bake bread."}]


def test_default_threads_are_the_physical_cores():
    import os

    import psutil

    expected = min(psutil.cpu_count(logical=False) or os.cpu_count(), len(os.sched_getaffinity(0)))
    assert default_threads() == expected


def test_loaded_model_uses_physical_cores_for_both_thread_counts(manager):
    llm = manager.current.llm
    assert llm.n_threads == default_threads()
    assert llm.context_params.n_threads_batch == default_threads()


def test_greedy_generation_is_reproducible_and_fully_recorded(manager):
    first = manager.generate(STORY, GREEDY)
    second = manager.generate(STORY, GREEDY)
    assert first.text == second.text
    assert len(first.text.split()) >= 10
    assert first.model == "smollm2-135m-instruct"
    assert first.prompt_tokens == manager.current.count_tokens(STORY)
    assert first.completion_tokens == 40 and first.finish_reason == "length"
    assert isinstance(first.options["seed"], int) and first.options["temp"] == 0
    assert 0 < first.time_to_first_token < first.elapsed
    # Not a speed (that is the benchmark's job, and a loaded machine can be slow): the rate is over the
    # decoding span, which lies inside the whole call.
    assert first.tokens_per_second >= (first.completion_tokens - 1) / first.elapsed > 0
    assert "smollm2-135m-instruct · " in first.status_line() and f"seed {first.seed}" in first.status_line()


def test_same_seed_same_sample(manager):
    opts = GenerationOptions(temp=0.9, top_p=0.95, max_tokens=30, seed=1234)
    assert manager.generate(STORY, opts).text == manager.generate(STORY, opts).text


def test_model_stays_loaded_between_calls(manager):
    model = manager.current
    generate("Hi", temp=0, max_tokens=3)
    generate("Hello", temp=0, max_tokens=3)
    assert manager.current is model
    assert manager.load() is model  # asking again does not reload


def test_stop_sequence_cuts_the_answer(manager):
    full = manager.generate(STORY, GREEDY).text
    words = full.split()
    stop = " " + words[5]
    cut = manager.generate(STORY, GREEDY.replace(stop=(stop,))).text
    assert cut == full[: full.index(stop)]
    assert manager.last_result.finish_reason == "stop"


def test_system_prompt_changes_the_prompt(manager):
    plain = manager.generate(STORY, GREEDY)
    pirate = manager.generate(STORY, GREEDY.replace(system_prompt="You are a pirate. Answer like a pirate."))
    assert pirate.messages[0] == {"role": "system", "content": "You are a pirate. Answer like a pirate."}
    assert pirate.prompt_tokens != plain.prompt_tokens


def test_prompt_longer_than_context_names_the_numbers_and_keeps_the_model(manager):
    long = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(ContextOverflowError) as info:
        manager.generate(long, GREEDY)
    message = str(info.value)
    assert "context window is 2,048" in message and "--n-ctx 4096" in message
    assert info.value.prompt_tokens > 2048
    assert manager.generate(STORY, GREEDY).completion_tokens == 40


def test_max_tokens_is_lowered_with_a_notice_when_the_window_is_nearly_full(manager):
    prompt = [{"role": "user", "content": "word " * 1990}]
    result = manager.generate(prompt, GenerationOptions(temp=0, max_tokens=200))
    assert result.notices and "max_tokens lowered from 200 to" in result.notices[0]
    assert result.prompt_tokens + result.completion_tokens <= 2048


def test_empty_prompt_is_refused(manager):
    with pytest.raises(EmptyPromptError, match="The prompt is empty"):
        manager.generate([{"role": "user", "content": "  \n"}], GREEDY)


def test_ctrl_c_stops_within_a_token_or_two_keeps_the_text_and_the_model(manager):
    baseline = manager.generate(STORY, GenerationOptions(temp=0, max_tokens=150))
    seen, at_interrupt = [], []
    fifth = threading.Event()

    def on_text(piece: str) -> None:
        seen.append(piece)
        if len(seen) == 5:
            fifth.set()

    def interrupter() -> None:
        fifth.wait(30)
        at_interrupt.append(len(seen))
        _thread.interrupt_main()  # a real SIGINT-style KeyboardInterrupt in the main thread

    threading.Thread(target=interrupter, daemon=True).start()
    try:
        with pytest.raises(GenerationInterrupted) as info:
            manager.generate(STORY, GenerationOptions(temp=0, max_tokens=150), on_text=on_text)
    except KeyboardInterrupt:  # pragma: no cover - would mean the interrupt escaped the manager
        pytest.fail("KeyboardInterrupt escaped the manager")
    partial = info.value.result
    assert isinstance(info.value, KeyboardInterrupt)
    assert partial.finish_reason == "interrupted"
    assert partial.text == "".join(seen) and baseline.text.startswith(partial.text)
    assert at_interrupt[0] <= partial.completion_tokens <= at_interrupt[0] + 2
    # The same loaded model answers the next call exactly as before the interrupt.
    assert manager.generate(STORY, GenerationOptions(temp=0, max_tokens=150)).text == baseline.text


def test_two_threads_at_once_are_serialized_and_both_correct(manager):
    prompts = [[{"role": "user", "content": "Name three fruits."}],
               [{"role": "user", "content": "Name three rivers."}]]
    expected = [manager.generate(p, GREEDY).text for p in prompts]
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            results[i] = manager.generate(prompts[i], GREEDY).text
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert [results[0], results[1]] == expected


def test_concurrent_callers_never_overlap_in_the_backend(fake_manager):
    backend = fake_manager.backend
    backend.delay = 0.01
    threads = [threading.Thread(target=generate, args=(f"hello there number {i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert backend.max_active == 1
    assert fake_manager.totals.generations == 4


def test_busy_model_gives_a_clear_error_after_the_timeout(fake_manager):
    fake_manager.backend.delay = 0.05
    fake_manager.backend.enqueue(["tok"] * 40)
    fake_manager.busy_timeout = 0.1
    t = threading.Thread(target=generate, args=("a long one",))
    t.start()
    time.sleep(0.1)
    with pytest.raises(ModelBusyError, match=r"The model is busy \(generating\)"):
        generate("me too")
    t.join()
    assert generate("now it works").text == "Echo: now it works"


def test_bad_file_is_refused_and_the_loaded_model_stays(manager, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all")
    model = manager.current
    with pytest.raises(InvalidModelFileError):
        manager.load(str(bad))
    with pytest.raises(ModelNotFoundError):
        manager.load("no-such-model")
    assert manager.current is model
    assert manager.generate(STORY, GREEDY).completion_tokens == 40


def test_not_enough_ram_is_refused_with_numbers_unless_forced(fake_manager, monkeypatch):
    from gpt4all_magic.models import memory

    monkeypatch.setattr(memory, "available_ram", lambda: 50_000_000)
    with pytest.raises(NotEnoughMemoryError, match=r"needs about 1\d\d\.\d MB of RAM .* only 50.0 MB is free.*--force"):
        fake_manager.load()
    assert fake_manager.current is None
    assert fake_manager.load(force=True) is fake_manager.current


def test_unload_frees_native_memory(tmp_path):
    m = ModelManager(n_ctx=2048)
    m.load()
    m.generate(STORY, GREEDY)
    loaded = rss_bytes()
    assert m.unload() is True
    assert m.current is None
    assert rss_bytes() < loaded - 50_000_000
    assert m.unload() is False


def test_native_llama_logs_go_to_our_logger_never_to_stdout_or_stderr(capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="gpt4all_magic.llama_cpp")
    m = ModelManager(n_ctx=1024)
    m.load()
    m.generate(STORY, GenerationOptions(temp=0, max_tokens=5))
    m.unload()
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    native = [r.getMessage() for r in caplog.records if r.name == "gpt4all_magic.llama_cpp"]
    assert any(line.startswith("llama_model_loader:") for line in native)  # routed, not just silenced


def test_default_threads_respect_a_containers_cpu_quota(tmp_path, monkeypatch):
    from gpt4all_magic import system

    cpu_max = tmp_path / "cpu.max"
    monkeypatch.setattr(system, "_CPU_MAX", cpu_max)
    unlimited = default_threads()  # no file: physical cores
    cpu_max.write_text("max 100000\n")
    assert default_threads() == unlimited
    cpu_max.write_text("150000 100000\n")  # --cpus=1.5
    assert default_threads() == 1
    cpu_max.write_text("800000 100000\n")  # a quota above the cores changes nothing
    assert default_threads() == unlimited


def test_an_interrupted_chat_turn_without_an_answer_is_not_kept(fake_manager):
    chat = ChatSession(manager=fake_manager)
    fake_manager.backend.enqueue([KeyboardInterrupt()])
    with pytest.raises(GenerationInterrupted):
        chat.send("Hello there")
    assert chat.messages == []  # the next turn does not send an empty assistant message
    fake_manager.backend.enqueue(["Partial ", KeyboardInterrupt()])
    with pytest.raises(GenerationInterrupted):
        chat.send("Hello again")
    assert chat.messages == [{"role": "user", "content": "Hello again"}, {"role": "assistant", "content": "Partial "}]


def test_a_long_conversation_leaves_out_the_oldest_turns_and_says_so():
    m = ModelManager(n_ctx=512)
    chat = ChatSession(manager=m, temp=0, max_tokens=32)
    filler = " ".join(["The quick brown fox jumps over the lazy dog."] * 12)  # ~130 tokens
    results = [chat.send(f"Note {k}: {filler} Reply with one word.") for k in range(4)]
    assert not results[0].notices
    later = [r for r in results if any("left out of the prompt" in n for n in r.notices)]
    assert later, [r.notices for r in results]
    assert len(chat.messages) == 8  # the history keeps every turn
    for r in results:
        assert r.prompt_tokens + r.completion_tokens <= 512 and r.completion_tokens > 0
    m.unload()


def test_load_failure_inside_llama_cpp_is_a_model_load_error(tmp_path, bundled_path, monkeypatch):
    from gpt4all_magic.errors import ModelLoadError

    m = ModelManager(n_ctx=1024)
    monkeypatch.setattr("llama_cpp.Llama", _raising_llama)
    with pytest.raises(ModelLoadError, match="llama.cpp could not load SmolLM2-135M-Instruct.Q4_1.gguf"):
        m.load()
    assert m.current is None


def _raising_llama(*args, **kwargs):
    raise ValueError("Failed to load model from file")


def test_status_reports_model_memory_and_totals(manager):
    manager.generate(STORY, GREEDY)
    status = manager.status()
    assert status["model"] == "smollm2-135m-instruct"
    assert status["file_size"] == "98.4 MB"
    assert status["n_ctx"] == 2048 and status["n_threads"] == default_threads()
    # a human-readable size (the test process has loaded much else by now: MB or GB)
    assert status["rss"].split()[1] in ("MB", "GB") and status["completion_tokens"] >= 40


def test_ctrl_c_while_llama_cpp_logs_during_a_load_is_not_lost(monkeypatch):
    """llama.cpp logs through a ctypes callback while loading; an interrupt landing there must surface."""
    from gpt4all_magic.engines.llama import native as backend

    backend.import_llama_cpp()
    log = backend.log.log
    sent: list[str] = []

    def log_and_interrupt(level, fmt, line):
        if not sent:
            sent.append(line)
            _thread.interrupt_main()
            time.sleep(0.01)
        log(level, fmt, line)

    monkeypatch.setattr(backend.log, "log", log_and_interrupt)
    m = ModelManager(n_ctx=512)
    with pytest.raises(KeyboardInterrupt):
        m.load()
    assert sent and m.current is None
    monkeypatch.setattr(backend.log, "log", log)
    assert m.load().name == "smollm2-135m-instruct"
    m.unload()
