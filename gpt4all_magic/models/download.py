"""Downloads of models (from the Hugging Face Hub, or a catalog entry's own URL) and their removal.

A download goes into huggingface_hub's own cache (``HF_HOME``; its token for gated repos), so the file
is shared with ``hf_hub_download`` and ``hf cache``. Compared with GPT4All's bindings it is:

* verified: sha256 checked against the catalog or the Hub's LFS hash (md5 only for imported GPT4All
  entries that carry nothing better) before the file is offered; a mismatch deletes the bytes;
* resumable: a failed download keeps its partial file and the next call continues it with a Range
  request (see :mod:`.transfer`);
* offline-friendly: a model already on disk never needs the network, and the catalog is a local file.

Free disk space is checked before the first byte is fetched, and only ``.gguf`` files are fetched at all.
Removing a model is :mod:`.remove`.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import (
    ChecksumMismatchError,
    DownloadError,
    Gpt4AllError,
    InvalidModelFileError,
    InvalidOptionError,
    ModelNotFoundError,
    NotEnoughDiskError,
    RemoteFileNotFoundError,
)
from ..text import human_bytes
from . import cache as hub_cache
from . import catalog
from .catalog import CatalogEntry
from .hub import REPO_ID_RE, HubCall, gguf_files_hint, hub_endpoint, hub_error, is_offline, offline_error
from .resolve import did_you_mean, resolve

__all__ = ["DownloadResult", "Target", "download", "download_target", "free_disk_space", "models_folder"]


@dataclass
class DownloadResult:
    """A model that is now on disk, and how it got there."""

    name: str  # the name that loads it
    path: Path
    size: int
    verified: str  # what its bytes were checked against ("" when it was already on disk)
    source: str  # "hub", "url", "bundled", or "cache" (already downloaded)
    sha256: str | None = None
    repo_id: str | None = None
    filename: str | None = None
    revision: str | None = None
    commit: str | None = None
    transferred: int = 0  # bytes fetched by this call
    resumed_from: int = 0  # bytes a previous, interrupted call had already saved
    seconds: float = 0.0

    @property
    def already_present(self) -> bool:
        return self.source in ("cache", "bundled")

    def summary(self) -> str:
        """One line for the notebook."""
        load = f"Load it with `%gpt4all load {self.name}`."
        if self.already_present:
            return f"{self.name} is already downloaded ({human_bytes(self.size)}, {self.path}). {load}"
        resumed = f", resumed at {human_bytes(self.resumed_from)}" if self.resumed_from else ""
        return (f"Downloaded {self.name}: {human_bytes(self.size)} in {self.seconds:.1f} s{resumed}, "
                f"{self.verified}. {load}")


# -- environment, read at call time (huggingface_hub reads it once, at import) ----------------------

def free_disk_space(path: Path) -> int | None:
    """Free bytes on the disk holding ``path`` (its nearest existing parent); None if unknown."""
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def models_folder(models_dir: str | os.PathLike[str] | None) -> Path:
    """``models_dir``, else the default folder (``$GPT4ALL_MAGIC_MODELS_DIR`` or the cache's)."""
    if models_dir is not None:
        return Path(models_dir).expanduser()
    return catalog.default_models_dir()


# -- what to download -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    name: str
    repo_id: str | None = None
    filename: str | None = None
    revision: str = "main"
    url: str | None = None  # a non-Hub URL (GPT4All's own mirror), only from catalog entries
    entry: CatalogEntry | None = None


def _safe_relative(path: str, what: str) -> str:
    parts = path.replace("\\", "/").split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidOptionError(f"{what} {path!r} is not a plain file path inside the repository.")
    return path


def download_target(name: str, file: str | None, revision: str | None, models_dir: Path) -> Target:
    text = name.strip()
    if file:
        if not REPO_ID_RE.fullmatch(text):
            raise InvalidOptionError(f"{text!r} is not a repository id; write `%gpt4all download ORG/REPO FILE.gguf`.")
        return _hub_target(text, file.strip(), revision or "main", models_dir)
    entries = catalog.load_catalog(models_dir)
    entry = catalog.find_entry(text, entries)
    if entry is not None:
        if entry.repo_id:
            return Target(entry.name, entry.repo_id, _safe_relative(entry.hf_filename, "hf_filename"),
                           revision or entry.revision, entry=entry)
        if entry.url and entry.filename and Path(entry.filename).name == entry.filename:
            return Target(entry.name, filename=entry.filename, url=entry.url, entry=entry)
        raise DownloadError(f"The catalog entry {entry.name} ({entry.origin}) has no repo_id/hf_filename or url "
                            "to download from; add one to the entry.")
    from_url = catalog.parse_hub_url(text)
    if from_url:
        repo_id, url_revision, filename = from_url
        return _hub_target(repo_id, filename, revision or url_revision, models_dir)
    parts = text.split("/")
    if len(parts) >= 3 and text.endswith(".gguf") and REPO_ID_RE.fullmatch("/".join(parts[:2])):
        return _hub_target("/".join(parts[:2]), "/".join(parts[2:]), revision or "main", models_dir)
    if REPO_ID_RE.fullmatch(text):
        raise RemoteFileNotFoundError(f"Name the file to download from {text}: `%gpt4all download {text} FILE.gguf` "
                                      f"(see its files with `%gpt4all search {text}`).")
    close = did_you_mean(text.casefold(), {k.casefold(): k for k in entries})
    raise ModelNotFoundError(f"No catalog model named '{text}'.{close} Any GGUF on the Hub works too: "
                             f"`%gpt4all download REPO_ID FILE.gguf` (find one with `%gpt4all search {text}`).")


def _hub_target(repo_id: str, filename: str, revision: str, models_dir: Path) -> Target:
    _safe_relative(filename, "The file name")
    if ".." in revision or revision.startswith("/"):
        raise InvalidOptionError(f"{revision!r} is not a revision (a branch, tag or commit).")
    entry = next((e for e in catalog.load_catalog(models_dir).values()
                  if e.repo_id == repo_id and e.hf_filename == filename), None)
    name = entry.name if entry else Path(filename).name.removesuffix(".gguf")
    return Target(name, repo_id, filename, revision, entry=entry)


# -- download -----------------------------------------------------------------------------------------

def download(name: str, file: str | None = None, *, revision: str | None = None,
             models_dir: str | os.PathLike[str] | None = None, token: str | bool | None = None,
             progress: bool | None = None, retries: int = 2, timeout: float = 30.0) -> DownloadResult:
    """Download a catalog model (``name``), ``REPO_ID FILE`` or ``REPO_ID/FILE.gguf``, verified.

    A model already on disk is returned at once, without the network. ``token`` defaults to the one
    huggingface_hub finds (``HF_TOKEN`` or ``hf auth login``). ``progress`` shows a tqdm.auto bar (a
    widget in notebooks; off when ``HF_HUB_DISABLE_PROGRESS_BARS`` is set). Connection drops are retried
    ``retries`` times within the call; after that the partial file stays and the next call resumes it.
    """
    started = time.perf_counter()
    folder = models_folder(models_dir)
    target = download_target(name, file, revision, folder)
    if target.repo_id and not target.filename.endswith(".gguf"):  # it would download, then fail to load
        head = (f"{target.filename} in {target.repo_id} is not a GGUF model file, so it was not downloaded "
                "(models load from .gguf files only)")
        raise InvalidModelFileError(gguf_files_hint(head, target.repo_id, revision=target.revision, token=token,
                                                    timeout=timeout))
    if progress is None:
        progress = os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "").upper() not in ("1", "ON", "YES", "TRUE")
    bundled = catalog.bundled_model_path()
    if target.name == catalog.BUNDLED_NAME and bundled is not None:
        return DownloadResult(target.name, bundled, bundled.stat().st_size, "", "bundled")
    local = folder / target.entry.filename if target.entry is not None and target.entry.filename else None
    if local is not None and local.is_file():  # e.g. a file copied from GPT4All's model folder
        return DownloadResult(target.name, local, local.stat().st_size, "", "cache")
    if target.url:
        result = _download_url(target, folder, progress, retries, timeout)
    else:
        result = _download_hub(target, folder, token, progress, retries, timeout)
    result.seconds = time.perf_counter() - started
    return result


