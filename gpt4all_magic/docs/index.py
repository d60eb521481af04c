"""Building a collection: ``add`` indexes files and folders, re-embedding only files whose bytes changed and
dropping the chunks of files that are gone; ``remove`` deletes a collection; ``collections`` lists them.

Each file is committed on its own, so Ctrl-C (or a crash) keeps every file finished so far and the next
``add`` does the rest. A file that cannot be read is skipped with a note; only naming it alone is an error.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import CollectionNotFoundError, DocsError, DocumentError
from ..manager import ModelManager, get_manager
from .chunks import chunk_document
from .readers import SUFFIXES, read_bytes_hash, read_document
from .store import Collection, collection_path, docs_dir, valid_name

__all__ = ["AddReport", "collections", "display_path", "open_collection", "remove", "scan"]

EMBED_BATCH = 32  # chunks per embedding call (the progress bar moves after each)
_SKIP_DIRS = {"__pycache__", "node_modules", ".ipynb_checkpoints", ".git", ".venv", "venv", "site-packages"}
_OPEN: dict[str, Collection] = {}


@dataclass
class AddReport:
    """What one ``add`` did."""

    name: str
    indexed: int = 0  # files (re-)embedded
    unchanged: int = 0
    removed: int = 0  # files gone from disk, their chunks dropped
    skipped: int = 0  # unreadable or unsupported files (see notes)
    chunks: int = 0  # chunks embedded
    chunks_removed: int = 0
    total_files: int = 0
    total_chunks: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        done = (f"{self.name}: {self.indexed} file(s) indexed ({self.chunks} chunks embedded), {self.unchanged} "
                f"unchanged, {self.removed} removed, {self.skipped} skipped; {self.total_files} files, "
                f"{self.total_chunks} chunks in all ({self.seconds:.1f} s).")
        if self.interrupted:
            done += " Interrupted: run the same add again to finish."
        return done

    def __repr__(self) -> str:
        return "\n".join([self.summary(), *(f"note: {n}" for n in self.notes)])


def display_path(path: str) -> str:
    """A file as the user knows it: relative to the working directory when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if rel.startswith(".." + os.sep) else rel


def open_collection(name: str, *, create: bool = False) -> Collection:
    """The open collection ``name`` (kept open for the kernel's lifetime)."""
    path = str(collection_path(name))
    found = _OPEN.get(path)
    if found is not None and Path(path).exists():
        return found
    if found is not None:
        found.close()
        del _OPEN[path]
    collection = Collection(name, create=create)
    _OPEN[path] = collection
    return collection


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") or part in _SKIP_DIRS for part in path.relative_to(root).parts[:-1]) \
        or path.name.startswith(".")


def scan(roots: Iterable[str]) -> tuple[dict[str, Path], list[str]]:
    """Supported files under ``roots`` (``{absolute path: path}``) and notes on roots that vanished."""
    found, notes = {}, []
    for root in map(Path, roots):
        if root.is_file():
            found[str(root)] = root
        elif root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.suffix.lower() in SUFFIXES and path.is_file() and not _hidden(path, root):
                    found[str(path)] = path
        else:
            notes.append(f"{root} is gone; its files were dropped from the collection.")
    return found, notes


