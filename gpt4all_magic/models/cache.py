"""The Hugging Face cache layout, read and written with pathlib (no ``huggingface_hub`` import).

Files live where ``huggingface_hub`` puts them, so ``hf_hub_download``, ``hf cache`` and this package
share one copy::

    <cache>/models--ORG--REPO/blobs/<etag>                 the bytes (etag = sha256 for LFS files)
    <cache>/models--ORG--REPO/snapshots/<commit>/<file>    a relative symlink to the blob
    <cache>/models--ORG--REPO/refs/<branch>                the commit the branch pointed to

``huggingface_hub`` reads ``HF_HOME`` / ``HF_HUB_CACHE`` once, at import; :func:`cache_dir` reads them
at every call, so a kernel (or a test) that changes them is honoured.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CachedFile", "cache_dir", "find", "gguf_files", "partial_path", "partials", "place", "remove",
           "repo_dir"]

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
PARTIAL_SUFFIX = ".incomplete"


@dataclass(frozen=True)
class CachedFile:
    """One file of a repository snapshot in the cache."""

    repo_id: str
    filename: str
    commit: str
    path: Path  # the snapshot pointer (usually a symlink to the blob)


def cache_dir() -> Path:
    """The hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(key):
            return Path(os.path.expandvars(os.environ[key])).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        home = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def repo_dir(repo_id: str, cache: Path | None = None) -> Path:
    """``<cache>/models--ORG--REPO``."""
    return (cache or cache_dir()) / ("models--" + repo_id.replace("/", "--"))


def _commit_for(repo: Path, revision: str) -> str | None:
    if COMMIT_RE.match(revision):
        return revision
    ref = repo / "refs" / revision
    try:
        return ref.read_text().strip() or None
    except OSError:
        return None


def find(repo_id: str, filename: str, revision: str = "main", cache: Path | None = None) -> Path | None:
    """The cached copy of ``filename`` at ``revision``, or None.

    For a branch, a copy in another snapshot also counts (the branch may have moved since the file was
    downloaded, which does not make the file any less present); a commit revision must match exactly.
    """
    repo = repo_dir(repo_id, cache)
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    commit = _commit_for(repo, revision)
    if commit is not None:
        pointer = snapshots / commit / filename
        if pointer.is_file():
            return pointer
    if COMMIT_RE.match(revision):
        return None
    others = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for snapshot in others:
        pointer = snapshot / filename
        if pointer.is_file():
            return pointer
    return None


def gguf_files(cache: Path | None = None) -> list[CachedFile]:
    """Every complete ``.gguf`` file in the cache, one per (repo, file name), newest snapshot first."""
    root = cache or cache_dir()
    if not root.is_dir():
        return []
    found: dict[tuple[str, str], CachedFile] = {}
    for repo in sorted(root.glob("models--*")):
        snapshots = repo / "snapshots"
        if not snapshots.is_dir():
            continue
        repo_id = repo.name[len("models--"):].replace("--", "/")
        main = _commit_for(repo, "main")
        ordered = sorted((p for p in snapshots.iterdir() if p.is_dir()),
                         key=lambda p: (p.name != main, -p.stat().st_mtime))
        for snapshot in ordered:
            for pointer in sorted(snapshot.rglob("*.gguf")):
                if pointer.is_file():
                    filename = pointer.relative_to(snapshot).as_posix()
                    found.setdefault((repo_id, filename), CachedFile(repo_id, filename, snapshot.name, pointer))
    return list(found.values())


def partial_path(repo_id: str, etag: str, cache: Path | None = None) -> Path:
    """Where the bytes of an unfinished download of blob ``etag`` are kept between attempts."""
    return repo_dir(repo_id, cache) / "blobs" / f"{etag}{PARTIAL_SUFFIX}"


