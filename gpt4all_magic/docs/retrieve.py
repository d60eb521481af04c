"""Hybrid retrieval, as GPT4All's LocalDocs does it: the question's vector finds chunks by meaning, FTS5's
BM25 finds them by their words, and reciprocal rank fusion merges the two rankings (a chunk's score is the
sum of 1 / (60 + rank) over the rankings it is in), so neither scale has to be calibrated against the other.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from ..errors import DocsError
from ..manager import ModelManager, get_manager
from .index import display_path, open_collection
from .store import Collection

__all__ = ["RRF_K", "Hit", "query_words", "hits", "rank", "search"]

RRF_K = 60  # the constant of Cormack et al. (2009), also LocalDocs'
DEPTH = 50  # candidates taken from each ranking
# Words that carry no topic; BM25 would weigh them low anyway, but they make every chunk a candidate.
_STOP = frozenset("""a an and are as at be by can could did do does for from had has have how i if in into is it
its me my of on or our should so than that the their them then there these they this to was we were what when
where which who why will with would you your about does tell give show please""".split())


@dataclass
class Hit:
    """One retrieved chunk and where it came from."""

    collection: str
    path: str  # absolute
    location: str  # "lines 12–30", "page 3", "cells 2–4", "§ Budget"
    line: int | None
    page: int | None
    text: str
    score: float  # reciprocal rank fusion
    cosine: float | None  # vector similarity, if in the vector ranking
    bm25: float | None  # BM25 score, if the words matched

    @property
    def file(self) -> str:
        return display_path(self.path)

    def label(self) -> str:
        return f"{self.file}, {self.location}"

    def source(self) -> dict[str, Any]:
        """What a result keeps to cite this chunk (and what a link needs to open it)."""
        data = asdict(self)
        del data["text"]
        data["file"] = self.file
        return data


def query_words(text: str) -> list[str]:
    """The question's words for the full-text search (each is quoted there: FTS5 syntax never comes from users)."""
    words = [w for w in re.findall(r"\w+", text.lower()) if w not in _STOP and len(w) > 1]
    return list(dict.fromkeys(words))


def _fuse(rankings: Sequence[list[tuple[int, float]]]) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (chunk_id, _) in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    return fused


def hits(names: str | Sequence[str], query: str, k: int = 3, *, manager: ModelManager | None = None) -> list[Hit]:
    """The ``k`` best chunks for ``query`` across the collections ``names``, best first."""
    if not isinstance(query, str) or not query.strip():
        raise DocsError("The search query is empty; ask a question, e.g. `%gpt4all docs search notes how to install`.")
    if not isinstance(k, int) or k < 1:
        raise DocsError(f"k must be a positive number of chunks, got {k!r}.")
    manager = manager or get_manager()
    found: list[Hit] = []
    for name in [names] if isinstance(names, str) else list(names):
        collection = open_collection(name)
        meta = collection.meta()
        if "model" not in meta or not collection.count():
            continue
        embedding = manager.embed([query], model=meta["model"], pooling=meta.get("pooling") or None, kind="query")
        collection.check_model(embedding.model, embedding.dim)
        found += rank(collection, embedding.vectors[0], query, k)
    return sorted(found, key=lambda h: h.score, reverse=True)[:k]


def rank(collection: Collection, vector: Any, query: str, k: int) -> list[Hit]:
    """The ``k`` best chunks of one collection for a question and its (already embedded) vector."""
    by_vector = collection.vector_search(vector, DEPTH)
    by_text = collection.text_search(query_words(query), DEPTH)
    fused = _fuse([by_vector, by_text])
    best = sorted(fused, key=fused.get, reverse=True)[:k]
    rows = collection.chunk_rows(best)
    cosines, bm25 = dict(by_vector), dict(by_text)
    return [Hit(collection.name, rows[i][0], rows[i][2], rows[i][3], rows[i][4], rows[i][1], fused[i],
                cosines.get(i), bm25.get(i)) for i in best if i in rows]


def search(name: str, query: str, k: int = 5, *, manager: ModelManager | None = None) -> Any:
    """The best chunks for ``query`` as a DataFrame: rank, score, file, location, text, cosine, bm25."""
    import pandas as pd

    found = hits(name, query, k, manager=manager)
    return pd.DataFrame([{"rank": i, "score": round(h.score, 5), "file": h.file, "location": h.location,
                          "text": h.text, "cosine": h.cosine, "bm25": h.bm25} for i, h in enumerate(found, start=1)],
                        columns=["rank", "score", "file", "location", "text", "cosine", "bm25"])
