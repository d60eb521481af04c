"""The chat panel's conversation as it is shown (:class:`Turn`), and its JSON file.

The file is a :meth:`ChatSession.to_dict <.session.ChatSession.to_dict>` (so
``ChatSession.load`` reads it too) plus the turns as shown, with attachments kept apart from the text
the user typed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..errors import Gpt4AllError, InvalidOptionError
from ..manager import GenerationResult
from ..options import GenerationOptions
from .context import Attachment
from .session import ChatSession

__all__ = ["FILE_FORMAT", "Turn", "read_chat", "write_chat"]

FILE_FORMAT = "gpt4all-magic-chat"


@dataclass
class Turn:
    """One message as the panel shows it."""

    role: str  # "user" or "assistant"
    text: str = ""  # what the user typed / what the model wrote
    attachments: list[Attachment] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # @names with no such variable
    docs: list[str] = field(default_factory=list)  # user: the @docs:NAME collections asked
    sources: list[dict[str, Any]] = field(default_factory=list)  # assistant: the excerpts it was given
    state: str = "done"  # assistant: waiting, streaming, done, stopped, error (user: done or error)
    sent: bool = True  # False: stopped before the model saw it, so not part of the conversation
    status: str = ""
    error: str = ""
    result: GenerationResult | None = None
    exception: BaseException | None = None
    html: w.HTML | None = None
    actions: w.HBox | None = None
    container: w.VBox | None = None

    @property
    def box(self) -> w.Widget:
        """The widget shown in the message list: the message, plus its buttons if it has any."""
        if self.actions is None:
            return self.html
        if self.container is None:
            self.container = w.VBox([self.html, self.actions])
        return self.container

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "text": self.text, "attachments": [a.to_dict() for a in self.attachments],
                "missing": self.missing, "state": self.state, "status": self.status, "docs": self.docs,
                "sources": self.sources}


def chat_data(session: ChatSession, turns: list[Turn]) -> dict[str, Any]:
    """What the chat file holds: the session (messages as the model saw them) and the turns as shown."""
    data = session.to_dict()
    data.update({"format": FILE_FORMAT, "version": 1,
                 "turns": [t.to_dict() for t in turns if t.sent and t.state != "error"]})
    return data


def write_chat(path: Path, session: ChatSession, turns: list[Turn]) -> None:
    """Write the chat file atomically (a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(chat_data(session, turns), indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def read_chat(path: Path) -> tuple[GenerationOptions, list[dict[str, str]], list[Turn]]:
    """Options, messages and turns from a chat file; a one-line InvalidOptionError if it is unusable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        options = GenerationOptions.from_mapping(data.get("options") or {})
    except (OSError, ValueError, Gpt4AllError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidOptionError(f"Cannot read the chat file {path} ({reason}); fix or delete it, or use "
                                 "another file.") from None
    messages = [{"role": m["role"], "content": m["content"]} for m in data.get("messages") or []
                if isinstance(m, dict) and m.get("role") in ("user", "assistant")
                and isinstance(m.get("content"), str)]
    return options, messages, _turns_from(data.get("turns"), messages)


def _turns_from(saved: Any, messages: list[dict[str, str]]) -> list[Turn]:
    """The saved turns if they match the messages, else turns made from the messages."""
    try:
        if isinstance(saved, list) and len(saved) == len(messages):
            turns = [Turn(role=t["role"], text=str(t.get("text", "")),
                          attachments=[Attachment.from_dict(a) for a in t.get("attachments", [])],
                          missing=[str(n) for n in t.get("missing", [])], state=str(t.get("state", "done")),
                          status=str(t.get("status", "")), docs=[str(n) for n in t.get("docs", [])],
                          sources=[dict(x) for x in t.get("sources", []) if isinstance(x, dict)]) for t in saved]
            if [t.role for t in turns] == [m["role"] for m in messages]:
                return turns
    except (KeyError, TypeError, AttributeError, ValueError):
        pass  # a hand-edited or older file: show the plain messages
    return [Turn(role=m["role"], text=m["content"]) for m in messages]
