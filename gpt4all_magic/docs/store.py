"""One collection on disk: a single SQLite file (``NAME.sqlite`` under the docs folder) holding the files,
their chunks, a full-text index (FTS5, BM25) and the vectors (float32 blobs that sqlite-vec checks).

SQLite rather than LanceDB: one file per collection that a user can delete, a transaction per indexed file
(an interrupted ``add`` leaves every committed file usable and the next run redoes the rest), FTS5 built in
and updated row by row (no index rebuild after each add), and nothing heavier than two small wheels.
It is opened through apsw, which bundles a current SQLite with FTS5 and extension loading: Python's own
``sqlite3`` is often built without ``enable_load_extension`` (pyenv, python.org builds, this project's CI),
so sqlite-vec cannot be loaded through it.

sqlite-vec checks each vector as it is stored (``vec_length`` = the collection's dimension) and makes the
file searchable in plain SQL (``ORDER BY vec_distance_cosine(embedding, ?)``). The kernel's own search is
exact cosine similarity in numpy over the vectors, read once per change of the collection and kept in memory:
measured at 100k chunks of 768 dimensions on a busy 2-core machine, sqlite-vec's brute-force KNN (a ``vec0``
table) took 5-7x as long as the numpy product and its exact search over this plain table about 6x (548 ms vs
94 ms in one run), and reading the vectors back out of a ``vec0`` table took 36 s against 2.3 s from a plain
table (``python -m gpt4all_magic.bench.docs`` prints the comparison).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import CollectionNotFoundError, DocsError, IndexMismatchError
from .chunks import Chunk
from .readers import require

__all__ = ["DOCS_DIR_ENV", "FORMAT", "Collection", "FileRecord", "collection_path", "docs_dir", "valid_name"]

DOCS_DIR_ENV = "GPT4ALL_MAGIC_DOCS_DIR"
FORMAT = "1"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS roots(path TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS files(id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, sha256 TEXT NOT NULL,
    size INTEGER, mtime REAL, chunks INTEGER NOT NULL, indexed_at REAL);
CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL, ord INTEGER NOT NULL,
    text TEXT NOT NULL, location TEXT NOT NULL, line INTEGER, page INTEGER);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, source, tokenize='porter unicode61');
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_vocab USING fts5vocab(chunks_fts, 'row');
CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_fts USING fts5(text, tokenize='porter unicode61');
CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_terms USING fts5vocab(temp, query_fts, 'instance');
"""
# Above this many chunks, question words found in more than COMMON of them are left out of the full-text
# query: their BM25 weight is small, but scoring every chunk they occur in was most of the search's time.
PRUNE_FROM = 5_000
COMMON = 0.05


def docs_dir() -> Path:
    """``$GPT4ALL_MAGIC_DOCS_DIR``, else ``$XDG_CACHE_HOME/gpt4all-magic/docs`` (``~/.cache/...``)."""
    env = os.environ.get(DOCS_DIR_ENV)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "gpt4all-magic" / "docs"


def valid_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise DocsError(f"A collection name is letters, digits, '.', '_' or '-' (up to 64), got {name!r}; "
                        "e.g. `%gpt4all docs add notes ./notes`.")
    return name


def collection_path(name: str) -> Path:
    return docs_dir() / f"{valid_name(name)}.sqlite"


@dataclass
class FileRecord:
    id: int
    path: str
    sha256: str
    chunks: int


def _connect(path: Path) -> Any:
    apsw = require("apsw")
    sqlite_vec = require("sqlite_vec")
    conn = apsw.Connection(str(path))
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.enable_load_extension(False)
    conn.set_busy_timeout(10_000)
    return conn


