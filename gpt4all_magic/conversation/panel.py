"""The chat panel: a conversation with the kernel's model, as an ipywidgets widget.

It is built from standard ipywidgets controls, so it works wherever widgets do; the lab extension adds
Enter-to-send, the sidebar and "insert as cell". Answers stream from a worker thread, so the notebook
stays usable; the manager's lock serializes them with the magics and batch jobs. Markdown is rendered
to HTML here in Python with raw HTML disabled. ``@name`` attaches a kernel variable
(:mod:`.context`). The conversation is a :class:`~.session.ChatSession` kept in the kernel, optionally
saved to a JSON file after every answer; a panel opened on that file again continues its conversation,
with its saved settings except those given explicitly. This module is the view; what the panel does
when something is sent or chosen is :mod:`.controller`.
"""

from __future__ import annotations

import html
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import ipywidgets as w

from ..errors import InvalidOptionError
from ..manager import GenerationResult, ModelManager, get_manager
from ..options import GenerationOptions, option_specs
from .controller import SEND_MARK, ChatController
from .controls import OptionControls, control_for
from .render import assistant_html, code_blocks, empty_html, user_html
from .selector import model_choices, model_key
from .session import ChatSession
from .sidebar import Sidebar, cell_inserter
from .turns import Turn, chat_data, read_chat, write_chat

__all__ = ["SEND_MARK", "ChatPanel", "Turn", "chat", "default_panel"]

log = logging.getLogger(__name__)


