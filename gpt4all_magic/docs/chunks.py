"""A document cut into overlapping chunks, each citing where it came from (lines, cells, pages, section).

semantic-text-splitter does the cutting: it keeps Markdown sections, paragraphs and sentences whole where
they fit and returns character offsets, from which the lines (and so the cells, pages and headings) follow.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any

from .readers import Document, require

__all__ = ["CAPACITY", "OVERLAP", "Chunk", "chunk_document"]

CAPACITY = (400, 900)  # characters; GPT4All's LocalDocs uses 512-character snippets
OVERLAP = 120
_TINY = 80  # a chunk this short (a lone heading) is joined to the next one


@dataclass
class Chunk:
    text: str
    location: str  # "lines 12–30", "cell 4", "pages 2–3", "§ Budget"
    line: int | None  # the first line in the file (1-based) where that is meaningful (md, txt, py)
    page: int | None  # the first page (pdf)
    heading: str | None = None


def _splitter(markdown: bool) -> Any:
    module = require("semantic_text_splitter")
    kind = module.MarkdownSplitter if markdown else module.TextSplitter
    return kind(CAPACITY, overlap=OVERLAP)


def _segments(doc: Document) -> list[tuple[int, int]]:
    """Character ranges never crossed by a chunk: each page of a PDF (so a citation names one page)."""
    if doc.unit != "page" or not doc.units:
        return [(0, len(doc.text))]
    segments, start, offset = [], 0, 0
    lines = doc.text.split("\n")
    for i, line in enumerate(lines):
        end = offset + len(line)
        if i + 1 == len(lines) or doc.units[i + 1] != doc.units[i]:
            segments.append((start, end))
            start = end + 1
        offset = end + 1
    return segments


def _spans(doc: Document) -> list[tuple[int, int]]:
    markdown = doc.unit in ("section", "cell") or doc.path.suffix.lower() in (".md", ".markdown")
    splitter = _splitter(markdown)
    found = [(base + off, base + off + len(text)) for base, end in _segments(doc)
             for off, text in splitter.chunk_indices(doc.text[base:end]) if text.strip()]
    merged: list[tuple[int, int]] = []
    carry = None
    for start, end in found:
        start = carry if carry is not None else start
        carry = None
        if end - start < _TINY and (start, end) != found[-1]:
            carry = start  # a lone heading goes with what follows it
            continue
        merged.append((start, end))
    return merged


def _range(values: list[int], word: str) -> str:
    low, high = min(values), max(values)
    return f"{word} {low}" if low == high else f"{word}s {low}–{high}"


def chunk_document(doc: Document) -> list[Chunk]:
    """Overlapping chunks of ``doc``, in order."""
    starts = [0] + [m.end() for m in re.finditer("\n", doc.text)]
    chunks = []
    for start, end in _spans(doc):
        first = bisect.bisect_right(starts, start) - 1
        last = bisect.bisect_right(starts, max(start, end - 1)) - 1
        text = doc.text[start:end].strip("\n")
        if doc.unit == "line":
            chunks.append(Chunk(text, _range([first + 1, last + 1], "line"), first + 1, None))
            continue
        units = [u for u in (doc.units or [])[first:last + 1] if u is not None]
        if doc.unit == "section":
            distinct = list(dict.fromkeys(units))
            heading = " – ".join(dict.fromkeys([distinct[0], distinct[-1]])) if distinct else None
            chunks.append(Chunk(text, f"§ {heading}" if heading else "§ (top)", None, None, heading))
        elif doc.unit == "page":
            chunks.append(Chunk(text, _range(units or [1], "page"), None, min(units or [1])))
        else:
            chunks.append(Chunk(text, _range(units or [1], "cell"), None, None))
    return chunks
