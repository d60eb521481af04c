"""Local-documents benchmark: ``python -m gpt4all_magic.bench.docs [--chunks 1000] [--big 100000]``.

Prints, from one run on one machine (absolute times vary with load; rerun on a busy machine):

1. indexing rate for ~1,000 chunks of real text (pandas' source files): end to end with the bundled model as
   embedder, and the pipeline alone (read, chunk, store) with the fake embedder, so the embedding's share shows;
2. retrieval latency at 100k chunks (vector plus full-text search, fusion and reading the chunks; not the
   query's embedding), target < 50 ms, with random unit vectors and synthetic text written straight into the
   store; sqlite-vec's own exact search in SQL on the same vectors, for comparison. The search runs on one
   thread, so its CPU time (also printed) is what it takes on an idle machine; on a busy one the wall time
   adds the waits for a core;
3. re-indexing 1 changed file out of 500: target under a second plus that file's embedding time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..system import machine_note

_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
# 20,000 made-up words drawn with Zipf's law (s = 1.1), as words are in real text: a few very common, most rare.
_RNG = np.random.default_rng(0)
WORDS = np.array(sorted({"".join(_RNG.choice(_SYLLABLES, int(_RNG.integers(2, 5)))) for _ in range(60_000)})[:20_000])
_RNG.shuffle(WORDS)
_WEIGHTS = 1.0 / np.arange(1, len(WORDS) + 1) ** 1.1
_WEIGHTS /= _WEIGHTS.sum()


def _words(rng: np.random.Generator, n: int) -> list[str]:
    return list(WORDS[rng.choice(len(WORDS), n, p=_WEIGHTS)])


def _text(rng: np.random.Generator, sentences: int) -> str:
    out = [" ".join(_words(rng, int(rng.integers(6, 16)))).capitalize() + "." for _ in range(sentences)]
    return "\n".join(" ".join(out[i:i + 3]) for i in range(0, len(out), 3))


def _manager(fake: bool) -> Any:
    from ..engines.fake import FakeBackend
    from ..manager import ModelManager

    return ModelManager(backend=FakeBackend() if fake else None, n_ctx=2048, n_threads=1)


def _real_files(folder: Path, chunks: int) -> None:
    """Copy real text to index: pandas' own source files (code and docstrings), about ``chunks`` chunks' worth."""
    import pandas

    wanted = chunks * 700  # about 700 characters of text per chunk here, overlap included
    for path in sorted(Path(pandas.__file__).parent.joinpath("core").rglob("*.py")):
        if wanted <= 0:
            break
        text = path.read_text(encoding="utf-8")[:wanted]  # the last file is cut to size
        (folder / path.name).write_text(text, encoding="utf-8")
        wanted -= len(text)


def _time_embedding(manager: Any) -> list[float]:
    """Wrap ``manager.embed`` so the seconds spent in it add up in the returned one-item list."""
    seconds = [0.0]
    real = manager.embed

    def timed(texts: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return real(texts, **kwargs)
        finally:
            seconds[0] += time.perf_counter() - started

    manager.embed = timed  # type: ignore[method-assign]
    return seconds


def bench_indexing(folder: Path, chunks: int, model_chunks: int) -> dict[str, Any]:
    from ..docs.index import add

    result = {}
    for label, fake, wanted in (("pipeline only (fake embedder)", True, chunks),
                                ("with the bundled model (1 thread)", False, model_chunks)):
        target = folder / label.split()[0]
        target.mkdir()
        _real_files(target, wanted)
        manager = _manager(fake)
        embed_seconds = _time_embedding(manager)
        started = time.perf_counter()
        report = add("bench-fake" if fake else "bench-real", target, manager=manager, progress=False)
        seconds = time.perf_counter() - started
        result[label] = {"files": report.indexed, "chunks": report.chunks, "seconds": round(seconds, 2),
                         "chunks_per_s": round(report.chunks / seconds, 2),
                         "embedding_share": round(embed_seconds[0] / seconds, 3)}
        print(f"  indexing, {label}: {result[label]}", flush=True)
        manager.unload_embedder()
    return result


def _fill(collection: Any, rng: np.random.Generator, files: int, per_file: int, dim: int,
          folder: Path | None = None) -> None:
    from ..docs.chunks import Chunk

    for f in range(files):
        texts = [_text(rng, 6) for _ in range(per_file)]
        vectors = rng.standard_normal((per_file, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        chunks = [Chunk(t, f"lines {5 * i + 1}–{5 * i + 5}", 5 * i + 1, None) for i, t in enumerate(texts)]
        if folder is None:
            collection.replace_file(f"/bench/file{f:05d}.md", "0" * 64, 0, 0.0, f"file{f:05d}.md", chunks, vectors)
        else:
            path = folder / f"file{f:04d}.md"
            path.write_text("\n\n".join(texts))
            from ..docs.readers import read_bytes_hash

            collection.replace_file(str(path), read_bytes_hash(path), path.stat().st_size, path.stat().st_mtime,
                                    path.name, chunks, vectors)


def bench_retrieval(n: int, dim: int = 768, queries: int = 20) -> dict[str, Any]:
    from ..docs.index import open_collection
    from ..docs.retrieve import DEPTH, query_words, rank

    rng = np.random.default_rng(2)
    collection = open_collection("bench-big", create=True)
    collection.set_model("random-unit-vectors", dim, "mean")
    started = time.perf_counter()
    _fill(collection, rng, n // 100, 100, dim)
    write = time.perf_counter() - started
    asks = [(" ".join(_words(rng, 6)), rng.standard_normal(dim).astype(np.float32)) for _ in range(queries)]
    asks = [(q, v / np.linalg.norm(v)) for q, v in asks]
    started = time.perf_counter()
    rank(collection, asks[0][1], asks[0][0], 5)  # reads the vectors once
    cold = time.perf_counter() - started
    times, cpu, parts = [], [], {"vector": [], "text": []}
    for query, vector in asks:
        started, cpu_started = time.perf_counter(), time.process_time()
        found = rank(collection, vector, query, 5)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        assert len(found) == 5
        started = time.perf_counter()
        collection.vector_search(vector, DEPTH)
        parts["vector"].append(time.perf_counter() - started)
        started = time.perf_counter()
        collection.text_search(query_words(query), DEPTH)
        parts["text"].append(time.perf_counter() - started)
    vec0 = []
    for _, vector in asks[:3]:
        started = time.perf_counter()
        collection.conn.execute("SELECT chunk_id, vec_distance_cosine(embedding, ?) AS d FROM vectors ORDER BY d "
                                "LIMIT 50", (vector.tobytes(),)).fetchall()
        vec0.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {"chunks": collection.count(), "dim": dim, "write_seconds": round(write, 1),
            "first_query_ms (reads the vectors)": round(cold * 1000, 1),
            "median_ms": round(median * 1000, 2), "cpu_median_ms": round(statistics.median(cpu) * 1000, 2), "p95_ms": round(sorted(times)[int(0.95 * (len(times) - 1))] * 1000, 2),
            "vector_median_ms": round(statistics.median(parts["vector"]) * 1000, 2),
            "fulltext_median_ms": round(statistics.median(parts["text"]) * 1000, 2),
            "target_ms": 50, "pass": median < 0.050,
            "sqlite_vec_sql_scan_median_ms (not used)": round(statistics.median(vec0) * 1000, 1)}


def bench_reindex(folder: Path, files: int = 500) -> dict[str, Any]:
    from ..docs.index import add, open_collection

    rng = np.random.default_rng(3)
    manager = _manager(False)
    probe = manager.embed(["probe"], kind="document")  # the bundled model: its name, pooling and dimension
    collection = open_collection("bench-reindex", create=True)
    collection.set_model(probe.model, probe.dim, probe.pooling)
    collection.add_roots([str(folder)])
    _fill(collection, rng, files, 2, probe.dim, folder)
    changed = folder / "file0123.md"
    changed.write_text(changed.read_text() + "\n\nA new paragraph about the harbour crane schedule.")
    embed_seconds = _time_embedding(manager)
    started = time.perf_counter()
    report = add("bench-reindex", manager=manager, progress=False)
    total = time.perf_counter() - started
    other = total - embed_seconds[0]
    return {"files": report.total_files, "re-embedded files": report.indexed, "unchanged": report.unchanged,
            "total_s": round(total, 3), "embedding_s": round(embed_seconds[0], 3),
            "everything_else_s": round(other, 3), "target": "everything else < 1 s", "pass": other < 1.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpt4all_magic.bench.docs", description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=1000, help="chunks to index end to end (default 1000)")
    parser.add_argument("--model-chunks", type=int, default=1000,
                        help="chunks to embed with the bundled model (default 1000; minutes on 2 cores)")
    parser.add_argument("--big", type=int, default=100_000, help="chunks for the retrieval latency (default 100k)")
    parser.add_argument("--only", choices=("retrieval", "reindex", "indexing"), action="append",
                        help="run only these parts (repeatable; default: all three)")
    args = parser.parse_args(argv)
    parts = args.only or ["retrieval", "reindex", "indexing"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["GPT4ALL_MAGIC_DOCS_DIR"] = str(root / "index")
        (root / "notes").mkdir()
        (root / "reindex").mkdir()
        print(f"machine: {machine_note()}", flush=True)
        if "retrieval" in parts:
            print("retrieval at", args.big, "chunks:", bench_retrieval(args.big), flush=True)
        if "reindex" in parts:
            print("re-indexing 1 changed file of 500:", bench_reindex(root / "reindex"), flush=True)
        if "indexing" in parts:
            print(f"indexing ~{args.chunks} chunks:", bench_indexing(root / "notes", args.chunks, args.model_chunks),
                  flush=True)
        print(f"machine at the end: {machine_note()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
