"""Indexing and retrieval on the real bundled model: where chunks come from, hybrid retrieval of the right
file, incremental re-indexing, interrupted and corrupt input, and the one-line errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import corpus_build
import numpy as np
import pytest
from conftest import QUESTIONS

import gpt4all_magic as g4
from gpt4all_magic.docs.chunks import chunk_document
from gpt4all_magic.docs.index import add, open_collection
from gpt4all_magic.docs.readers import read_document
from gpt4all_magic.docs.retrieve import hits, query_words
from gpt4all_magic.errors import CollectionNotFoundError, DocsError, DocumentError, Gpt4AllError, IndexMismatchError


def _names(found) -> list[str]:
    return [Path(h.path).name for h in found]


# -- reading and chunking ---------------------------------------------------------------------------

def test_every_type_is_read_with_where_each_chunk_came_from(corpus):
    folder = corpus["folder"]
    report = corpus["report"]
    assert (report.indexed, report.skipped, report.total_files) == (12, 0, 12)
    pdf = chunk_document(read_document(folder / "telescope_manual.pdf"))
    assert [c.location for c in pdf] == ["page 1", "page 2", "page 3"]  # one page each: a citation names one
    for chunk, (title, body) in zip(pdf, corpus_build.TELESCOPE_PAGES):
        assert title in chunk.text and body.split()[-1].rstrip(".") in chunk.text
    docx = chunk_document(read_document(folder / "budget_q2.docx"))
    assert "18,500 euros" in docx[0].text and docx[0].location.startswith("§ Quarterly budget report Q2")
    notebook = chunk_document(read_document(folder / "sourdough.ipynb"))
    assert notebook[0].location == "cells 1–3" and "375 g of water" in notebook[0].text
    assert not any("zanzibaroutput" in c.text for c in notebook)  # outputs are never indexed
    html = chunk_document(read_document(folder / "garden.html"))
    assert "Aphids" in html[0].text and not any("never index this script" in c.text for c in html)
    for name in ("vpn_setup.md", "billing.py", "onboarding.txt"):  # text files: the lines, checked in the file
        lines = (folder / name).read_text().split("\n")
        for chunk in chunk_document(read_document(folder / name)):
            first, last = (int(n) for n in chunk.location.split(" ")[1].split("–")) if "–" in chunk.location \
                else (chunk.line, chunk.line)
            assert chunk.line == first
            assert chunk.text.split("\n")[0] == lines[first - 1].strip("\n")
            assert chunk.text.split("\n")[-1] == lines[last - 1]


def test_chunks_overlap_and_cover_a_long_file(tmp_path):
    words = [f"word{i}" for i in range(1200)]
    path = tmp_path / "long.txt"
    path.write_text("\n".join(" ".join(words[i:i + 12]) for i in range(0, len(words), 12)))
    chunks = chunk_document(read_document(path))
    assert len(chunks) > 5
    for a, b in zip(chunks, chunks[1:]):
        assert set(a.text.split()) & set(b.text.split()), "neighbouring chunks share text"
        assert b.line <= int(a.location.split("–")[-1])  # the next chunk starts inside the previous one
    assert set(" ".join(c.text for c in chunks).split()) == set(words)


# -- retrieval ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("question", list(QUESTIONS))
def test_each_question_finds_its_file_in_the_top_3(corpus, question):
    found = hits("corpus", question, 3)
    assert QUESTIONS[question] in _names(found), [(h.file, h.location, h.score) for h in found]


def test_hybrid_finds_more_than_either_ranking_alone(corpus, manager):
    """With the bundled chat model as embedder the vectors are weak; BM25 and the fusion carry the day."""
    collection = open_collection("corpus")
    files = dict((i, Path(row[0]).name) for i, row in collection.chunk_rows([int(i) for i in collection.matrix()[0]]).items())
    found = {"vector": 0, "text": 0, "hybrid": 0}
    for question, want in QUESTIONS.items():
        vector = manager.embed([question], model=collection.meta()["model"], pooling="mean", kind="query").vectors[0]
        by_vector = [files[i] for i, _ in collection.vector_search(vector, 3)]
        by_text = [files[i] for i, _ in collection.text_search(query_words(question), 3)]
        found["vector"] += want in by_vector
        found["text"] += want in by_text
        found["hybrid"] += want in _names(hits("corpus", question, 3))
    assert found["hybrid"] == len(QUESTIONS)
    assert found["hybrid"] >= max(found["vector"], found["text"]), found


def test_vector_and_fused_scores_match_independent_computations(corpus, manager):
    """Cosines equal sqlite-vec's own vec_distance_cosine over the stored vectors; each fused score is
    the sum of 1/(60 + rank) over the two rankings, recomputed here."""
    collection = open_collection("corpus")
    question = "How do I align the mirrors of the telescope?"
    query = manager.embed([question], model=collection.meta()["model"], pooling="mean", kind="query").vectors[0]
    reference = {i: 1.0 - d for i, d in collection.conn.execute(
        "SELECT chunk_id, vec_distance_cosine(embedding, ?) FROM vectors", (query.astype(np.float32).tobytes(),))}
    by_vector = collection.vector_search(query, 50)
    assert [i for i, _ in by_vector] == sorted(reference, key=reference.get, reverse=True)
    for i, cosine in by_vector:
        assert cosine == pytest.approx(reference[i], abs=1e-5)
    by_text = collection.text_search(query_words(question), 50)
    expected = {}
    for ranking in (by_vector, by_text):
        for rank, (i, _) in enumerate(ranking, start=1):
            expected[i] = expected.get(i, 0.0) + 1 / (60 + rank)
    for hit in hits("corpus", question, 5):
        row = next(i for i, r in collection.chunk_rows(list(expected)).items() if r[2] == hit.location and r[0] == hit.path)
        assert hit.score == pytest.approx(expected[row])


def test_search_is_a_frame_of_chunks_scores_and_sources(corpus):
    frame = g4.docs.search("corpus", "which database will we migrate to", k=4)
    assert list(frame.columns) == ["rank", "score", "file", "location", "text", "cosine", "bm25"]
    assert len(frame) == 4 and frame["score"].is_monotonic_decreasing
    assert frame.loc[0, "file"] == "meeting_notes.txt" and "PostgreSQL" in frame.loc[0, "text"]
    listed = g4.docs.list()
    row = listed[listed["name"] == "corpus"].iloc[0]
    assert (row["files"], row["model"]) == (12, "smollm2-135m-instruct")


# -- incremental ------------------------------------------------------------------------------------------

def test_editing_one_file_re_embeds_only_it_and_deleting_drops_its_chunks(fresh, manager, monkeypatch):
    first = add("mine", fresh, progress=False)
    assert (first.indexed, first.unchanged) == (4, 0)
    embedded: list[str] = []
    real = manager.embed

    def spy(texts, **kwargs):
        embedded.extend(texts)
        return real(texts, **kwargs)

    monkeypatch.setattr(manager, "embed", spy)
    again = add("mine", progress=False)
    assert (again.indexed, again.unchanged, again.chunks, embedded) == (0, 4, 0, [])
    with open(fresh / "cycling.md", "a") as f:
        f.write("\n## Lights\n\nA rear light is required by law after dark; check its batteries monthly.\n")
    edited = add("mine", progress=False)
    expected = len(chunk_document(read_document(fresh / "cycling.md")))
    assert (edited.indexed, edited.unchanged, edited.chunks) == (1, 3, expected)
    assert len(embedded) == expected and all(t.startswith("cycling.md") for t in embedded)
    assert _names(hits("mine", "Is a rear light required after dark?", 1)) == ["cycling.md"]
    (fresh / "recipes" / "lentil_soup.txt").unlink()
    before = open_collection("mine").count()
    dropped = add("mine", progress=False)
    assert (dropped.removed, dropped.indexed, dropped.chunks_removed) == (1, 0, 1)
    collection = open_collection("mine")
    assert collection.count() == before - 1
    assert "lentil_soup.txt" not in {Path(p).name for p in collection.files()}
    assert collection.text_search(query_words("lentils cumin"), 10) == []
    assert "lentil_soup.txt" not in _names(hits("mine", "What ingredients go into the lentil soup?", 3))


def test_an_interrupted_add_leaves_a_usable_index_and_the_next_add_finishes(fresh, manager, monkeypatch):
    real, calls = manager.embed, []

    def interrupting(texts, **kwargs):
        calls.append(texts)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(texts, **kwargs)

    monkeypatch.setattr(manager, "embed", interrupting)
    partial = add("mine", fresh, progress=False)
    assert partial.interrupted and partial.indexed == 2 and "next add finishes" in partial.notes[-1]
    assert open_collection("mine").summary()["files"] == 2
    assert len(hits("mine", "anything about bikes", 2)) == 2  # usable as it is
    done = add("mine", progress=False)
    assert (done.indexed, done.unchanged, done.total_files, done.interrupted) == (2, 2, 4, False)


def test_a_corrupt_file_and_a_scan_are_skipped_with_a_note(fresh):
    (fresh / "broken.docx").write_bytes(b"PK\x03\x04 this is not a zip")
    corpus_build.make_scanned_pdf(fresh / "scan.pdf")
    (fresh / "notes.xyz").write_text("not a supported type: not even looked at")
    report = add("mine", fresh, progress=False)
    assert (report.indexed, report.skipped) == (4, 2)
    notes = "\n".join(report.notes)
    assert "broken.docx is not a readable .docx" in notes and "re-save it" in notes
    assert "scan.pdf has no text layer" in notes and "ocrmypdf" in notes
    assert all("\n" not in n for n in report.notes)


# -- bad input: one line that names the fix ------------------------------------------------------------

def test_bad_input_is_refused_in_one_line(fresh, tmp_path):
    cases = {}
    (tmp_path / "empty").mkdir()
    (tmp_path / "data.xyz").write_text("x")
    scan = corpus_build.make_scanned_pdf(tmp_path / "scan.pdf")
    for label, call, cls, words in [
        ("empty folder", lambda: add("x", tmp_path / "empty", progress=False), DocsError, "has no files to index"),
        ("unsupported", lambda: add("x", tmp_path / "data.xyz", progress=False), DocumentError, "not supported"),
        ("missing path", lambda: add("x", tmp_path / "nope", progress=False), DocsError, "No file or folder"),
        ("scan named alone", lambda: add("x", scan, progress=False), DocumentError, "no text layer"),
        ("unknown collection", lambda: hits("nothing", "q"), CollectionNotFoundError, "docs add nothing"),
        ("rm unknown", lambda: g4.docs.rm("nothing"), CollectionNotFoundError, "docs list"),
        ("bad name", lambda: add("../evil", fresh, progress=False), DocsError, "collection name"),
        ("empty query", lambda: hits("x", "  "), DocsError, "query is empty"),
    ]:
        with pytest.raises(cls) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and words in message, (label, message)
        cases[label] = message
    from gpt4all_magic.docs.store import collection_path

    assert not collection_path("x").exists() and g4.docs.list().empty  # refused calls created nothing


def test_an_unreadable_file_is_named(fresh, tmp_path, monkeypatch):
    path = tmp_path / "secret.md"
    path.write_text("x")
    real = Path.read_bytes

    def denied(self):
        if self.name == "secret.md":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)  # the tests run as root, who may read anything
    with pytest.raises(DocumentError) as info:
        add("x", path, progress=False)
    assert str(info.value) == f"Cannot read {path} (Permission denied); check that it exists and that you may read it."


def test_an_index_from_another_model_or_dimension_is_refused(fresh, manager, bundled_path, hermetic):
    add("mine", fresh / "cycling.md", progress=False)
    other = hermetic / "other-embedder.gguf"
    other.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(bundled_path, other)
    with pytest.raises(IndexMismatchError) as info:
        add("mine", fresh / "hr_policy.md", model=str(other), progress=False)
    assert "was indexed with smollm2-135m-instruct (576 dimensions), not other-embedder" in str(info.value)
    assert "docs rm mine" in str(info.value) and "\n" not in str(info.value)
    collection = open_collection("mine")
    with collection.conn:
        collection.conn.execute("UPDATE meta SET value = '768' WHERE key = 'dim'")  # as if built by nomic
    with pytest.raises(IndexMismatchError, match=r"\(768 dimensions\), not smollm2-135m-instruct \(576\)"):
        hits("mine", "chain")


def test_missing_extra_says_how_to_install(fresh, monkeypatch):
    monkeypatch.setitem(sys.modules, "apsw", None)
    with pytest.raises(Gpt4AllError) as info:
        add("mine", fresh, progress=False)
    assert str(info.value) == ('Local documents need apsw; install with `pip install "gpt4all-magic[docs]"`.')


def test_importing_the_package_does_not_load_the_docs_dependencies():
    code = ("import sys, gpt4all_magic as g4; d = g4.docs; "
            "print([m for m in ('apsw', 'sqlite_vec', 'pypdf', 'numpy', 'pandas', 'semantic_text_splitter') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