def note_partial(partial: Path, filename: str, size: int | None) -> None:
    """Record which file a partial download belongs to, so ``rm NAME`` can find it without the network."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.with_name(partial.name + ".json").write_text(json.dumps({"filename": filename, "size": size}))


def partials(repo_id: str, filename: str, cache: Path | None = None) -> list[Path]:
    """Unfinished downloads of ``filename`` in ``repo_id`` (with their note files)."""
    blobs = repo_dir(repo_id, cache) / "blobs"
    found = []
    for note in blobs.glob(f"*{PARTIAL_SUFFIX}.json") if blobs.is_dir() else []:
        try:
            if json.loads(note.read_text()).get("filename") == filename:
                found += [p for p in (note.with_name(note.name[: -len(".json")]), note) if p.exists()]
        except (OSError, ValueError):
            continue
    return found


def place(verified: Path, repo_id: str, filename: str, revision: str, commit: str, etag: str,
          cache: Path | None = None) -> Path:
    """Move a verified download into ``blobs/<etag>`` and point ``snapshots/<commit>/<filename>`` at it."""
    repo = repo_dir(repo_id, cache)
    blob = repo / "blobs" / etag
    blob.parent.mkdir(parents=True, exist_ok=True)
    os.replace(verified, blob)
    verified.with_name(verified.name + ".json").unlink(missing_ok=True)
    return link(repo_id, filename, revision, commit, etag, cache)


def link(repo_id: str, filename: str, revision: str, commit: str, etag: str, cache: Path | None = None) -> Path:
    """Point the snapshot entry at an existing blob (a copy of it where symlinks are not allowed)."""
    repo = repo_dir(repo_id, cache)
    blob = repo / "blobs" / etag
    pointer = repo / "snapshots" / commit / filename
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if pointer.is_symlink() or pointer.exists():
        pointer.unlink()
    try:
        os.symlink(os.path.relpath(blob, pointer.parent), pointer)
    except OSError:  # no symlinks here (e.g. Windows without developer mode): keep a real file
        shutil.copyfile(blob, pointer)
    if revision != commit:
        ref = repo / "refs" / revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(commit)
    return pointer


def remove(repo_id: str, filename: str, cache: Path | None = None) -> tuple[int, list[Path]]:
    """Delete every cached copy of ``filename`` (and blobs nothing else points to); (bytes freed, paths)."""
    repo = repo_dir(repo_id, cache)
    snapshots = repo / "snapshots"
    freed, removed, blobs = 0, [], set()
    for snapshot in (p for p in snapshots.iterdir() if p.is_dir()) if snapshots.is_dir() else []:
        pointer = snapshot / filename
        if pointer.is_symlink():
            blobs.add(pointer.resolve())
            pointer.unlink()
            removed.append(pointer)
        elif pointer.is_file():
            freed += pointer.stat().st_size
            pointer.unlink()
            removed.append(pointer)
        _prune_empty(pointer.parent, stop=snapshots)
    still_used = {p.resolve() for p in snapshots.rglob("*") if p.is_symlink()} if snapshots.is_dir() else set()
    for blob in blobs - still_used:
        if blob.is_file():
            freed += blob.stat().st_size
            blob.unlink()
            removed.append(blob)
    for partial in partials(repo_id, filename, cache):
        freed += partial.stat().st_size
        partial.unlink()
        removed.append(partial)
    if repo.is_dir() and not (snapshots.is_dir() and any(snapshots.iterdir())):
        leftovers = [p for p in repo.rglob("*") if p.is_file() and not p.is_symlink()]
        if not any(p.name.endswith(PARTIAL_SUFFIX) for p in leftovers):  # keep others' unfinished downloads
            freed += sum(p.stat().st_size for p in leftovers if p.parent.name == "blobs")
            shutil.rmtree(repo, ignore_errors=True)
            shutil.rmtree(repo.parent / ".locks" / repo.name, ignore_errors=True)
            removed.append(repo)
    return freed, removed


def _prune_empty(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
