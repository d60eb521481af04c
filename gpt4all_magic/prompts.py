"""Brace-safe ``{name}`` interpolation of a cell's prompt from the user's namespace.

Only ``{name}`` and ``{name.attr}`` whose first part is a defined variable are replaced; code, JSON
or CSS braces are left as they are, ``{{`` and ``}}`` become literal braces. Nothing is evaluated:
attributes are read with ``getattr``.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

__all__ = ["interpolate"]

_FIELD = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")
_MISSING = object()


def interpolate(text: str, namespace: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Return ``(text with fields filled, names that looked like fields but are not defined)``."""
    missing: list[str] = []

    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        dotted = match.group(1)
        head, *attrs = dotted.split(".")
        value = namespace.get(head, _MISSING)
        for attr in attrs:
            if value is _MISSING or attr.startswith("_"):
                value = _MISSING
                break
            value = getattr(value, attr, _MISSING)
        if value is _MISSING:
            missing.append(dotted)
            return token
        return str(value)

    return _FIELD.sub(fill, text), missing