def _loadable_name(target: Target, path: Path, models_dir: Path) -> str:
    """The name that resolves to ``path`` (the file stem may be taken by another model)."""
    try:
        if resolve(target.name, models_dir).path.resolve() == path.resolve():
            return target.name
    except Gpt4AllError:
        pass
    return f"{target.repo_id}/{target.filename}" if target.repo_id else str(path)


def _download_hub(t: Target, models_dir: Path, token: str | bool | None, progress: bool, retries: int,
                  timeout: float) -> DownloadResult:
    cache = hub_cache.cache_dir()
    cached = hub_cache.find(t.repo_id, t.filename, t.revision, cache)
    if cached is not None:
        blob = Path(os.path.realpath(cached)).name
        return DownloadResult(_loadable_name(t, cached, models_dir), cached, cached.stat().st_size, "", "cache",
                              sha256=blob if re.fullmatch(r"[0-9a-f]{64}", blob) else None, repo_id=t.repo_id,
                              filename=t.filename, revision=t.revision)
    if is_offline():
        raise offline_error(f"{t.repo_id}/{t.filename}")
    from huggingface_hub import get_hf_file_metadata
    from huggingface_hub.utils import build_hf_headers

    endpoint = hub_endpoint()
    call = HubCall(f"download {t.repo_id}/{t.filename}", t.repo_id, t.filename, t.revision, endpoint)
    url = f"{endpoint}/{t.repo_id}/resolve/{quote(t.revision, safe='')}/{quote(t.filename)}"
    try:
        meta = get_hf_file_metadata(url, token=token, timeout=timeout, endpoint=endpoint)
    except Exception as exc:
        raise hub_error(exc, call, token=token, timeout=timeout) or exc
    etag, commit, size = meta.etag, meta.commit_hash, meta.size
    if not etag or not commit:
        raise DownloadError(f"{endpoint} did not answer like the Hugging Face Hub (no ETag or commit for "
                            f"{t.repo_id}/{t.filename}); check HF_ENDPOINT.")
    expected, against = _expected_digest(t, etag, size)
    blob = hub_cache.repo_dir(t.repo_id, cache) / "blobs" / etag
    if blob.is_file() and (size is None or blob.stat().st_size == size):  # same bytes, another commit
        path = hub_cache.link(t.repo_id, t.filename, t.revision, commit, etag, cache)
        return DownloadResult(_loadable_name(t, path, models_dir), path, blob.stat().st_size, "", "cache",
                              repo_id=t.repo_id, filename=t.filename, revision=t.revision, commit=commit)
    partial = hub_cache.partial_path(t.repo_id, etag, cache)
    headers = build_hf_headers(token=token)
    if urlsplit(meta.location).netloc != urlsplit(endpoint).netloc:
        headers.pop("authorization", None)  # a signed CDN URL: the token stays on the Hub
    with _lock(cache / ".locks" / hub_cache.repo_dir(t.repo_id, cache).name / f"{etag}.lock", t.filename):
        _check_disk(partial, size, t.filename)
        hub_cache.note_partial(partial, t.filename, size)
        try:
            done = _fetch(meta.location, partial, headers, size, t.filename, expected, retries, timeout, progress)
        except BaseException as exc:
            _forget_if_empty(partial)
            if not isinstance(exc, Exception):
                raise
            raise hub_error(exc, replace(call, transfer=True), token=token, timeout=timeout) or exc
        _verify(done, partial, expected, against, t.filename,
                f"pick another file with `%gpt4all search {t.repo_id}`")
        path = hub_cache.place(partial, t.repo_id, t.filename, t.revision, commit, etag, cache)
    return DownloadResult(_loadable_name(t, path, models_dir), path, done.size, against, "hub",
                          sha256=done.digests.get("sha256"), repo_id=t.repo_id, filename=t.filename,
                          revision=t.revision, commit=commit, transferred=done.transferred,
                          resumed_from=done.resumed_from)