class Collection:
    """An open collection. ``create=True`` makes the file if it is missing."""

    def __init__(self, name: str, *, create: bool = False):
        self.name = valid_name(name)
        self.path = collection_path(name)
        if not self.path.exists() and not create:
            raise CollectionNotFoundError(f"No collection named {name!r}; make it with `%gpt4all docs add {name} "
                                          "PATH...` (or g4.docs.add), or see `%gpt4all docs list`.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = _connect(self.path)
        with self.conn:
            self.conn.execute(_SCHEMA)
        self._matrix: tuple[Any, Any, Any] | None = None  # ((data_version, writes), ids, vectors)
        self._writes = 0  # this connection's changes (data_version counts only other connections')

    # -- metadata -------------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM meta"))

    def check_model(self, model: str, dim: int) -> None:
        """Refuse vectors from another model or of another size than the collection was built with."""
        meta = self.meta()
        if "model" not in meta:
            return
        if meta["model"] != model or int(meta["dim"]) != dim:
            raise IndexMismatchError(
                f"Collection {self.name!r} was indexed with {meta['model']} ({meta['dim']} dimensions), not {model} "
                f"({dim}); rebuild it: `%gpt4all docs rm {self.name}` then add the files again (or g4.docs.rm).")

    def set_model(self, model: str, dim: int, pooling: str) -> None:
        """Record the embedding model on first use and make the vector table for its dimension."""
        self.check_model(model, dim)
        if "model" in self.meta():
            return
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('model', ?), ('dim', ?), ('pooling', ?), "
                              "('format', ?), ('created', ?)", (model, str(dim), pooling, FORMAT, str(time.time())))
            # sqlite-vec checks every vector on insert: a float32 blob of the collection's dimension.
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS vectors(chunk_id INTEGER PRIMARY KEY, embedding BLOB NOT "
                              f"NULL CHECK (vec_length(embedding) = {int(dim)}))")

    # -- roots and files ------------------------------------------------------------------------
    def roots(self) -> list[str]:
        return [r for (r,) in self.conn.execute("SELECT path FROM roots ORDER BY path")]

    def add_roots(self, paths: Iterable[str]) -> None:
        with self.conn:
            self.conn.executemany("INSERT OR IGNORE INTO roots VALUES (?)", [(p,) for p in paths])

    def files(self) -> dict[str, FileRecord]:
        rows = self.conn.execute("SELECT id, path, sha256, chunks FROM files")
        return {r[1]: FileRecord(*r) for r in rows}

    def replace_file(self, path: str, sha256: str, size: int, mtime: float, source: str,
                     chunks: Sequence[Chunk], vectors: Any) -> None:
        """Put one file's chunks and vectors in place of its old ones, in one transaction."""
        self._writes += 1
        with self.conn:
            self._delete(path)
            self.conn.execute("INSERT INTO files(path, sha256, size, mtime, chunks, indexed_at) VALUES (?,?,?,?,?,?)",
                              (path, sha256, size, mtime, len(chunks), time.time()))
            file_id = self.conn.last_insert_rowid()
            for i, (chunk, vector) in enumerate(zip(chunks, vectors)):
                self.conn.execute("INSERT INTO chunks(file_id, ord, text, location, line, page) VALUES (?,?,?,?,?,?)",
                                  (file_id, i, chunk.text, chunk.location, chunk.line, chunk.page))
                chunk_id = self.conn.last_insert_rowid()
                self.conn.execute("INSERT INTO chunks_fts(rowid, text, source) VALUES (?,?,?)",
                                  (chunk_id, chunk.text, f"{source} {chunk.heading or ''}"))
                self.conn.execute("INSERT INTO vectors(chunk_id, embedding) VALUES (?,?)",
                                  (chunk_id, vector.astype("float32").tobytes()))

    def remove_files(self, paths: Iterable[str]) -> int:
        """Drop files and their chunks; how many chunks went."""
        gone = 0
        self._writes += 1
        with self.conn:
            for path in paths:
                gone += self._delete(path)
        return gone

    def _delete(self, path: str) -> int:
        ids = [i for (i,) in self.conn.execute(
            "SELECT c.id FROM chunks c JOIN files f ON c.file_id = f.id WHERE f.path = ?", (path,))]
        for chunk_id in ids:
            self.conn.execute("DELETE FROM chunks_fts WHERE rowid = ?", (chunk_id,))
            self.conn.execute("DELETE FROM vectors WHERE chunk_id = ?", (chunk_id,))
        self.conn.execute("DELETE FROM chunks WHERE file_id IN (SELECT id FROM files WHERE path = ?)", (path,))
        self.conn.execute("DELETE FROM files WHERE path = ?", (path,))
        return len(ids)

    # -- reading ----------------------------------------------------------------------------------
    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]

    def summary(self) -> dict[str, Any]:
        meta = self.meta()
        files, chunks = self.conn.execute("SELECT count(*), coalesce(sum(chunks), 0) FROM files").fetchone()
        return {"name": self.name, "files": files, "chunks": chunks, "model": meta.get("model"),
                "dim": int(meta["dim"]) if "dim" in meta else None, "size_mb": round(self.path.stat().st_size / 1e6, 2),
                "roots": "; ".join(self.roots()), "path": str(self.path)}

    def chunk_rows(self, ids: Sequence[int]) -> dict[int, tuple[str, str, str, int | None, int | None]]:
        """``{chunk id: (file path, text, location, line, page)}``."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(f"SELECT c.id, f.path, c.text, c.location, c.line, c.page FROM chunks c "
                                 f"JOIN files f ON c.file_id = f.id WHERE c.id IN ({marks})", tuple(ids))
        return {r[0]: tuple(r[1:]) for r in rows}

    def matrix(self) -> tuple[Any, Any]:
        """Every chunk id and its vector (float32, one row each), re-read only after the file changed."""
        import numpy as np

        version = self.conn.execute("PRAGMA data_version").fetchone()[0], self._writes
        if self._matrix is None or self._matrix[0] != version:
            dim = int(self.meta().get("dim", 0))
            rows = list(self.conn.execute("SELECT chunk_id, embedding FROM vectors")) if dim else []
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
            self._matrix = (version, ids, vectors)
        return self._matrix[1], self._matrix[2]

    def vector_search(self, query: Any, k: int) -> list[tuple[int, float]]:
        """The ``k`` chunks most similar to ``query`` (an L2-normalised vector): ``(id, cosine)``, best first."""
        import numpy as np

        ids, vectors = self.matrix()
        if not len(ids):
            return []
        # One BLAS thread: the product is memory-bound, and waking OpenBLAS's sleeping second thread on a busy
        # machine took 10-20 ms for a 1,000 x 768 product that needs 0.2 ms on one (measured).
        with require("threadpoolctl").threadpool_limits(1, user_api="blas"):
            scores = vectors @ np.asarray(query, dtype=np.float32)
        k = min(k, len(ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(ids[i]), float(scores[i])) for i in top]

    def _stems(self, words: Sequence[str]) -> dict[str, str]:
        """Each word's term as the index knows it (FTS5's own porter tokenizer on a scratch table)."""
        with self.conn:
            self.conn.execute("DELETE FROM temp.query_fts")
            self.conn.executemany("INSERT INTO temp.query_fts(rowid, text) VALUES (?, ?)",
                                  list(enumerate(words, start=1)))
            return {words[doc - 1]: term for term, doc in self.conn.execute("SELECT term, doc FROM temp.query_terms")}

    def text_search(self, words: Sequence[str], k: int) -> list[tuple[int, float]]:
        """FTS5 BM25 for any of ``words`` over chunk text (and file name, weighted half): ``(id, bm25)``, best
        first. In a large collection the words in more than 5% of chunks are left out (the rarest is kept)."""
        words = list(dict.fromkeys(w for w in words if w))
        if not words:
            return []
        total = self.count()
        if total > PRUNE_FROM:
            stems = self._stems(words)
            df = {w: (self.conn.execute("SELECT doc FROM chunks_vocab WHERE term = ?", (stems[w],)).fetchone()
                      or (0,))[0] if w in stems else 0 for w in words}
            words = [w for w in words if df[w] <= COMMON * total] or [min(words, key=df.get)]
        query = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        rows = self.conn.execute("SELECT rowid, bm25(chunks_fts, 1.0, 0.5) AS score FROM chunks_fts WHERE chunks_fts "
                                 "MATCH ? ORDER BY score LIMIT ?", (query, k))
        return [(int(r[0]), -float(r[1])) for r in rows]

    def close(self) -> None:
        self.conn.close()