class ChatPanel(ChatController, w.VBox):
    """A chat with the kernel's model: message list, input, Send/Stop, model selector, settings, status.

    With ``file`` holding a saved chat, its conversation and settings are restored; what is given here
    (``options``, option keywords such as ``temp=0.2``, ``system_prompt``) wins over the saved settings.
    """

    def __init__(self, *, model: str | os.PathLike[str] | None = None, system_prompt: str | None = None,
                 options: GenerationOptions | None = None, file: str | os.PathLike[str] | None = None,
                 namespace: Mapping[str, Any] | None = None, manager: ModelManager | None = None,
                 title: str = "GPT4All chat", height: str = "420px", update_interval: float = 0.05,
                 **option_values: Any):
        self.manager = manager or get_manager()
        self.file = Path(file).expanduser() if file else None
        # Read the file before building anything: an unusable file fails here, with nothing half made.
        saved = read_chat(self.file) if self.file is not None and self.file.exists() else None
        base = options if options is not None or saved is None else saved[0]
        settings = GenerationOptions.from_mapping(option_values, base=base)
        if system_prompt is not None:
            settings = settings.replace(system_prompt=system_prompt)
        self.session = ChatSession(manager=self.manager, options=settings)
        self.title = title
        self.update_interval = update_interval
        self._namespace = namespace
        self.turns: list[Turn] = []
        self.last_result: GenerationResult | None = None
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._loader: threading.Thread | None = None
        self._syncing = False
        self._sidebar: Sidebar | None = None
        self._build(height)
        if saved is not None:
            _, self.session.messages, self.turns = saved
            self._set_status(f"Restored {self.exchanges} exchange(s) from {self.file.name}.")
        self._render_all()
        self.refresh_models()
        if model is not None:
            self.select_model(model)

    # -- layout --------------------------------------------------------------------------------
    def _build(self, height: str) -> None:
        where = f' <span style="opacity: 0.7;">· {_esc(self.file.name)}</span>' if self.file else ""
        self.header = w.HTML(f"<b>{_esc(self.title)}</b>{where}",
                             layout=w.Layout(flex="0 0 auto", margin="0 8px 0 0"))
        self.model_select = w.Dropdown(options=[], tooltip="Model (installed and bundled); choosing one loads it",
                                       layout=w.Layout(flex="1 1 auto", width="auto", min_width="120px"))
        self.model_select.add_class("gpt4all-chat-model")
        self.model_select.observe(self._on_model_selected, names="value")
        self.new_button = _button("New chat", "plus", "Forget this conversation and start a new one",
                                  "gpt4all-chat-new", self._on_new_chat)
        self.close_button = _button("", "times", "Close the sidebar (the chat stays in the kernel)",
                                    "gpt4all-chat-close", lambda _: self.close_sidebar())
        self.close_button.layout.display = "none"  # the lab extension's stylesheet shows it in the sidebar
        self.load_progress = w.FloatProgress(value=0.0, min=0.0, max=1.0, bar_style="info",
                                             layout=w.Layout(width="100%", display="none"))
        self.load_progress.add_class("gpt4all-chat-progress")
        self.messages = w.VBox(layout=w.Layout(
            height=height, overflow="hidden auto", flex_flow="column-reverse", padding="4px",
            border="1px solid var(--jp-border-color2, #ddd)", flex="1 1 auto", min_height="120px"))
        self.messages.add_class("gpt4all-chat-messages")  # column-reverse keeps the newest in view
        self._empty = w.HTML(empty_html())
        self.input = w.Textarea(placeholder="Message — Enter sends, Shift+Enter for a new line, @name "
                                            "attaches a variable", rows=3, layout=w.Layout(width="100%"))
        self.input.add_class("gpt4all-chat-input")
        self.input.observe(self._on_input, names="value")
        self.send_button = _button("Send", "paper-plane", "Send the message (Enter)", "gpt4all-chat-send",
                                   self._on_send_click, style="primary")
        self.stop_button = _button("Stop", "stop", "Stop the answer; the text so far is kept",
                                   "gpt4all-chat-stop", lambda _: self.stop(), style="warning")
        self.stop_button.disabled = True
        self.export_md = _button("Markdown", "download", "Save the conversation as Markdown in the working "
                                 "directory", "gpt4all-chat-export-md", lambda _: self._on_export("md"))
        self.export_json = _button("JSON", "download", "Save the conversation as JSON in the working directory",
                                   "gpt4all-chat-export-json", lambda _: self._on_export("json"))
        exports = w.HBox([self.export_md, self.export_json], layout=w.Layout(flex_flow="row wrap"))
        spec = next(s for s in option_specs() if s.name == "system_prompt")
        self.system_prompt = control_for(spec)
        self.system_prompt.description = "system prompt"
        self.controls = OptionControls(self.session.options, exclude=("system_prompt",))
        self.system_prompt.value = self.session.options.system_prompt or ""
        self.settings = w.Accordion(children=[w.VBox([self.system_prompt, self.controls.box]), exports],
                                    titles=("Settings", "Export"), layout=w.Layout(width="100%"))
        self.settings.selected_index = None
        self.status = w.HTML("", layout=w.Layout(min_height="1.5em"))
        self.status.add_class("gpt4all-chat-status")
        self.sidebar_note = w.HTML("GPT4All chat is open in the sidebar →", layout=w.Layout(display="none"))
        self.sidebar_note.add_class("gpt4all-chat-sidebar-note")
        inserter = cell_inserter()
        inserter.observe(self._on_inserter_ready, names="ready")
        inserter.on_reply(self._on_inserted)
        super().__init__(children=[
            self.sidebar_note,
            w.HBox([self.header, self.model_select, self.new_button, self.close_button],
                   layout=w.Layout(align_items="center", width="100%", flex_flow="row wrap")),
            self.load_progress, self.messages, self.input,
            w.HBox([self.send_button, self.stop_button], layout=w.Layout(width="100%", flex_flow="row wrap")),
            self.status, self.settings,
        ], layout=w.Layout(width="100%"))
        self.add_class("gpt4all-chat")

    # -- public API ----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while an answer is being written."""
        return self._worker is not None and self._worker.is_alive()

    def ask(self, text: str, *, wait: bool = True, timeout: float | None = None) -> GenerationResult | None:
        """Send ``text`` as if typed and sent; with ``wait``, return the finished answer's result.

        What the panel would only report in its status line (empty message, bad settings, an answer
        still running) is raised here as a one-line :class:`Gpt4AllError`.
        """
        self.input.value = text
        self._submit(raise_errors=True)
        if not wait:
            return None
        self.wait(timeout)
        turn = self.turns[-1]
        if turn.exception is not None:
            raise turn.exception
        return turn.result

    def wait(self, timeout: float | None = None) -> None:
        """Block until the current answer (and model load) is finished."""
        for thread in (self._loader, self._worker):
            if thread is not None:
                thread.join(timeout)

    def stop(self) -> None:
        """Stop the answer being written; the text so far is kept."""
        self._stop.set()

    def new_chat(self) -> None:
        """Stop any answer, forget the conversation (settings stay), clear the file if one is used."""
        self.stop()
        self.wait(30)
        self.session.reset()
        self.turns = []
        self.last_result = None
        self._render_all()
        self._set_status("New chat.")
        self._save()

    def to_markdown(self) -> str:
        return self.session.to_markdown()

    def to_json(self) -> str:
        return json.dumps(chat_data(self.session, self.turns), indent=2, ensure_ascii=False)

    def export(self, fmt: str = "md", path: str | os.PathLike[str] | None = None) -> Path:
        """Write the conversation as Markdown (``md``) or JSON (``json``); returns the path."""
        if fmt not in ("md", "json"):
            raise InvalidOptionError(f"Export format must be 'md' or 'json', got {fmt!r}.")
        if path is None:
            path = Path.cwd() / f"gpt4all-chat-{time.strftime('%Y%m%d-%H%M%S')}.{fmt}"
        path = Path(path).expanduser()
        path.write_text(self.to_markdown() if fmt == "md" else self.to_json(), encoding="utf-8")
        return path

    def code_blocks(self, index: int = -1) -> list[str]:
        """The code blocks of an assistant answer (default: the last one)."""
        answers = [t for t in self.turns if t.role == "assistant"]
        return code_blocks(answers[index].text) if answers else []

    def insert_code(self, code: str) -> bool:
        """Insert ``code`` as a new notebook cell below the active one (needs the lab extension)."""
        if cell_inserter().insert(code):
            return True
        self._set_status("This front end cannot insert cells (the JupyterLab extension is not active); "
                         "copy the code from the answer instead.")
        return False

    def select_model(self, name: str | os.PathLike[str]) -> None:
        """Load a model (a name from `%gpt4all list` or a .gguf path) for this chat, showing progress."""
        key, label = model_key(self.manager, str(name))
        self.refresh_models(extra=(key, label))
        self._syncing = True
        try:
            self.model_select.value = key
        finally:
            self._syncing = False
        self._start_load(key)

    def refresh_models(self, extra: tuple[str, str] | None = None) -> None:
        """Re-read the models on disk and show the loaded one in the selector."""
        choices, value = model_choices(self.manager, extra)
        self._syncing = True
        try:
            self.model_select.options = choices
            self.model_select.value = value
        finally:
            self._syncing = False

    def open_sidebar(self, area: str = "right") -> Sidebar:
        """Show this panel in JupyterLab's sidebar (one per kernel); inline views then show a note."""
        sidebar = Sidebar(child=self, area=area, title=self.title)
        self._sidebar = sidebar
        self.add_class("gpt4all-in-sidebar")
        sidebar.on_close(self._sidebar_closed)
        return sidebar

    def close_sidebar(self) -> None:
        """Take the panel out of the sidebar; the conversation stays in the kernel."""
        if self._sidebar is not None:
            self._sidebar.close()

    def _sidebar_closed(self, sidebar: Sidebar) -> None:
        if self._sidebar is sidebar:
            self._sidebar = None
            if self.comm is not None:
                self.remove_class("gpt4all-in-sidebar")

    def close(self) -> None:
        """Stop any answer and close the panel with all its controls."""
        if self.comm is None:  # already closed (close() runs again when the object is collected)
            return
        self.stop()
        self.close_sidebar()
        inserter = cell_inserter()
        inserter.unobserve(self._on_inserter_ready, names="ready")
        inserter.remove_reply_callback(self._on_inserted)
        for widget in [*_descendants(self), self._empty]:
            widget.close()
        super().close()

    @property
    def exchanges(self) -> int:
        """How many question/answer pairs the conversation holds."""
        return len(self.session)

    def __repr__(self) -> str:
        return f"<ChatPanel {self.exchanges} exchange(s), model={self.model_select.value}>"

    # -- rendering -----------------------------------------------------------------------------
    def _add_turn(self, turn: Turn) -> Turn:
        turn.html = w.HTML()
        turn.html.add_class("gpt4all-msg")
        turn.html.add_class(f"gpt4all-msg-{turn.role}")
        self.turns.append(turn)
        self._render(turn)
        self._render_list()
        return turn

    def _render(self, turn: Turn, rebuild: bool = False) -> None:
        if turn.role == "user":
            turn.html.value = user_html(turn.text, turn.attachments, turn.missing)
        else:
            turn.html.value = assistant_html(turn.text, state=turn.state, status=turn.status, error=turn.error,
                                             sources=turn.sources)
        if rebuild:
            self._render_list()

    def _render_list(self) -> None:
        if not self.turns:
            self.messages.children = [self._empty]
            return
        self.messages.children = [t.box for t in reversed(self.turns)]  # column-reverse: newest first

    def _render_all(self) -> None:
        for turn in self.turns:
            if turn.html is None:
                turn.html = w.HTML()
                turn.html.add_class("gpt4all-msg")
                turn.html.add_class(f"gpt4all-msg-{turn.role}")
            if turn.role == "assistant" and turn.actions is None:
                blocks = code_blocks(turn.text)
                if blocks:
                    turn.actions = self._code_actions(blocks)
            self._render(turn)
        self._render_list()

    def _code_actions(self, blocks: list[str]) -> w.HBox:
        buttons = []
        for i, code in enumerate(blocks[:6]):
            label = "Insert code as cell" if len(blocks) == 1 else f"Insert block {i + 1}"
            button = _button(label, "arrow-down", "Insert this code block as a new cell below the active one",
                             "gpt4all-chat-insert", lambda _, code=code: self.insert_code(code))
            buttons.append(button)
        row = w.HBox(buttons, layout=w.Layout(display=None if cell_inserter().ready else "none"))
        row.add_class("gpt4all-chat-actions")
        return row

    def _set_status(self, text: str, error: bool = False) -> None:
        color = "var(--jp-error-color1, #c62828)" if error else "var(--jp-ui-font-color2, #666)"
        self.status.value = (f'<div style="color: {color}; font-size: 0.85em; line-height: 1.4;">'
                             f"{_esc(text)}</div>")

    def _set_input(self, text: str) -> None:
        self.input.value = text

    def _refresh_models_quietly(self) -> None:
        try:
            self.refresh_models()
        except Exception:  # a models folder that vanished must not break the chat
            log.debug("could not refresh the model list", exc_info=True)

    def _user_namespace(self) -> Mapping[str, Any]:
        if self._namespace is not None:
            return self._namespace
        try:
            from IPython import get_ipython
        except ImportError:
            return {}
        shell = get_ipython()
        return shell.user_ns if shell is not None else {}

    # -- persistence ---------------------------------------------------------------------------
    def _save(self) -> None:
        if self.file is None:
            return
        try:
            write_chat(self.file, self.session, self.turns)
        except OSError as exc:
            self._set_status(f"Could not save the chat to {self.file}: {exc.strerror or exc}.", error=True)