def _download_url(t: Target, models_dir: Path, progress: bool, retries: int, timeout: float) -> DownloadResult:
    """A catalog entry hosted outside the Hub (e.g. GPT4All's own mirror): into the models dir."""
    dest = models_dir / t.filename
    if dest.is_file():
        return DownloadResult(t.name, dest, dest.stat().st_size, "", "cache")
    entry = t.entry
    if not (entry.sha256sum or entry.md5sum):
        raise DownloadError(f"The catalog entry {t.name} downloads from {urlsplit(t.url).netloc}, outside the Hub, "
                            "and has no sha256sum or md5sum to verify it; add one to the entry.")
    if is_offline():
        raise offline_error(t.name)
    expected = ("sha256", entry.sha256sum) if entry.sha256sum else ("md5", entry.md5sum)
    against = f"{expected[0]} verified against the catalog"
    size = entry.filesize if "filesize" not in entry.estimated else None
    partial = dest.with_name(dest.name + ".part")
    with _lock(dest.with_name(dest.name + ".lock"), t.filename):
        _check_disk(partial, size, t.filename)
        try:
            done = _fetch(t.url, partial, {}, size, t.filename, expected, retries, timeout, progress)
        except BaseException as exc:
            _forget_if_empty(partial)
            if not isinstance(exc, Exception):
                raise
            origin = urlsplit(t.url)
            call = HubCall(f"download {t.name}", endpoint=f"{origin.scheme}://{origin.netloc}", transfer=True)
            raise hub_error(exc, call, timeout=timeout) or exc
        _verify(done, partial, expected, against, t.filename, "pick another model from `%gpt4all list`")
        os.replace(partial, dest)
    return DownloadResult(t.name, dest, done.size, against, "url", sha256=done.digests.get("sha256"),
                          transferred=done.transferred, resumed_from=done.resumed_from)


