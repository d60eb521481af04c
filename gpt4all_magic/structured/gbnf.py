"""JSON Schema to a llama.cpp grammar (GBNF), with what a grammar can enforce enforced.

The converter is llama-cpp-python's ``llama_cpp.llama_grammar.SchemaConverter`` (the one behind its
``response_format`` schema mode), extended here. Why that one: it already enforces required keys,
enums and consts, string ``minLength``/``maxLength``, array ``minItems``/``maxItems``, ``anyOf`` and
local ``$ref``s, and it keeps whitespace to one optional space, which stops a small model from running
away in whitespace. What it lets through (measured on the bundled model: ``"count": 2450`` for
``count: int = Field(le=1000)``) is number bounds: its integer rule has a TODO for them. llama.cpp's own
current converter does integer ranges but is a script of llama.cpp's examples, not something a package
can import. So this module adds:

- integer ``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum`` as an exact digit grammar
  (:func:`int_range`);
- for numbers with whole-valued bounds >= 0 (``Field(ge=0, le=5)``), an integer part in range and a
  fraction (exact); other number bounds are checked after generation (and retried once);
- regex ``pattern`` escapes the converter copies into GBNF literals that llama.cpp cannot parse
  (``\\d``, ``\\w``, ``\\s``, ``\\.``): rewritten as character classes first; unanchored patterns
  are searched (``.*`` around them), as JSON Schema means.

What no grammar here can express is refused before any work by :func:`check_schema`, in one line
naming the feature: lookarounds and backreferences in patterns, ``$ref`` cycles (an unbounded nesting),
remote ``$ref``s, ``not``, ``if``/``then``/``else``, ``patternProperties`` and the like. Keywords
that only narrow values (``multipleOf``, ``uniqueItems``, ``format``, float bounds) are left to
validation.
"""

from __future__ import annotations

import copy
import json
import math
import re
from typing import Any

from ..errors import SchemaError

__all__ = ["check_schema", "int_range", "schema_to_gbnf"]

MAX_DIGITS = 16  # as the converter's integer rule: at most 16 digits
_UNSUPPORTED = {
    "not": "'not'", "if": "'if'/'then'/'else'", "then": "'if'/'then'/'else'", "else": "'if'/'then'/'else'",
    "patternProperties": "'patternProperties'", "dependentSchemas": "'dependentSchemas'",
    "dependentRequired": "'dependentRequired'", "dependencies": "'dependencies'", "propertyNames": "'propertyNames'",
    "contains": "'contains'", "unevaluatedProperties": "'unevaluatedProperties'",
    "unevaluatedItems": "'unevaluatedItems'", "$dynamicRef": "'$dynamicRef'", "$recursiveRef": "'$recursiveRef'",
}


# -- integer and number ranges -------------------------------------------------------------------------

def int_range(low: int | None, high: int | None) -> str:
    """A GBNF expression for the decimal integers in ``[low, high]`` (None: unbounded on that side), written
    without leading zeros, ``-0`` or a ``+``, at most :data:`MAX_DIGITS` digits."""
    if low is not None and high is not None and low > high:
        raise SchemaError(f"An integer range is empty (minimum {low} > maximum {high}); fix the bounds.")
    alts = []
    if low is None or low < 0:
        neg_low = 1 if high is None or high >= 0 else -high
        alts.append('"-" (' + _positive(neg_low, None if low is None else -low) + ")")
    if high is None or high >= 0:
        start = 0 if low is None or low < 0 else low
        if start == 0:
            alts.append('"0"')
            start = 1
        if high is None or high >= start:
            alts.append(_positive(start, high))
    return " | ".join(alts)


def _positive(low: int, high: int | None) -> str:
    """Integers in ``[low, high]``, ``low >= 1``."""
    alts = []
    top = len(str(high)) if high is not None else MAX_DIGITS
    for digits in range(len(str(low)), top + 1):
        a, b = max(low, 10 ** (digits - 1)), 10 ** digits - 1 if high is None else min(high, 10 ** digits - 1)
        if high is None and digits > len(str(low)):  # every longer number: one rule for all lengths
            alts.append(f"[1-9] [0-9]{{{digits - 1},{MAX_DIGITS - 1}}}")
            break
        if a <= b:
            alts.append(_same_length(str(a), str(b)))
    return " | ".join(alts)


def _same_length(a: str, b: str) -> str:
    """Digit strings from ``a`` to ``b`` (same length, ``a <= b``)."""
    if a == b:
        return f'"{a}"'
    k = 0
    while a[k] == b[k]:
        k += 1
    if k:
        return f'"{a[:k]}" (' + _same_length(a[k:], b[k:]) + ")"
    rest = len(a) - 1
    if rest == 0:
        return f"[{a}-{b}]"
    alts = []
    first, last = int(a[0]), int(b[0])
    if a[1:] != "0" * rest:
        alts.append(f'"{a[0]}" (' + _same_length(a[1:], "9" * rest) + ")")
        first += 1
    tail = b[1:] != "9" * rest
    if tail:
        last -= 1
    if first <= last:
        alts.append(f"[{first}-{last}] [0-9]{{{rest}}}")
    if tail:
        alts.append(f'"{b[0]}" (' + _same_length("0" * rest, b[1:]) + ")")
    return " | ".join(alts)


