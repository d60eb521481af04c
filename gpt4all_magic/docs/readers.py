"""Files to text for indexing, each line of the text knowing where it came from: its own line (md, txt, py),
its notebook cell (ipynb, sources only, never outputs), its page (pdf) or its section heading (html, docx).

The converters are the ones markitdown wraps, used directly: pypdf page by page (markitdown's PDF path,
pdfminer, returns one text without page numbers), mammoth for docx and markdownify for HTML. markitdown
itself was measured at 212 MB installed (onnxruntime and magika, to guess file types we know from the
extension) and 1.0-1.4 s to import, for the same Markdown.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import DocsError, DocumentError

__all__ = ["SUFFIXES", "Document", "read_bytes_hash", "read_document", "require"]

EXTRA = 'pip install "gpt4all-magic[docs]"'


@dataclass
class Document:
    """A file's text; ``units[i]`` says where line ``i`` came from (None: the line is its own unit)."""

    path: Path
    unit: str  # "line", "cell", "page" or "section"
    text: str
    units: list[Any] | None = None


def require(module: str) -> Any:
    """Import an optional dependency of the ``[docs]`` extra, or say how to install it in one line."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DocsError(f"Local documents need {module.split('.')[0]}; install with `{EXTRA}`.") from None


def _decode(path: Path, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise DocumentError(f"{path.name} looks binary, not text; remove it from the folder or convert it to "
                            "text first.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        best = require("charset_normalizer").from_bytes(data).best()
        if best is None:
            raise DocumentError(f"Cannot tell the text encoding of {path.name}; save it as UTF-8.") from None
        return str(best)


def _plain(path: Path, data: bytes) -> Document:
    return Document(path, "line", _decode(path, data).replace("\r\n", "\n").replace("\r", "\n"))


def _notebook(path: Path, data: bytes) -> Document:
    try:
        cells = json.loads(_decode(path, data))["cells"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DocumentError(f"{path.name} is not a readable notebook ({type(exc).__name__}); open and re-save it "
                            "in Jupyter, or remove it from the folder.") from None
    lines: list[str] = []
    units: list[int] = []
    for number, cell in enumerate(cells, start=1):
        source = cell.get("source", "") if isinstance(cell, dict) else ""
        source = "".join(source) if isinstance(source, list) else str(source)
        if not source.strip() or cell.get("cell_type") not in ("markdown", "code", "raw"):
            continue  # outputs are never read: only what the author wrote
        body = source.rstrip("\n").split("\n") + [""]
        lines += body
        units += [number] * len(body)
    return Document(path, "cell", "\n".join(lines), units)


def _pdf(path: Path, data: bytes) -> Document:
    pypdf = require("pypdf")
    import io

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(f"{path.name} is encrypted; save an unprotected copy and add that.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except Exception as exc:  # pypdf raises many kinds on damaged files
        raise DocumentError(f"{path.name} is not a readable PDF ({type(exc).__name__}); re-export it or remove "
                            "it from the folder.") from None
    if not any(p.strip() for p in pages):
        raise DocumentError(f"{path.name} has no text layer (a scan?); run OCR on it first, e.g. `ocrmypdf "
                            f"{path.name} out.pdf`, and add the result.")
    lines: list[str] = []
    units: list[int] = []
    for number, page in enumerate(pages, start=1):
        body = page.replace("\r\n", "\n").rstrip("\n").split("\n") + [""]
        lines += body
        units += [number] * len(body)
    return Document(path, "page", "\n".join(lines), units)


def _sections(path: Path, markdown: str) -> Document:
    """Markdown made from HTML or docx: each line is cited by the heading it stands under."""
    markdown = re.sub(r"\n{3,}", "\n\n", markdown).strip("\n")
    if not markdown.strip():
        raise DocumentError(f"{path.name} has no text to index; remove it from the folder.")
    units, heading = [], None
    for line in markdown.split("\n"):
        found = re.match(r"#{1,6}\s+(.*\S)", line)
        heading = found.group(1).strip("# ") if found else heading
        units.append(heading)
    return Document(path, "section", markdown, units)


def _html_markdown(html: str) -> str:
    bs4 = require("bs4")
    markdownify = require("markdownify")
    soup = bs4.BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()  # never index (or later show) what a page would run
    return markdownify.MarkdownConverter(heading_style="ATX").convert_soup(soup.body or soup)


def _html(path: Path, data: bytes) -> Document:
    return _sections(path, _html_markdown(_decode(path, data)))


def _docx(path: Path, data: bytes) -> Document:
    mammoth = require("mammoth")
    import io

    try:
        html = mammoth.convert_to_html(io.BytesIO(data)).value
    except Exception as exc:  # a damaged zip, a .docx that is something else
        raise DocumentError(f"{path.name} is not a readable .docx ({type(exc).__name__}); re-save it from Word or "
                            "LibreOffice, or remove it from the folder.") from None
    return _sections(path, _html_markdown(html))


READERS: dict[str, Callable[[Path, bytes], Document]] = {
    ".md": _plain, ".markdown": _plain, ".txt": _plain, ".py": _plain, ".rst": _plain,
    ".ipynb": _notebook, ".pdf": _pdf, ".html": _html, ".htm": _html, ".docx": _docx,
}
SUFFIXES = tuple(READERS)


def read_document(path: Path) -> Document:
    """The text of ``path`` with where each line came from; a one-line DocumentError if it cannot be read."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DocumentError(f"{path.name}: {path.suffix or 'no extension'} files are not supported; convert it to "
                            f"one of {', '.join(sorted({s for s in SUFFIXES if s != '.htm'}))}.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"Cannot read {path} ({exc.strerror or exc}); check that it exists and that you may "
                            "read it.") from None
    return reader(path, data)


def read_bytes_hash(path: Path) -> str:
    """The sha256 of the file's bytes: what decides whether it is indexed again."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
