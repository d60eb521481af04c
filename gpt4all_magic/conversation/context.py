"""``@name`` in a chat message attaches a kernel variable: a DataFrame as its schema and first rows,
anything else as a bounded repr (``@docs:NAME`` instead searches a document collection: :func:`docs_mentions`). The attached text is bounded by a token budget derived from the
context window, and both its size and its exact text are shown to the user; a size the model could
not count (a server without a tokenize endpoint) is shown as an estimate, "≈N tokens"."""

from __future__ import annotations

import re
import reprlib
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

from ..engines.base import TokenCount

__all__ = ["Attachment", "attach", "attachment_budget", "compose", "describe", "docs_mentions", "mentions", "recount",
           "without_docs_mentions"]

# "@df" but not "a@b.com", "@@x" or "@docs:notes"; the name must be a Python identifier.
_MENTION = re.compile(r"(?<![\w.@])@([A-Za-z_][A-Za-z0-9_]*)(?![\w:])")
# "@docs:notes": the best chunks of the document collection "notes" go with the message.
_DOCS = re.compile(r"(?<![\w.@])@docs:([A-Za-z0-9](?:[\w.-]*[\w-])?)")
CHARS_PER_TOKEN = 3  # conservative estimate until the model's tokenizer counts exactly
MAX_ROWS = 5