def _check_new_roots(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The absolute paths given to ``add``, each refused in one line if it cannot be indexed."""
    roots = []
    for given in paths:
        path = Path(given).expanduser().resolve()
        if path.is_file():
            read_document(path)  # a file named on its own that cannot be indexed is an error, not a note
        elif path.is_dir():
            files, _ = scan([str(path)])
            if not files:
                raise DocsError(f"{path} has no files to index ({', '.join(s.lstrip('.') for s in SUFFIXES)}); "
                                "check the folder, or name the files.")
        else:
            raise DocsError(f"No file or folder at {given}; check the path (relative to {Path.cwd()}).")
        roots.append(str(path))
    return roots


def add(name: str, *paths: str | os.PathLike[str], manager: ModelManager | None = None,
        model: str | None = None, progress: bool = True) -> AddReport:
    """Index ``paths`` (files or folders) into collection ``name``, and refresh what it already holds."""
    valid_name(name)
    roots = _check_new_roots(paths)
    if not roots and not collection_path(name).exists():
        raise CollectionNotFoundError(f"No collection named {name!r} yet; name the files or folders to index: "
                                      f"`%gpt4all docs add {name} PATH...`.")
    manager = manager or get_manager()
    collection = open_collection(name, create=True)
    meta = collection.meta()
    if model is not None and "model" in meta and manager.resolve(model).name != meta["model"]:
        collection.check_model(manager.resolve(model).name, int(meta["dim"]))
    collection.add_roots(roots)
    report = AddReport(name)
    started = time.perf_counter()
    on_disk, report.notes = scan(collection.roots())
    known = collection.files()
    gone = [p for p in known if p not in on_disk]
    report.chunks_removed = collection.remove_files(gone)
    report.removed = len(gone)
    todo = []
    for key, path in on_disk.items():
        try:
            digest = read_bytes_hash(path)
        except OSError as exc:
            report.skipped += 1
            report.notes.append(f"skipped {display_path(key)}: cannot read it ({exc.strerror or exc}).")
            continue
        if key in known and known[key].sha256 == digest:
            report.unchanged += 1
        else:
            todo.append((key, path, digest))
    try:
        _index(collection, todo, report, manager, model, progress)
    except KeyboardInterrupt:
        report.interrupted = True
        report.notes.append(f"interrupted after {report.indexed} of {len(todo)} file(s); the index is usable and "
                            "the next add finishes the job.")
    summary = collection.summary()
    report.total_files, report.total_chunks = summary["files"], summary["chunks"]
    report.seconds = time.perf_counter() - started
    return report


def _index(collection: Collection, todo: list[tuple[str, Path, str]], report: AddReport, manager: ModelManager,
           model: str | None, progress: bool) -> None:
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"indexing {collection.name}", unit="file", file=sys.stderr)
    try:
        for key, path, digest in todo:
            shown = display_path(key)
            try:
                chunks = chunk_document(read_document(path))
            except DocumentError as exc:
                report.skipped += 1
                report.notes.append(f"skipped {shown}: {exc}")
                report.chunks_removed += collection.remove_files([key])  # stale chunks of a file now unreadable
                continue
            finally:
                if bar is not None:
                    bar.set_postfix_str(f"{report.chunks} chunks · {path.name}", refresh=False)
            if not chunks:
                report.skipped += 1
                report.notes.append(f"skipped {shown}: it has no text.")
                continue
            vectors = _embed(collection, path, chunks, manager, model, report, bar)
            stat = path.stat()
            collection.replace_file(key, digest, stat.st_size, stat.st_mtime, path.name, chunks, vectors)
            report.indexed += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _embed(collection: Collection, path: Path, chunks: list[Any], manager: ModelManager, model: str | None,
           report: AddReport, bar: Any) -> Any:
    """The chunks' vectors, embedded with the collection's model (checked against what it was built with)."""
    import numpy as np

    meta = collection.meta()
    name, pooling = (meta["model"], meta.get("pooling") or None) if "model" in meta else (model, None)
    texts = [f"{path.name} {c.heading or ''}\n{c.text}" for c in chunks]  # the file name helps a question find it
    parts = []
    for start in range(0, len(texts), EMBED_BATCH):
        embedding = manager.embed(texts[start:start + EMBED_BATCH], model=name, pooling=pooling, kind="document")
        collection.set_model(embedding.model, embedding.dim, embedding.pooling)
        parts.append(embedding.vectors)
        report.chunks += len(embedding.vectors)
        if bar is not None:
            bar.set_postfix_str(f"{report.chunks} chunks · {path.name}")
    return np.concatenate(parts)


def remove(name: str) -> str:
    """Delete collection ``name`` (its file); what was removed."""
    path = collection_path(name)
    if not path.exists():
        raise CollectionNotFoundError(f"No collection named {name!r}; see `%gpt4all docs list`.")
    found = _OPEN.pop(str(path), None)
    if found is not None:
        found.close()
    size = path.stat().st_size
    for extra in (path, path.with_name(path.name + "-journal"), path.with_name(path.name + "-wal")):
        extra.unlink(missing_ok=True)
    return f"Removed collection {name!r} ({size / 1e6:.1f} MB)."


def collections() -> list[dict[str, Any]]:
    """One row per collection under the docs folder."""
    folder = docs_dir()
    rows = []
    for path in sorted(folder.glob("*.sqlite")) if folder.is_dir() else []:
        try:
            rows.append(open_collection(path.stem).summary())
        except Exception as exc:  # one damaged file must not hide the others
            rows.append({"name": path.stem, "files": None, "chunks": None, "model": f"unreadable: {exc}",
                         "path": str(path)})
    return rows