def _expected_digest(t: Target, etag: str, size: int | None) -> tuple[tuple[str, str] | None, str]:
    """(algorithm, hex) the bytes must match, and how to say it; refuses early if catalog and Hub disagree."""
    hub_sha256 = etag if re.fullmatch(r"[0-9a-f]{64}", etag) else None
    entry = t.entry
    if entry is not None and entry.sha256sum:
        if hub_sha256 and hub_sha256 != entry.sha256sum:
            raise ChecksumMismatchError(
                f"The catalog expects sha256 {entry.sha256sum[:12]}… for {t.filename} but the Hub now serves "
                f"{hub_sha256[:12]}… at {t.revision}; nothing was downloaded. If you trust the new file, download "
                f"it by repository: `%gpt4all download {t.repo_id} {t.filename}`.")
        return ("sha256", entry.sha256sum), "sha256 verified against the catalog"
    if hub_sha256:
        return ("sha256", hub_sha256), "sha256 verified against the Hub's LFS hash"
    if re.fullmatch(r"[0-9a-f]{40}", etag) and size is not None:
        return ("git-sha1", etag), "verified against the Hub's git blob hash"
    if entry is not None and entry.md5sum:
        return ("md5", entry.md5sum), "md5 verified against the catalog"
    raise DownloadError(f"The Hub gave no usable hash for {t.repo_id}/{t.filename} (ETag {etag!r}), so it "
                        "cannot be verified; add a sha256sum for it to your catalog file.")


