"""The chat panel driven as a user drives it (type, click Send/Stop, pick a model) on the real bundled model."""

from __future__ import annotations

import os
import shutil
import threading
import time
from typing import Any

import ipywidgets as w
import pytest
from IPython.core.error import UsageError

from gpt4all_magic.conversation.context import attachment_budget
from gpt4all_magic.conversation.panel import SEND_MARK, ChatPanel
from gpt4all_magic.conversation.session import ChatSession
from gpt4all_magic.models import catalog


def settings(panel: ChatPanel, **values: Any) -> None:
    """Set generation controls the way a user does, by changing the widgets."""
    for name, value in values.items():
        panel.controls.widgets[name].value = value


def type_and_send(panel: ChatPanel, text: str) -> None:
    panel.input.value = text
    panel.send_button.click()


def wait_until(condition: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def record_answers(panel: ChatPanel) -> list[tuple[str, str]]:
    """(HTML sent to the front end, text so far) for every update of every new answer, in order."""
    seen: list[tuple[str, str]] = []
    watched: set[str] = set()

    def on_children(change: dict[str, Any]) -> None:
        for box in change["new"]:
            html = box.children[0] if isinstance(box, w.VBox) else box
            if "gpt4all-msg-assistant" in html._dom_classes and html.model_id not in watched:
                watched.add(html.model_id)
                turn = next(t for t in panel.turns if t.html is html)
                html.observe(lambda c, turn=turn: seen.append((c["new"], turn.text)), names="value")

    panel.messages.observe(on_children, names="children")
    return seen


def fresh_cache(manager: Any) -> None:
    """Forget llama.cpp's cached prompt prefix.

    Conversations reuse the evaluated prefix of the previous call, and a prefix evaluated in another
    batch gives slightly different logits, so two greedy runs only match from the same cache state.
    """
    manager.current.llm.reset()


def expected_first_answer(manager: Any, text: str, **options: Any) -> str:
    """What the library's own ChatSession answers to ``text`` as a first turn (greedy, fresh cache)."""
    fresh_cache(manager)
    answer = ChatSession(manager=manager, **options).send(text).text
    fresh_cache(manager)
    return answer


def test_send_streams_tokens_in_order_and_shows_the_answer(manager, panels):
    question = "Name three colours of the rainbow."
    expected = expected_first_answer(manager, question, temp=0, max_tokens=30)
    panel = panels(manager=manager)
    settings(panel, temp=0.0, max_tokens=30)
    updates = record_answers(panel)
    type_and_send(panel, question)
    assert panel.input.value == ""  # the box is cleared at once
    panel.wait(120)
    answer = panel.turns[-1]
    assert answer.state in ("done",) and answer.result is not None
    assert answer.text == expected == answer.result.text
    texts = [text for _, text in updates]
    assert len({t for t in texts if t}) >= 5  # streamed: many partial versions before the end
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))  # in order, only growing
    assert texts[-1] == expected
    final_html = updates[-1][0]
    assert 'data-state="done"' in final_html and "smollm2-135m-instruct · " in final_html
    assert "tok/s" in panel.status.value and "smollm2-135m-instruct" in panel.status.value
    assert [t.role for t in panel.turns] == ["user", "assistant"]
    assert panel.session.messages[-1] == {"role": "assistant", "content": expected}


def test_enter_sends_and_shift_enter_keeps_a_newline(manager, panels):
    panel = panels(manager=manager)
    settings(panel, temp=0.0, max_tokens=8)
    panel.input.value = "Say hi.\nThen say bye."  # Shift+Enter typed a newline: nothing is sent
    assert panel.turns == [] and not panel.busy
    panel.input.value = "Say hi.\nThen say bye." + SEND_MARK  # what the lab extension sends on Enter
    panel.wait(120)
    assert panel.turns[0].text == "Say hi.\nThen say bye."
    assert panel.input.value == ""
    assert panel.turns[1].state == "done" and panel.turns[1].text


def test_stop_ends_the_answer_and_keeps_the_partial_text(manager, panels):
    question = "Tell me a long story about a dragon and a knight."
    full = expected_first_answer(manager, question, temp=0, max_tokens=150)
    panel = panels(manager=manager)
    settings(panel, temp=0.0, max_tokens=150)
    type_and_send(panel, question)
    assert not panel.stop_button.disabled
    wait_until(lambda: len(panel.turns[-1].text) > 20)
    panel.stop_button.click()
    panel.wait(60)
    answer = panel.turns[-1]
    assert answer.state == "stopped" and answer.result.finish_reason == "stopped"
    assert 20 < len(answer.text) < len(full) and full.startswith(answer.text)
    assert answer.result.completion_tokens < 150
    assert "stopped" in panel.status.value and panel.stop_button.disabled
    assert panel.session.messages[-1]["content"] == answer.text  # the partial answer stays in the chat
    # the chat goes on
    type_and_send(panel, "Thanks!")
    panel.wait(120)
    assert panel.turns[-1].state == "done" and panel.exchanges == 2


