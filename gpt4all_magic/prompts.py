"""Brace-safe ``{name}`` interpolation of a prompt from a namespace (the notebook's, or a row's columns).

The rules, in prose (text outside code):

- ``{name}`` / ``{name.attr}`` whose first part is defined becomes the value (as ``str``); nothing is
  evaluated, attributes are read with ``getattr`` and private ones (``_x``) are never read.
- ``{name}`` that is not defined is left as is and reported (``missing``).
- ``{{name}}`` is the escape: it becomes the literal ``{name}``.
- Every other brace is left untouched, ``{{`` and ``}}`` included, so JSON, CSS and C go through as written.

Inside code (a fenced block opened by ````` or ``~~~``, to its closing fence or the end of the text,
and an inline span ```...```), nothing is substituted or unescaped: pasted code keeps its f-strings
and set literals. The one exception is a line inside a fenced block that holds only ``{name}`` (or its
escape ``{{name}}``) and whitespace: it is filled as in prose, so a template can put a variable's text
into a fence. Defined names left as is inside code are reported (``in_code``) so that the caller can
say why they were not filled.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Mapping, NamedTuple

__all__ = ["Filled", "escape", "fields", "fill", "interpolate"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
# group 1 is a field's dotted name; an escaped field ({{name}}) matches with group 1 empty.
_FIELD = re.compile(rf"\{{\{{(?:{_NAME})\}}\}}|\{{({_NAME})\}}")
_LONE = re.compile(rf"[ \t]*(?:\{{\{{{_NAME}\}}\}}|\{{{_NAME}\}})[ \t]*\r?\n?")
_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})")
_TICKS = re.compile(r"`+")
_BLANK_LINE = re.compile(r"\n[ \t]*\r?\n")
_MISSING = object()


class Filled(NamedTuple):
    """A filled prompt: its text, undefined names left as is, defined names left as is inside code."""

    text: str
    missing: list[str]
    in_code: list[str]

    def notes(self) -> list[str]:
        """One-line notes for the user about fields that were left as is (empty when all is well)."""
        notes = [f"{{{name}}} left as is: no variable named '{name.split('.')[0]}' "
                 f"(write {{{{{name}}}}} for literal braces)." for name in self.missing]
        if self.in_code:
            names = " and ".join(", ".join(f"{{{n}}}" for n in self.in_code).rsplit(", ", 1))
            one = len(self.in_code) == 1
            notes.append(f"{names} inside code left as is; put {'it' if one else 'each'} on a line of its own "
                         f"inside the fence, or outside code, to insert the variable{'' if one else 's'}.")
        return notes


def fill(text: str, namespace: Mapping[str, Any]) -> Filled:
    """Fill ``text``'s fields from ``namespace`` by the rules in this module's docstring."""
    out: list[str] = []
    missing: dict[str, None] = {}
    in_code: dict[str, None] = {}

    def field(match: re.Match[str]) -> str:
        dotted = match.group(1)
        if dotted is None:
            return match.group(0)[1:-1]  # {{name}} -> {name}
        value = _lookup(namespace, dotted)
        if value is _MISSING:
            missing[dotted] = None
            return match.group(0)
        return str(value)

    for kind, piece in _segments(text):
        if kind == "code":
            for match in _FIELD.finditer(piece):
                if match.group(1) and _lookup(namespace, match.group(1)) is not _MISSING:
                    in_code[match.group(1)] = None
            out.append(piece)
        else:
            out.append(_FIELD.sub(field, piece))
    return Filled("".join(out), list(missing), list(in_code))


def interpolate(text: str, namespace: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Return ``(text with fields filled, names that looked like fields but are not defined)``."""
    filled = fill(text, namespace)
    return filled.text, filled.missing


def fields(text: str) -> list[str]:
    """The dotted names of the fields :func:`fill` would fill (not escaped ones, not those inside code)."""
    return list(dict.fromkeys(m.group(1) for kind, piece in _segments(text) if kind != "code"
                              for m in _FIELD.finditer(piece) if m.group(1)))


def escape(text: str) -> str:
    """``text`` written so that filling it as prose gives ``text`` back (``{name}`` becomes ``{{name}}``)."""
    return re.sub(rf"\{{({_NAME})\}}", r"{\g<0>}", text)


def _lookup(namespace: Mapping[str, Any], dotted: str) -> Any:
    head, *attrs = dotted.split(".")
    value = namespace.get(head, _MISSING)
    for attr in attrs:
        if value is _MISSING or attr.startswith("_"):
            return _MISSING
        value = getattr(value, attr, _MISSING)
    return value


@functools.lru_cache(maxsize=32)  # a batch fills the same template once per row
def _segments(text: str) -> tuple[tuple[str, str], ...]:
    """Split ``text`` into ("prose" | "code", piece) runs; a lone placeholder line in a fence is prose."""
    parts: list[tuple[str, str]] = []
    prose: list[str] = []
    fence: str | None = None  # the opening fence's run of backticks or tildes while inside a block
    for line in text.splitlines(keepends=True):
        if fence is None:
            opening = _FENCE.match(line)
            if opening and not (opening.group(1)[0] == "`" and "`" in line[opening.end():]):
                parts.extend(_inline("".join(prose)))
                prose = []
                fence = opening.group(1)
                parts.append(("code", line))
            else:
                prose.append(line)
            continue
        closing = _FENCE.match(line)
        if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence) \
                and not line[closing.end():].strip():
            fence = None
            parts.append(("code", line))
        elif _LONE.fullmatch(line):
            parts.append(("prose", line))
        else:
            parts.append(("code", line))
    parts.extend(_inline("".join(prose)))
    return tuple(p for p in parts if p[1])


def _inline(prose: str) -> list[tuple[str, str]]:
    """Split prose at inline code spans: a run of backticks up to the next run of the same length,
    within a paragraph; a run with no partner is a literal backtick."""
    runs = list(_TICKS.finditer(prose))
    parts: list[tuple[str, str]] = []
    start = k = 0
    while k < len(runs):
        opening = runs[k]
        close = next((j for j in range(k + 1, len(runs)) if len(runs[j].group()) == len(opening.group())), None)
        if close is None or _BLANK_LINE.search(prose, opening.end(), runs[close].start()):
            k += 1
            continue
        parts += [("prose", prose[start:opening.start()]), ("code", prose[opening.start():runs[close].end()])]
        start = runs[close].end()
        k = close + 1
    parts.append(("prose", prose[start:]))
    return parts