def _fetch(url: str, partial: Path, headers: dict[str, str], size: int | None, label: str,
           expected: tuple[str, str] | None, retries: int, timeout: float, progress: bool) -> Any:
    from .transfer import fetch

    algorithms = ["sha256"] + ([expected[0]] if expected and expected[0] != "sha256" else [])
    return fetch(url, partial, headers=headers, size=size, label=label, algorithms=algorithms, retries=retries,
                 timeout=timeout, progress=progress)


def _forget_if_empty(partial: Path) -> None:
    """After a failed attempt that saved no byte: leave nothing behind (no empty file, no note for ``rm``)."""
    try:
        if partial.exists() and partial.stat().st_size:
            return
    except OSError:
        return
    partial.unlink(missing_ok=True)
    partial.with_name(partial.name + ".json").unlink(missing_ok=True)


def _unusable_reason(exc: InvalidModelFileError, path: Path) -> str:
    """A few words on why the GGUF reader refused ``path`` (its own message names the internal partial file)."""
    from .gguf import _Corrupt, _Truncated

    cause = exc.__context__  # the GGUF reader raises "from None", which keeps the parser's own exception here
    if isinstance(cause, _Corrupt):  # e.g. "unsupported GGUF version 0; llama.cpp reads versions 2 and 3"
        return f"its header is corrupt: {str(cause).split(';')[0]}"
    if isinstance(cause, _Truncated):
        return "its tensor data is cut short" if cause.in_data else "its header is cut short"
    try:
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                return "it does not start with the GGUF signature"
    except OSError:
        return "it cannot be read"
    return "its header is cut short"


def _verify(done: Any, partial: Path, expected: tuple[str, str], against: str, label: str,
            next_step: str) -> None:
    """The gate before a file is offered: wrong bytes are deleted, never loaded."""
    algorithm, want = expected
    got = done.digests.get(algorithm, "")
    error: Gpt4AllError | None = None
    if got != want:
        error = ChecksumMismatchError(
            f"The downloaded {label} does not match its {algorithm} ({got[:12]}… instead of {want[:12]}…, "
            f"from {against.split(' against ')[-1]}), so it was deleted; run the same command again to download "
            "it afresh.")
    elif label.endswith(".gguf"):
        from .gguf import read_gguf

        try:
            read_gguf(partial)
        except InvalidModelFileError as exc:
            # the bytes are the ones published, so downloading them again would not help
            error = InvalidModelFileError(f"{label} downloaded intact but is not a usable model "
                                          f"({_unusable_reason(exc, partial)}), so it was deleted; {next_step}.")
    if error is not None:
        partial.unlink(missing_ok=True)
        partial.with_name(partial.name + ".json").unlink(missing_ok=True)
        raise error


def _check_disk(partial: Path, size: int | None, label: str) -> None:
    if size is None:
        return
    have = partial.stat().st_size if partial.exists() else 0
    needed = max(size - have, 0)
    free = free_disk_space(partial.parent)
    if free is not None and needed > free:
        raise NotEnoughDiskError(
            f"{label} needs {human_bytes(needed)} more on disk but only {human_bytes(free)} is free at "
            f"{_existing(partial.parent)}; nothing was downloaded. Free some space, or point HF_HOME at a "
            "bigger disk.")


def _existing(path: Path) -> Path:
    return next((p for p in (path, *path.parents) if p.exists()), path)


class _lock:
    """One download per file at a time (two kernels appending to one partial file would corrupt it)."""

    def __init__(self, path: Path, label: str):
        self.path, self.label = path, label

    def __enter__(self) -> None:
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(str(self.path))
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            raise DownloadError(f"Another download of {self.label} is running (in this or another kernel); "
                                "wait for it to finish, then run this again.") from None

    def __exit__(self, *exc: Any) -> None:
        self.lock.release()