@dataclass
class Attachment:
    """One attached variable: what the model is given and what the user is shown."""

    name: str
    summary: str  # "DataFrame, 1000 rows × 5 columns"
    text: str  # exactly what is added to the message
    tokens: int  # counted with the model's tokenizer when available, else estimated
    truncated: bool = False
    exact: bool = False  # tokens counted by the tokenizer (not estimated)

    def label(self) -> str:
        """``df — DataFrame, 1000 rows × 5 columns · 412 tokens (shortened)``."""
        size = TokenCount(self.tokens, self.exact).label()
        return f"{self.name} — {self.summary} · {size}" + (" (shortened to fit)" if self.truncated else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attachment:
        fields = {k: data[k] for k in ("name", "summary", "text", "tokens", "truncated", "exact") if k in data}
        return cls(**fields)


def mentions(text: str) -> list[str]:
    """The distinct ``@name`` mentions in ``text``, in order."""
    seen: dict[str, None] = {}
    for match in _MENTION.finditer(text):
        seen.setdefault(match.group(1), None)
    return list(seen)


def docs_mentions(text: str) -> list[str]:
    """The distinct ``@docs:NAME`` collections named in ``text``, in order."""
    return list(dict.fromkeys(m.group(1) for m in _DOCS.finditer(text)))


def without_docs_mentions(text: str) -> str:
    """``text`` without its ``@docs:NAME`` mentions: the question to search the documents with."""
    return re.sub(r"\s{2,}", " ", _DOCS.sub(" ", text)).strip() or text


def attachment_budget(n_ctx: int, max_tokens: int) -> int:
    """Tokens all attachments of one message may take: half of what the answer leaves free."""
    free = n_ctx - min(max_tokens, n_ctx // 2)
    return max(32, free // 2)


def _is_pandas(obj: Any, name: str) -> bool:
    cls = type(obj)
    return cls.__name__ == name and cls.__module__.split(".")[0] == "pandas"


def describe(obj: Any, char_budget: int) -> tuple[str, str, bool]:
    """``(summary, text, truncated)`` for ``obj``; ``text`` stays within ``char_budget`` characters."""
    if _is_pandas(obj, "DataFrame"):
        return _describe_frame(obj, char_budget)
    if _is_pandas(obj, "Series"):
        return _describe_series(obj, char_budget)
    return _describe_object(obj, char_budget)


def _fit_lines(head: str, body: str, char_budget: int) -> tuple[str, bool]:
    text = f"{head}\n{body}" if body else head
    if len(text) <= char_budget:
        return text, False
    return _clip(text, char_budget), True


def _clip(text: str, char_budget: int) -> str:
    marker = "\n… [{n} more characters left out]"
    keep = max(0, char_budget - len(marker.format(n=len(text))))
    return text[:keep] + marker.format(n=len(text) - keep)


def _describe_frame(df: Any, char_budget: int) -> tuple[str, str, bool]:
    rows, cols = df.shape
    summary = f"DataFrame, {rows} rows × {cols} columns"
    counts = df.count()
    schema = "\n".join(f"  {str(c)[:60]}: {df.dtypes[c]} ({int(counts[c])} non-null)"
                       for c in df.columns[:200])
    if cols > 200:
        schema += f"\n  … {cols - 200} more columns"
    head = f"{summary}\nColumns (dtype, non-null):\n{schema}"
    truncated = False
    for n in range(min(MAX_ROWS, rows), -1, -1):  # fewer rows until it fits
        table = df.head(n).to_string(max_colwidth=40, max_cols=30) if n else ""
        body = f"First {n} rows:\n{table}" if n else ""
        text = f"{head}\n{body}" if body else head
        if len(text) <= char_budget:
            return summary, text, truncated or n < min(MAX_ROWS, rows)
        truncated = True
    return summary, _clip(head, char_budget), True


def _describe_series(s: Any, char_budget: int) -> tuple[str, str, bool]:
    summary = f"Series {s.name!r}, {len(s)} values, dtype {s.dtype}"
    table = s.head(MAX_ROWS).to_string(max_rows=MAX_ROWS)
    text, truncated = _fit_lines(summary, f"First values:\n{table}", char_budget)
    return summary, text, truncated


def _describe_object(obj: Any, char_budget: int) -> tuple[str, str, bool]:
    kind = type(obj).__qualname__
    if isinstance(obj, str):
        summary = f"str, {len(obj)} characters"
        text = obj
    else:
        limits = reprlib.Repr()
        limits.maxstring = limits.maxother = max(40, char_budget)
        limits.maxlist = limits.maxtuple = limits.maxset = limits.maxdict = limits.maxdeque = 50
        limits.maxlevel = 4
        try:
            text = limits.repr(obj) if isinstance(obj, (list, tuple, set, frozenset, dict)) else repr(obj)
        except Exception as exc:  # a broken __repr__ must not break the chat
            text = f"<repr() failed: {type(exc).__name__}: {exc}>"
        try:
            size = f", {len(obj)} items" if hasattr(obj, "__len__") and not isinstance(obj, type) else ""
        except Exception:  # __len__ that raises or returns nonsense
            size = ""
        summary = f"{kind}{size}"
        shape = getattr(obj, "shape", None)
        if isinstance(shape, tuple) and type(obj).__module__.split(".")[0] == "numpy":
            summary = f"{kind}, shape {shape}, dtype {getattr(obj, 'dtype', '?')}"
    if len(text) <= char_budget:
        return summary, text, False
    return summary, _clip(text, char_budget), True


def attach(text: str, namespace: Mapping[str, Any], budget_tokens: int) -> tuple[list[Attachment], list[str]]:
    """Attachments for the ``@name`` mentions of ``text`` found in ``namespace``, and the names not found."""
    names = mentions(text)
    found = [n for n in names if n in namespace]
    missing = [n for n in names if n not in namespace]
    if not found:
        return [], missing
    per_item = max(16, budget_tokens // len(found))
    attachments = []
    for name in found:
        summary, body, truncated = describe(namespace[name], per_item * CHARS_PER_TOKEN)
        attachments.append(Attachment(name, summary, body, tokens=max(1, len(body) // CHARS_PER_TOKEN),
                                      truncated=truncated))
    return attachments, missing


def recount(attachments: list[Attachment], budget_tokens: int, count: Callable[[str], TokenCount]) -> None:
    """Count each attachment with the model (:meth:`ModelManager.count_text`: its tokenizer, or an estimate
    that says so) and shorten any over its share of the budget."""
    if not attachments:
        return
    per_item = max(16, budget_tokens // len(attachments))
    for item in attachments:
        counted = count(item.text)
        while counted.tokens > per_item and len(item.text) > 80:
            item.text = _clip(item.text, int(len(item.text) * per_item / counted.tokens * 0.9))
            item.truncated = True
            counted = count(item.text)
        item.tokens, item.exact = counted.tokens, counted.exact


def compose(text: str, attachments: list[Attachment]) -> str:
    """The message the model sees: the user's text, then each attached variable in a fenced block."""
    if not attachments:
        return text
    parts = [text, "", "Attached variables from the Python session:"]
    for item in attachments:
        fence = "```"
        while fence in item.text:
            fence += "`"
        parts += ["", f"`{item.name}` ({item.summary}):", fence, item.text, fence]
    return "\n".join(parts)
