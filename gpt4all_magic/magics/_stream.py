"""Showing an answer while it streams: a display that updates in place in a notebook, plain writes to
stdout in a terminal. When done, the answer is re-rendered as safe HTML from Markdown."""

from __future__ import annotations

import sys
import time
from typing import Any

from ..render import markdown_to_html

__all__ = ["StreamDisplay"]


class StreamDisplay:
    """Receives text pieces via :meth:`feed`; :meth:`finish` shows the final form."""

    def __init__(self, *, rich: bool, output_format: str = "markdown", interval: float = 0.05):
        self.rich = rich
        self.output_format = output_format
        self.interval = interval
        self.text = ""
        self._handle: Any = None
        self._last_update = 0.0
        self._dirty = False

    def start(self) -> None:
        if self.rich:
            from IPython.display import display

            self._handle = display({"text/plain": ""}, raw=True, display_id=True)

    def feed(self, piece: str) -> None:
        self.text += piece
        if not self.rich:
            sys.stdout.write(piece)
            sys.stdout.flush()
            return
        self._dirty = True
        now = time.perf_counter()
        if now - self._last_update >= self.interval:
            self._flush(now)

    def _flush(self, now: float) -> None:
        self._handle.update({"text/plain": self.text}, raw=True)
        self._last_update = now
        self._dirty = False

    def finish(self, text: str) -> None:
        """Show ``text`` (the whole answer) in the requested format."""
        self.text = text
        if not self.rich:
            sys.stdout.write("\n")
            sys.stdout.flush()
            return
        if self.output_format == "text":
            bundle = {"text/plain": text}
        else:
            bundle = {"text/html": markdown_to_html(text), "text/plain": text}
        self._handle.update(bundle, raw=True)