def _bounds(schema: dict[str, Any], integer: bool) -> tuple[float | None, float | None, bool]:
    """(low, high, exact): the inclusive bounds, and whether they are whole numbers a grammar can hold."""
    low, high = schema.get("minimum"), schema.get("maximum")
    exclusive_low, exclusive_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(exclusive_low, bool):  # draft 4: a flag on minimum
        exclusive_low, low = (low if exclusive_low else None), (None if exclusive_low else low)
    if isinstance(exclusive_high, bool):
        exclusive_high, high = (high if exclusive_high else None), (None if exclusive_high else high)
    if integer:
        lows = [math.ceil(low) if low is not None else None,
                math.floor(exclusive_low) + 1 if exclusive_low is not None else None]
        highs = [math.floor(high) if high is not None else None,
                 math.ceil(exclusive_high) - 1 if exclusive_high is not None else None]
        lo = max((v for v in lows if v is not None), default=None)
        hi = min((v for v in highs if v is not None), default=None)
        return lo, hi, True
    exact = exclusive_low is None and exclusive_high is None and all(
        v is None or float(v).is_integer() for v in (low, high))
    return low, high, exact


def _number_rule(schema: dict[str, Any]) -> str | None:
    """A grammar for a bounded number when its bounds are whole and >= 0; None: the plain number rule."""
    low, high, exact = _bounds(schema, integer=False)
    if not exact or low is None or low < 0:
        return None
    low = int(low)
    fraction = '("." [0-9]{1,15})?'
    if high is None:
        return f"({int_range(low, None)}) {fraction}"
    high = int(high)
    alts = [f"({int_range(low, high - 1)}) {fraction}"] if high - 1 >= low else []
    alts.append(f'"{high}" ("." [0]{{1,15}})?')
    return " | ".join(alts)


# -- patterns --------------------------------------------------------------------------------------------

_CLASS_ESCAPES = {"d": "0-9", "w": "a-zA-Z0-9_", "s": " "}  # \\s: a space (JSON escapes the others)
_REFUSED_ESCAPES = {"b": "a word boundary (\\b)", "B": "a word boundary (\\B)", "D": "a negated class (\\D)",
                    "W": "a negated class (\\W)", "S": "a negated class (\\S)", "p": "a Unicode property (\\p)",
                    "P": "a Unicode property (\\P)", "A": "an anchor (\\A)", "Z": "an anchor (\\Z)",
                    "z": "an anchor (\\z)"}


def _pattern_for_grammar(pattern: str) -> str:
    """``pattern`` rewritten into the subset the converter turns into valid GBNF (see the module doc)."""
    if re.search(r"\(\?[=!<]", pattern):
        raise SchemaError(f"The pattern {pattern!r} uses a lookaround ((?=, (?!, (?<), which a grammar cannot "
                          "enforce; rewrite the pattern without it.")
    if re.search(r"\\[1-9]", pattern):
        raise SchemaError(f"The pattern {pattern!r} uses a backreference, which a grammar cannot enforce; rewrite "
                          "the pattern without it.")
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            e = pattern[i + 1]
            if e in _REFUSED_ESCAPES:
                raise SchemaError(f"The pattern {pattern!r} uses {_REFUSED_ESCAPES[e]}, which the grammar cannot "
                                  "enforce; rewrite the pattern without it.")
            if e in _CLASS_ESCAPES:
                out.append(_CLASS_ESCAPES[e] if in_class else f"[{_CLASS_ESCAPES[e]}]")
            elif e in "tnrfv":
                raise SchemaError(f"The pattern {pattern!r} matches a control character (\\{e}), which JSON must "
                                  "escape and the grammar cannot; drop it from the pattern.")
            elif in_class:
                out.append("\\" + e if e in "]\\-^" else e)
            else:
                out.append({"]": "[\\]]", "\\": "[\\\\]", "^": "[\\^]", "-": "[\\-]"}.get(e, f"[{e}]"))
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        elif c in "\"\\":
            raise SchemaError(f"The pattern {pattern!r} matches a quote or backslash, which JSON must escape and the "
                              "grammar cannot; drop them from the pattern.")
        out.append(c)
        i += 1
    body = "".join(out).replace("(?:", "(")
    start = body.startswith("^")
    end = body.endswith("$") and not body.endswith("\\$")
    body = body[1 if start else 0:len(body) - 1 if end else len(body)]
    return "^" + ("" if start else ".*") + "(" + body + ")" + ("" if end else ".*") + "$"


# -- the converter ---------------------------------------------------------------------------------------