def test_a_cell_run_during_a_reply_waits_for_it(manager, panels, shell, capsys, monkeypatch):
    cell = "%%gpt4all -t 0 -n 12\nName a colour."
    expected_cell = shell.run_cell(cell, store_history=True).result
    question = "Write four sentences about the sea."
    expected_chat = expected_first_answer(manager, question, temp=0, max_tokens=60)
    capsys.readouterr()
    spans: list[tuple[str, str]] = []
    loaded = manager.current
    original = loaded.stream_chat

    def recording(*args: Any, **kwargs: Any) -> Any:
        stream = original(*args, **kwargs)

        def run() -> Any:
            who = threading.current_thread().name
            spans.append(("start", who))
            try:
                yield from stream
            finally:
                spans.append(("end", who))

        return run()

    monkeypatch.setattr(loaded, "stream_chat", recording)
    panel = panels(manager=manager)
    settings(panel, temp=0.0, max_tokens=60)
    type_and_send(panel, question)
    wait_until(lambda: panel.turns[-1].text)
    result = shell.run_cell(cell, store_history=True)  # the kernel's main thread, mid-reply
    assert result.success and result.result == expected_cell
    assert not panel.busy  # the cell could only run once the reply was finished
    assert panel.turns[-1].text == expected_chat
    main = threading.main_thread().name
    assert spans == [("start", "gpt4all-chat"), ("end", "gpt4all-chat"), ("start", main), ("end", main)]
    captured = capsys.readouterr()
    assert expected_cell in captured.out and expected_chat[:30] not in captured.out  # no chat text in the cell's output
    assert "note: waiting for the model (chat)" in captured.err  # the cell says why it has not started


def test_a_cell_told_the_model_is_busy_leaves_the_reply_intact(manager, panels, shell):
    shell.run_line_magic("gpt4all", "config busy_timeout=0.2")
    panel = panels(manager=manager)
    settings(panel, temp=0.0, max_tokens=120)
    type_and_send(panel, "Write a poem about mountains.")
    wait_until(lambda: panel.turns[-1].text)
    result = shell.run_cell("%%gpt4all -t 0 -n 5\nHi.", store_history=True)
    assert isinstance(result.error_in_exec, UsageError)
    message = str(result.error_in_exec)
    assert "busy" in message and "Stop" in message and "\n" not in message
    panel.wait(120)
    assert panel.turns[-1].state == "done" and panel.turns[-1].result.completion_tokens > 5
    assert shell.run_cell("%%gpt4all -t 0 -n 5\nHi.", store_history=True).success  # free again


def test_at_dataframe_attaches_a_bounded_summary(manager, panels):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({f"column_{i}": [f"value {i}-{r} " * 4 for r in range(2000)] for i in range(30)})
    df["price"] = [r * 0.5 for r in range(2000)]
    panel = panels(manager=manager, namespace={"df": df})
    settings(panel, temp=0.0, max_tokens=20)
    type_and_send(panel, "Which columns does @df have? Mail me at someone@example.com, and @nothing.")
    panel.wait(120)
    user, answer = panel.turns[-2:]
    assert answer.state == "done", answer.error
    assert [a.name for a in user.attachments] == ["df"]  # not "example" from the e-mail address
    assert user.missing == ["nothing"]
    item = user.attachments[0]
    budget = attachment_budget(manager.current.n_ctx, 20)
    assert item.exact and item.tokens <= budget
    assert item.tokens == len(manager.current.tokenize(item.text, special=False))  # counted, not guessed
    assert item.summary == "DataFrame, 2000 rows × 31 columns"
    assert "column_0: " in item.text and "price: float64" in item.text
    assert "2000 rows" in user.html.value and f"{item.tokens} tokens" in user.html.value  # shown
    sent = panel.session.messages[-2]["content"]
    assert sent.startswith("Which columns") and item.text in sent
    assert answer.result.prompt_tokens < manager.current.n_ctx


def test_large_objects_are_cut_to_the_budget(manager, panels):
    big = list(range(200_000))
    panel = panels(manager=manager, namespace={"big": big, "text": "word " * 20_000})
    settings(panel, temp=0.0, max_tokens=10)
    type_and_send(panel, "Summarize @big and @text.")
    panel.wait(120)
    user = panel.turns[-2]
    assert panel.turns[-1].state == "done", panel.turns[-1].error
    budget = attachment_budget(manager.current.n_ctx, 10)
    assert sum(a.tokens for a in user.attachments) <= budget
    text = next(a for a in user.attachments if a.name == "text")
    assert text.truncated and "more characters left out" in text.text and "shortened" in user.html.value


def test_choosing_a_model_loads_it_with_progress(manager, panels, hermetic, bundled_path):
    hermetic.mkdir(exist_ok=True)
    try:  # a second file with the same weights (a symlink would count as the bundled model itself)
        os.link(bundled_path, hermetic / "tiny-copy.gguf")
    except OSError:
        shutil.copyfile(bundled_path, hermetic / "tiny-copy.gguf")
    (hermetic / "broken.gguf").write_bytes(b"GGUF" + b"\x00" * 64)
    panel = panels(manager=manager)
    keys = [key for _, key in panel.model_select.options]
    assert keys[0] == catalog.BUNDLED_NAME and "tiny-copy" in keys and "broken" in keys
    progress: list[tuple[float, Any]] = []
    panel.load_progress.observe(lambda c: progress.append((c["new"], panel.load_progress.layout.display)),
                                names="value")
    panel.model_select.value = "tiny-copy"  # the user picks it
    panel.wait(120)
    assert manager.current.name == "tiny-copy"
    assert progress and progress[-1][0] == 1.0 and any(display is None for _, display in progress)
    assert panel.load_progress.layout.display == "none"  # hidden again
    assert "Loaded tiny-copy" in panel.status.value
    settings(panel, temp=0.0, max_tokens=5)
    type_and_send(panel, "Hi.")
    panel.wait(120)
    assert panel.turns[-1].result.model == "tiny-copy"
    panel.model_select.value = "broken"  # a bad file: one-line error, previous model kept
    panel.wait(120)
    assert manager.current.name == "tiny-copy" and panel.model_select.value == "tiny-copy"
    status = panel.status.value
    assert "broken" in status and "jp-error-color1" in status  # shown as an error
    type_and_send(panel, "Hi again.")
    panel.wait(120)
    assert panel.turns[-1].state == "done"