def _button(label: str, icon: str, tooltip: str, css: str, handler: Any, style: str = "") -> w.Button:
    button = w.Button(description=label, icon=icon, tooltip=tooltip, button_style=style,
                      layout=w.Layout(width="auto", flex="0 0 auto"))
    button.add_class(css)
    button.on_click(handler)
    return button


def _descendants(widget: w.Widget) -> list[w.Widget]:
    found = []
    for child in getattr(widget, "children", ()):
        found += [*_descendants(child), child]
    return found


def _esc(text: str) -> str:
    return html.escape(text)


_DEFAULT: dict[str, ChatPanel] = {}


def default_panel() -> ChatPanel | None:
    """The kernel's chat panel, if one is open."""
    panel = _DEFAULT.get("panel")
    return panel if panel is not None and panel.comm is not None else None


def chat(*, model: str | os.PathLike[str] | None = None, system_prompt: str | None = None,
         file: str | os.PathLike[str] | None = None, sidebar: bool = False, area: str = "right",
         new: bool = False, namespace: Mapping[str, Any] | None = None, manager: ModelManager | None = None,
         options: GenerationOptions | None = None, **option_values: Any) -> ChatPanel:
    """The kernel's chat panel (created on first use); ``sidebar=True`` puts it in JupyterLab's sidebar.

    ``file`` keeps the conversation in a JSON file, restored when a panel is opened on it again (after
    a kernel restart) with its saved settings, except those given here; ``new=True`` makes a separate
    panel; generation options are keywords (``temp=0.2``) and show up in the panel's settings.
    """
    if area not in ("left", "right"):
        raise InvalidOptionError(f"area must be 'left' or 'right', got {area!r}.")
    manager = manager or get_manager()
    panel = default_panel()
    path = Path(file).expanduser() if file else None
    reuse = not new and panel is not None and panel.manager is manager and (path is None or panel.file == path)
    if reuse:
        assert panel is not None
        if options is not None or option_values:
            panel.controls.set(GenerationOptions.from_mapping(option_values,
                                                              base=options or panel.controls.options()))
        if system_prompt is not None:
            panel.system_prompt.value = system_prompt
        if model is not None:
            panel.select_model(model)
    else:
        GenerationOptions.from_mapping(option_values)  # only options here, never the panel's own arguments
        panel = ChatPanel(model=model, system_prompt=system_prompt, file=path, namespace=namespace,
                          manager=manager, options=options, **option_values)
        if not new:
            _DEFAULT["panel"] = panel
    if sidebar:
        panel.open_sidebar(area)
    return panel
