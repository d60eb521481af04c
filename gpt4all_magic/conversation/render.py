"""HTML for the chat panel's messages, built in Python.

Model output and attached text go through :func:`gpt4all_magic.render.markdown_to_html` (raw HTML
disabled, unsafe links dropped); every other piece of text is escaped here. Styles are inline so the
panel looks right even where the lab extension's stylesheet is absent (VS Code, Notebook without it).
"""

from __future__ import annotations

import html
import os
import re
from typing import Any, Iterable

from ..render import markdown_to_html
from .context import Attachment

__all__ = ["assistant_html", "code_blocks", "empty_html", "sources_html", "user_html"]

_MUTED = "color: var(--jp-ui-font-color2, #666); font-size: 0.85em;"
_BUBBLE = ("padding: 6px 10px; border-radius: 8px; margin: 4px 0; overflow-x: auto; "
           "line-height: 1.45; word-wrap: break-word;")
_USER = f"{_BUBBLE} background: var(--jp-brand-color3, #e3f2fd); margin-left: 15%;"
_ASSISTANT = f"{_BUBBLE} background: var(--jp-layout-color2, #f3f3f3); margin-right: 5%;"
_PRE = ("background: var(--jp-cell-editor-background, #f7f7f7); border: 1px solid "
        "var(--jp-border-color2, #e0e0e0); border-radius: 4px; padding: 6px 8px; overflow-x: auto; "
        "font-size: 0.9em; white-space: pre;")
_FENCE = re.compile(r"^(```+|~~~+)[ \t]*[\w+#.-]*[^\n]*\n(.*?)(?:^\1[ \t]*$|\Z)", re.S | re.M)


def _styled(rendered: str) -> str:
    # markdown-it escapes any "<pre>" that came from the model, so every literal "<pre>" here is its own
    return rendered.replace("<pre>", f'<pre style="{_PRE}">')


def user_html(text: str, attachments: Iterable[Attachment] = (), missing: Iterable[str] = (),
              note: str = "") -> str:
    """A user turn: the text as Markdown, then each attachment folded under its label."""
    parts = [f'<div class="gpt4all-msg-body">{_styled(markdown_to_html(text))}</div>']
    for item in attachments:
        fence = "```"
        while fence in item.text:
            fence += "`"
        body = _styled(markdown_to_html(f"{fence}text\n{item.text}\n{fence}"))
        parts.append(f'<details class="gpt4all-attachment" style="{_MUTED}"><summary>📎 '
                     f"{html.escape(item.label())}</summary>{body}</details>")
    for name in missing:
        parts.append(f'<div style="{_MUTED}">@{html.escape(name)}: no variable with this name in the '
                     "kernel; sent as plain text.</div>")
    if note:
        parts.append(f'<div style="{_MUTED}">{html.escape(note)}</div>')
    return f'<div class="gpt4all-user" style="{_USER}">{"".join(parts)}</div>'


def sources_html(sources: Iterable[dict[str, Any]]) -> str:
    """The document excerpts an answer was given, each a link the lab extension opens in JupyterLab (the file
    relative to the kernel's folder; one outside JupyterLab's reach shows as text)."""
    items = []
    for source in sources:
        label = html.escape(f"[{source.get('number', '?')}] {source.get('file', '')}, {source.get('location', '')}")
        path = str(source.get("file", ""))
        if not path or os.path.isabs(path):
            items.append(f'<span class="gpt4all-source-text">{label}</span>')
            continue
        attrs = f' data-path="{html.escape(path.replace(os.sep, "/"), quote=True)}"'
        for key in ("line", "page"):
            if isinstance(source.get(key), int):
                attrs += f' data-{key}="{source[key]}"'
        items.append(f'<a class="gpt4all-source" role="link" tabindex="0" title="Open in JupyterLab"{attrs} '
                     f'style="cursor: pointer; text-decoration: underline;">{label}</a>')
    if not items:
        return ""
    return f'<div class="gpt4all-sources" style="{_MUTED}">Sources: {" · ".join(items)}</div>'


def assistant_html(text: str, *, state: str, status: str = "", error: str = "",
                   sources: Iterable[dict[str, Any]] = ()) -> str:
    """An assistant turn; ``state`` is waiting, streaming, done, stopped or error."""
    if text:
        body = _styled(markdown_to_html(text))
    elif state in ("waiting", "streaming"):
        body = f'<span style="{_MUTED}">…</span>'
    else:
        body = f'<span style="{_MUTED}">(no answer)</span>'
    extra = sources_html(sources)
    if error:
        extra += (f'<div class="gpt4all-error" style="color: var(--jp-error-color1, #c62828);">⚠ '
                  f"{html.escape(error)}</div>")
    if status:
        extra += f'<div class="gpt4all-turn-status" style="{_MUTED}">{html.escape(status)}</div>'
    return (f'<div class="gpt4all-assistant" data-state="{html.escape(state)}" style="{_ASSISTANT}">'
            f'<div class="gpt4all-msg-body">{body}</div>{extra}</div>')


def empty_html() -> str:
    """What an empty conversation shows."""
    return (f'<div style="{_MUTED} padding: 8px; line-height: 1.45;">Ask the local model anything. '
            "Enter sends, Shift+Enter starts a new line. Write <code>@name</code> to attach a variable of this kernel "
            "(a DataFrame is sent as its columns and first rows), <code>@docs:NAME</code> to answer from a collection "
            "of your documents (<code>%gpt4all docs add NAME PATH</code>).</div>")


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks of ``text`` (an unterminated last one included)."""
    return [m.group(2).rstrip("\n") for m in _FENCE.finditer(text) if m.group(2).strip()]
