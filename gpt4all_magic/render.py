"""Turn model output into safe HTML, and pull code out of it.

Markdown is rendered in Python by markdown-it-py with raw HTML disabled: a ``<script>`` tag or an
``onerror=`` attribute in the model's answer comes out as visible text, and markdown-it's link
validation drops ``javascript:``, ``vbscript:``, ``file:`` and non-image ``data:`` links. Images
become links (``image: ALT``): an ``<img>`` would fetch its URL as soon as the answer is shown, so an
answer could send the user's data (an attached ``@df``) to another host without a click.
"""

from __future__ import annotations

import html
import re
from typing import Any

__all__ = ["extract_code", "markdown_to_html"]

_md: Any = None
_FENCE = re.compile(r"^(```|~~~)[ \t]*([\w+#.-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)


def _parser() -> Any:
    global _md
    if _md is None:
        from markdown_it import MarkdownIt

        _md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
        _md.enable("strikethrough")
        _md.add_render_rule("image", _image_as_link)
    return _md


def _image_as_link(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    """An image as a link to it, so that nothing is fetched until the user clicks."""
    token = tokens[idx]
    alt = html.escape(self.renderInlineAsText(token.children or [], options, env) or "image")
    src = str(token.attrGet("src") or "")
    if not src.lower().startswith(("http://", "https://")):
        return f"[image: {alt}]"  # inline data: images and relative paths: shown as text only
    return f'<a href="{html.escape(src)}">image: {alt}</a>'


def markdown_to_html(text: str) -> str:
    """Markdown to HTML with raw HTML shown as text; never executes anything."""
    try:
        return _parser().render(text)
    except ImportError:  # markdown-it-py missing: fall back to escaped preformatted text
        return f"<pre>{html.escape(text)}</pre>"


def extract_code(text: str) -> str:
    """The fenced code blocks of ``text`` joined by blank lines; the whole text if it has none.

    An unterminated final fence (an answer cut by max_tokens) still counts.
    """
    blocks = [m.group(3).rstrip("\n") for m in _FENCE.finditer(text)]
    if not blocks:
        open_fence = re.search(r"^(```|~~~)[^\n]*\n(.*)\Z", text, re.S | re.M)
        if open_fence:
            return open_fence.group(2).rstrip("\n")
        return text.strip("\n")
    return "\n\n".join(blocks)
