"""What the chat panel does, apart from how it looks: sending a message, answering it on a worker thread
(the manager's lock serializes it with cells and batch jobs), streaming into the view, loading models
behind a progress bar, and keeping what was typed when something fails.

:class:`ChatController` is mixed into :class:`~.panel.ChatPanel`; it reaches the view only through the
panel's ``_render``, ``_add_turn``, ``_set_status`` and ``_set_input`` and the widgets it names.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..errors import EmptyPromptError, GenerationInterrupted, Gpt4AllError, ModelBusyError
from ..manager import GenerationResult
from ..options import GenerationOptions
from ..text import tokens_per_second
from .context import attach, attachment_budget, compose, docs_mentions, recount, without_docs_mentions
from .render import code_blocks
from .selector import load_with_progress
from .turns import Turn

__all__ = ["SEND_MARK", "ChatController"]

log = logging.getLogger(__name__)

# The lab extension appends this character when Enter (without Shift) is pressed in the input box: it
# travels with the text in the same state update, so "send" can never overtake the last keystrokes.
SEND_MARK = "\ue000"


class ChatController:
    """The panel's behaviour: events from the widgets and the work done on worker threads."""

    # -- events (the kernel's main thread) -----------------------------------------------------
    def _on_input(self, change: dict[str, Any]) -> None:
        if SEND_MARK in change["new"]:
            self._submit()

    def _on_send_click(self, _: Any) -> None:
        self._submit()

    def _submit(self, raise_errors: bool = False) -> bool:
        """Start answering the input box's message; False (with a status line) if it cannot start."""
        text = self.input.value.replace(SEND_MARK, "")
        try:
            if self.busy:
                raise ModelBusyError("Still answering: wait for it or press Stop, then send again.")
            if not text.strip():
                raise EmptyPromptError("Type a message first.")
            options = self._options()
        except Gpt4AllError as exc:
            self._set_input(text)  # keep what was typed (without the Enter mark)
            self._set_status(str(exc), error=not isinstance(exc, (ModelBusyError, EmptyPromptError)))
            if raise_errors:
                raise
            return False
        n_ctx = self.manager.current.n_ctx if self.manager.current else self.manager.n_ctx
        attachments, missing = attach(text, self._user_namespace(), attachment_budget(n_ctx, options.max_tokens))
        self._set_input("")
        user = self._add_turn(Turn("user", text, attachments, missing, docs=docs_mentions(text)))
        answer = self._add_turn(Turn("assistant", state="waiting"))
        self._stop.clear()
        self.stop_button.disabled = False
        self._worker = threading.Thread(target=self._reply, args=(user, answer, options),
                                        name="gpt4all-chat", daemon=True)
        self._worker.start()
        return True

    def _options(self) -> GenerationOptions:
        options = self.controls.options()
        prompt = self.system_prompt.value.strip()
        options = options.replace(system_prompt=prompt or None)
        self.session.options = options
        return options

    def _on_new_chat(self, _: Any) -> None:
        self.new_chat()

    def _on_export(self, fmt: str) -> None:
        try:
            path = self.export(fmt)
        except OSError as exc:
            self._set_status(f"Could not save the chat: {exc.strerror or exc}; check the folder's permissions.",
                             error=True)
            return
        self._set_status(f"Saved {path.name} in {path.parent}.")

    def _on_model_selected(self, change: dict[str, Any]) -> None:
        if self._syncing or change["new"] is None:
            return
        self._start_load(change["new"], previous=change["old"])

    def _on_inserter_ready(self, change: dict[str, Any]) -> None:
        for turn in self.turns:
            if turn.actions is not None:
                turn.actions.layout.display = None if change["new"] else "none"

    def _on_inserted(self, content: dict[str, Any]) -> None:
        if content.get("event") == "inserted":
            self._set_status(f"Inserted the code as a new cell in {content.get('path') or 'the notebook'}.")
        elif content.get("event") == "error":
            self._set_status(f"Could not insert the cell: {content.get('message', 'no notebook found')}.",
                             error=True)

    # -- work (worker threads) -----------------------------------------------------------------
    def _reply(self, user: Turn, answer: Turn, options: GenerationOptions) -> None:
        manager = self.manager
        try:
            if manager.current is None:
                load_with_progress(manager, None, self.load_progress, self._loading_status)
            if manager.busy:
                self._set_status("Waiting for the model: a cell or another job is using it…")
            with manager.acquire("chat"):
                loaded = manager.ensure_loaded(self.session.model)
                if self._stop.is_set():  # Stop while the model loaded (or was busy): nothing is generated
                    self._stopped_before_start(user, answer, loaded.name)
                    return
                if user.attachments:
                    recount(user.attachments, attachment_budget(loaded.n_ctx, options.max_tokens), manager.count_text)
                    self._render(user)
                answer.state = "streaming"
                self._render(answer)
                result = self.session.send(compose(user.text, user.attachments), options=options,
                                           on_text=self._streamer(answer, loaded.name),
                                           should_stop=self._stop.is_set, docs=user.docs or None,
                                           docs_query=without_docs_mentions(user.text))
        except GenerationInterrupted as exc:
            result = exc.result
        except Gpt4AllError as exc:
            self._failed(user, answer, exc, str(exc))
            return
        except Exception as exc:  # never let the worker die silently: show it, keep the text
            log.exception("chat reply failed")
            self._failed(user, answer, exc, f"{type(exc).__name__}: {exc}")
            return
        finally:
            self.stop_button.disabled = True
        self._finished(answer, result)

    def _streamer(self, answer: Turn, model: str) -> Any:
        started = time.perf_counter()
        state = {"last": 0.0, "pieces": 0, "first": None}

        def on_text(piece: str) -> None:
            answer.text += piece
            now = time.perf_counter()
            state["pieces"] += 1
            state["first"] = state["first"] or now
            if now - state["last"] >= self.update_interval:
                state["last"] = now
                self._render(answer)
                speed = tokens_per_second(state["pieces"], state["first"], now)
                rate = f" · {speed:.1f} tok/s" if speed else ""
                self._set_status(f"{model} · writing · {state['pieces']} tokens{rate} · "
                                 f"{now - started:.1f} s")

        return on_text

    def _finished(self, answer: Turn, result: GenerationResult) -> None:
        answer.text, answer.result, answer.sources = result.text, result, list(result.sources)
        answer.state = "stopped" if result.finish_reason in ("stopped", "interrupted") else "done"
        answer.status = result.status_line()
        self.last_result = result
        blocks = code_blocks(result.text)
        if blocks:
            answer.actions = self._code_actions(blocks)
        self._render(answer, rebuild=bool(blocks))
        notes = " ".join(f"Note: {n}" for n in result.notices)
        self._set_status(answer.status + (f" — {notes}" if notes else ""))
        self._save()
        self._refresh_models_quietly()

    def _loading_status(self, text: str) -> None:
        stopped = " — stopped: the model finishes loading, no answer will follow" if self._stop.is_set() else ""
        self._set_status(text + stopped)

    def _stopped_before_start(self, user: Turn, answer: Turn, model: str) -> None:
        answer.state, answer.status = "stopped", "stopped before the answer started"
        user.sent = answer.sent = False  # the model never saw it: neither saved nor sent again
        self._render(answer)
        given_back = not self.input.value.strip()
        if given_back:  # so Send asks again
            self._set_input(user.text)
        self._set_status(f"Stopped before the answer started; {model} is loaded"
                         + (" and your message is back in the input box." if given_back else "."))

    def _failed(self, user: Turn, answer: Turn, exc: BaseException, message: str) -> None:
        answer.state, answer.error, answer.exception = "error", message, exc
        user.state = "error"  # not part of the conversation: neither saved nor sent again
        self._render(answer)
        self._set_status(message, error=True)
        if not self.input.value.strip():  # give the message back so nothing typed is lost
            self._set_input(user.text)

    def _start_load(self, key: str | None, previous: str | None = None) -> None:
        if self._loader is not None and self._loader.is_alive():
            self._set_status("A model is already loading; wait for it to finish.")
            return
        self._loader = threading.Thread(target=self._load_worker, args=(key, previous),
                                        name="gpt4all-chat-load", daemon=True)
        self._loader.start()

    def _load_worker(self, key: str | None, previous: str | None) -> None:
        try:
            self._load_with_progress(key)
        except Gpt4AllError as exc:
            self._set_status(str(exc), error=True)
            if previous is not None:
                self._syncing = True
                try:
                    self.model_select.value = previous
                finally:
                    self._syncing = False
        except Exception as exc:
            log.exception("model load failed")
            self._set_status(f"Loading failed: {type(exc).__name__}: {exc}", error=True)
        else:
            self._refresh_models_quietly()

    def _load_with_progress(self, key: str | None) -> None:
        load_with_progress(self.manager, key, self.load_progress, self._set_status)
