"""What an embedding model needs before the manager loads it: which model by default, how long a text it
takes, whether it can pool at all, whether it fits in RAM, and its task prefixes. Nothing is loaded here."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..engines.base import POOLINGS, ModelRef, no_pooling
from ..errors import InvalidOptionError
from . import catalog, memory

__all__ = ["DEFAULT_EMBEDDING_MODEL", "EMBED_N_CTX", "check_texts", "default_embedding_model", "embedding_context",
           "task_prefix"]

DEFAULT_EMBEDDING_MODEL = "nomic-embed-text-v1.5"  # Embed4All's default
EMBED_N_CTX = 2048  # the most tokens of one text (Embed4All's context); models trained on less keep theirs
KINDS = ("document", "query")
# nomic-embed-text is trained with a task prefix on every text (Embed4All adds it the same way); a nomic-bert
# GGUF that is not the catalog's file (another quantization loaded by path) gets them from its architecture.
_NOMIC_BERT = {"document": "search_document: ", "query": "search_query: "}


def default_embedding_model(models_dir: Path, pooling: str | None) -> tuple[str, str | None]:
    """nomic-embed-text-v1.5 when it is on disk, else the bundled chat model with mean pooling (offline and in
    tests; a real embedding model gives better neighbours)."""
    entry = catalog.load_catalog(models_dir).get(DEFAULT_EMBEDDING_MODEL)
    if entry is not None and catalog.entry_path(entry, models_dir) is not None:
        return entry.name, pooling
    return catalog.BUNDLED_NAME, pooling or "mean"


def embedding_context(ref: ModelRef, pooling: str | None, force: bool) -> int:
    """The embedding context for ``ref``; refuses a model that declares no pooling (when none is asked) and
    one too big for free RAM (unless ``force``)."""
    if pooling is not None and pooling not in POOLINGS:
        raise InvalidOptionError(f"pooling must be one of {', '.join(POOLINGS)} (or None: the model's own), "
                                 f"got {pooling!r}.")
    if ref.path is None:  # a server's model: the server knows
        return EMBED_N_CTX
    from .gguf import read_gguf

    info = read_gguf(ref.path)
    if pooling is None and not info.metadata.get(f"{info.architecture}.pooling_type"):
        raise no_pooling(ref.name)  # key absent or 0 (none): a chat model
    n_ctx = min(EMBED_N_CTX, info.context_length or EMBED_N_CTX)
    memory.check_memory(ref, info, n_ctx, force, anyway="embed anyway with force=True")
    return n_ctx


def task_prefix(ref: ModelRef, kind: str, models_dir: Path | None = None) -> str:
    """The text put before each input for this kind of use: the catalog entry's ``embeddingPrefixes``
    (nomic-embed-text's ``search_document:`` / ``search_query:``, bge's query instruction), else a
    nomic-bert GGUF's own, else none."""
    entries = catalog.load_catalog(models_dir)
    for name in (ref.name, ref.path.name if ref.path is not None else None):
        entry = catalog.find_entry(name, entries) if name else None
        if entry is not None and entry.embedding:
            return entry.prefixes.get(kind, "")
    if ref.path is not None:
        from .gguf import read_gguf

        if read_gguf(ref.path).architecture == "nomic-bert":
            return _NOMIC_BERT[kind]
    return ""


def check_texts(texts: Any, kind: str, long: str) -> None:
    """Refuse what cannot be embedded, naming the fix: not a list of strings, empty texts, bad options."""
    if kind not in KINDS:
        raise InvalidOptionError(f"kind must be 'document' (texts to search or map) or 'query' (a question), "
                                 f"got {kind!r}.")
    if long not in ("truncate", "chunk"):
        raise InvalidOptionError(f"long must be 'truncate' (embed the first n_ctx tokens) or 'chunk' (average "
                                 f"the pieces), got {long!r}.")
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise InvalidOptionError("embed takes a list of texts (or a DataFrame and a column); wrap one text in "
                                 "a list: embed([text]).")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise InvalidOptionError(f"Text {bad[0]} is a {type(texts[bad[0]]).__name__}, not text ({len(bad)} such); "
                                 "convert them first, e.g. [str(t) for t in texts].")
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        shown = ", ".join(map(str, empty[:5])) + (" …" if len(empty) > 5 else "")
        raise InvalidOptionError(f"{len(empty)} text(s) are empty (position {shown}): an empty text has no "
                                 "meaning to embed; drop them or fill them first.")
