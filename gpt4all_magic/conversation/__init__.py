"""Conversations: :class:`~.session.ChatSession` (no widgets), and the chat panel built on it: the view
(:mod:`.panel`), what it does (:mod:`.controller`), its settings controls, model selector, message
rendering, ``@var`` attachments (:mod:`.context`), saved chat files (:mod:`.turns`) and the sidebar
widgets the lab extension shows. ipywidgets is imported only with the panel.

(Not named ``chat``: ``gpt4all_magic.chat`` is the public function that opens the panel, and importing a
subpackage of that name would replace it on the package.)"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["ChatPanel", "ChatSession", "chat", "default_panel"]

_LAZY = {"ChatSession": "session", "ChatPanel": "panel", "chat": "panel", "default_panel": "panel"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