def _converter_class() -> Any:
    try:
        from llama_cpp.llama_grammar import RESERVED_NAMES, SchemaConverter
    except ImportError as exc:
        raise SchemaError(f"llama-cpp-python is not installed ({exc}); install it with "
                          "`pip install llama-cpp-python`.") from None

    class Converter(SchemaConverter):
        """llama-cpp-python's converter plus integer/number ranges and safe patterns."""

        def _format_literal(self, literal: str) -> str:
            # The base class escapes quotes and newlines but not backslashes, so the literal of an enum
            # value with a backslash (its JSON text holds "\\") would match a single backslash.
            escaped = (literal.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r")
                       .replace("\n", "\\n"))
            return f'"{escaped}"'

        def visit(self, schema: Any, name: str) -> str:
            rule_name = name + "-" if name in RESERVED_NAMES else name or "root"
            if isinstance(schema, dict) and not ({"$ref", "enum", "const", "anyOf", "oneOf"} & schema.keys()):
                kind = schema.get("type")
                bounded = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & schema.keys()
                if kind == "integer" and bounded:
                    low, high, _ = _bounds(schema, integer=True)
                    return self._add_rule(rule_name, f"({int_range(low, high)}) space")
                if kind == "number" and bounded:
                    rule = _number_rule(schema)
                    if rule is not None:
                        return self._add_rule(rule_name, f"({rule}) space")
                if kind in (None, "string") and "pattern" in schema:
                    schema = {**schema, "pattern": _pattern_for_grammar(schema["pattern"])}
            return super().visit(schema, name)

    return Converter


def schema_to_gbnf(schema: dict[str, Any]) -> str:
    """The GBNF grammar (root rule ``root``) of JSON values that follow ``schema``; raises SchemaError for
    what it cannot express (:func:`check_schema` first)."""
    check_schema(schema)
    return _convert(schema)


def _convert(schema: dict[str, Any]) -> str:
    converter = _converter_class()(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    try:
        resolved = converter.resolve_refs(copy.deepcopy(schema), "schema")
        converter.visit(resolved, "")
    except SchemaError:
        raise
    except (AssertionError, ValueError, KeyError, TypeError, RecursionError) as exc:
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise SchemaError(f"The schema uses something the grammar converter cannot express ({detail}); "
                          "simplify that part of the schema.") from None
    # The converter's "." may write a quote or backslash into a JSON string, which would end or break it,
    # and its string characters include control characters (a raw newline), which JSON forbids there.
    grammar = re.sub(r"(?m)^dot ::= .*$", lambda m: 'dot ::= [^"\\\\\\x00-\\x1F\\x7F]', converter.format_grammar())
    return grammar.replace('char ::= [^"\\\\] |', 'char ::= [^"\\\\\\x00-\\x1F\\x7F] |', 1)


def check_schema(schema: Any) -> None:
    """Refuse, in one line naming the feature, a schema the grammar cannot enforce (see the module doc)."""
    if not isinstance(schema, dict):
        raise SchemaError(f"A JSON Schema must be a dict, got {type(schema).__name__}; e.g. "
                          "{'type': 'object', 'properties': {'name': {'type': 'string'}}}.")
    _walk(schema, schema, "#", [])


def _walk(node: Any, root: dict[str, Any], where: str, refs: list[str]) -> None:
    if isinstance(node, list):
        for k, item in enumerate(node):
            _walk(item, root, f"{where}/{k}", refs)
        return
    if not isinstance(node, dict):
        return
    for key in node:
        if key in _UNSUPPORTED:
            raise SchemaError(f"The schema uses {_UNSUPPORTED[key]} at {where}, which a grammar cannot enforce; "
                              "remove it (and check the rule on the result yourself).")
    if "enum" in node and (not isinstance(node["enum"], list) or not node["enum"]):
        raise SchemaError(f"The enum at {where} is empty; list at least one value.")
    if "allOf" in node and not all(isinstance(s, dict) and ("properties" in s or "$ref" in s)
                                   for s in node["allOf"]):
        raise SchemaError(f"The schema uses 'allOf' at {where} for something other than merging objects, which "
                          "the grammar cannot enforce; write the combined schema out.")
    if isinstance(node.get("pattern"), str):
        _pattern_for_grammar(node["pattern"])
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#/") and ref != "#":
            raise SchemaError(f"The $ref {ref!r} at {where} is not local to the schema; put the definition under "
                              "$defs and refer to it as '#/$defs/NAME'.")
        if ref in refs or ref == "#":
            raise SchemaError(f"The schema refers to itself ({ref} at {where}, a $ref cycle): its answers could nest "
                              "without end, which a grammar cannot bound; limit the nesting depth in the schema.")
        _walk(_target(root, ref, where), root, ref, refs + [ref])
    for key, value in node.items():
        if key in ("$defs", "definitions", "enum", "const", "default", "examples", "$ref"):
            continue  # definitions are checked where they are used; values are data, not schemas
        if key == "properties" and isinstance(value, dict):
            for name, sub in value.items():
                _walk(sub, root, f"{where}/properties/{name}", refs)
        elif isinstance(value, (dict, list)):
            _walk(value, root, f"{where}/{key}", refs)


def _target(root: dict[str, Any], ref: str, where: str) -> Any:
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise SchemaError(f"The $ref {ref!r} at {where} points to nothing in the schema; fix the reference.")
    return node


def describe(schema: dict[str, Any]) -> str:
    """A short, stable text of a schema (for job keys and messages)."""
    return json.dumps(schema, sort_keys=True, ensure_ascii=False)
