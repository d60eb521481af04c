"""One resumable HTTP download: bytes go to a partial file that survives failures, a rerun continues it
with a ``Range`` request, and the hashes are computed while the bytes arrive (the kept part is hashed
from disk first), so verifying a 5 GB model costs no second pass.

It uses ``huggingface_hub``'s shared HTTP client (its proxies, certificates and offline switch).
``hf_hub_download`` cannot do this itself since huggingface_hub 1.x: its temporary file is unique to the
call and deleted on failure, so an interrupted download starts again from zero.
"""

from __future__ import annotations

import errno
import hashlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import DownloadError, NotEnoughDiskError
from ..text import human_bytes

__all__ = ["Transfer", "fetch", "network_errors"]

CHUNK = 1024 * 1024  # for hashing what a previous attempt kept
RETRY_STATUS = (408, 429, 500, 502, 503, 504)


@dataclass
class Transfer:
    """What one :func:`fetch` call did."""

    size: int  # bytes in the finished file
    transferred: int  # bytes received by this call
    resumed_from: int  # bytes already on disk when it started
    requests: int
    digests: dict[str, str] = field(default_factory=dict)


def network_errors() -> tuple[type[BaseException], ...]:
    """The transport exceptions of the HTTP library huggingface_hub uses (httpx2 or httpx)."""
    found = []
    for module in ("httpx2", "httpx"):
        error = getattr(sys.modules.get(module), "TransportError", None)
        if isinstance(error, type):
            found.append(error)
    return tuple(found) or (ConnectionError,)


class _Hashes:
    def __init__(self, algorithms: Iterable[str], size: int | None):
        self.algorithms, self.size = tuple(algorithms), size
        self.reset()

    def reset(self) -> None:
        self.hashers: dict[str, Any] = {}
        for name in self.algorithms:
            if name == "git-sha1":  # the id git gives a blob: sha1 of "blob <size>\0" + content
                self.hashers[name] = hashlib.sha1(b"blob %d\0" % (self.size or 0))
            else:
                self.hashers[name] = hashlib.new(name)

    def update(self, data: bytes) -> None:
        for hasher in self.hashers.values():
            hasher.update(data)

    def hexdigests(self) -> dict[str, str]:
        return {name: hasher.hexdigest() for name, hasher in self.hashers.items()}


def fetch(url: str, partial: Path, *, headers: Mapping[str, str], size: int | None, label: str,
          algorithms: Iterable[str] = ("sha256",), retries: int = 2, timeout: float = 30.0,
          progress: bool = True) -> Transfer:
    """Download ``url`` into ``partial``, continuing whatever ``partial`` already holds.

    Connection drops and stalls longer than ``timeout`` are retried ``retries`` times (each retry resumes
    where the last stopped); after that a :class:`DownloadError` says how far it got, and the partial file
    stays for the next call. HTTP errors other than 408/429/5xx are raised as huggingface_hub errors.
    """
    hashes = _Hashes(algorithms, size)
    have = partial.stat().st_size if partial.exists() else 0
    if size is not None and have > size:  # not ours, or the file changed: start over
        partial.unlink()
        have = 0
    _hash_existing(partial, hashes, have)
    done = Transfer(size=have, transferred=0, resumed_from=have, requests=0, digests={})
    bar = _progress_bar(label, size, have, progress)
    transient = network_errors()
    failures = 0
    try:
        while size is None or done.size < size:
            done.requests += 1
            try:
                if _attempt(url, partial, headers, done, size, hashes, bar, label, timeout):
                    break
            except (*transient, _ServerBusy) as exc:
                if failures >= retries:
                    total = f" of {human_bytes(size)}" if size else ""
                    raise DownloadError(
                        f"The download of {label} was interrupted at {human_bytes(done.size)}{total} "
                        f"({_reason(exc)}); run the same command again to resume from there.") from None
                failures += 1
                time.sleep(min(0.5 * failures, 3.0))
    finally:
        if bar is not None:
            bar.close()
    done.digests = hashes.hexdigests()
    return done


def _attempt(url: str, partial: Path, headers: Mapping[str, str], done: Transfer, size: int | None,
             hashes: _Hashes, bar: Any, label: str, timeout: float) -> bool:
    """One GET continuing at ``done.size``, appending to ``partial`` as bytes arrive (nothing buffered is
    lost on a drop); True when the file is complete. Raises _ServerBusy (or a network error) to retry."""
    from huggingface_hub.utils import get_session, hf_raise_for_status

    request_headers = {**headers, "Accept-Encoding": "identity"}
    if done.size:
        request_headers["Range"] = f"bytes={done.size}-"
    with get_session().stream("GET", url, headers=request_headers, timeout=timeout,
                              follow_redirects=True) as response:
        if response.status_code == 416 and size is not None and done.size == size:
            return True
        if response.status_code in RETRY_STATUS:
            raise _ServerBusy(f"the server answered HTTP {response.status_code}")
        if response.status_code >= 400:
            response.read()
            hf_raise_for_status(response)
        if done.size and not _continues_at(response, done.size):  # Range ignored: start over
            done.size = 0
            hashes.reset()
            if bar is not None:
                bar.reset(total=size)
        with _open_for(partial, done.size) as fh:
            for chunk in response.iter_bytes():
                _write(fh, chunk, label, done.size, size)
                hashes.update(chunk)
                done.size += len(chunk)
                done.transferred += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
    if size is None:
        return True
    if done.size < size:  # the body ended early without an error: treat it as a drop
        raise _ServerBusy("the connection closed early")
    return False


class _ServerBusy(Exception):
    """A retryable answer (408/429/5xx) or an early end of the body."""


def _continues_at(response: Any, offset: int) -> bool:
    if response.status_code != 206:
        return False
    content_range = response.headers.get("Content-Range", "")
    try:
        return int(content_range.split()[1].split("-")[0]) == offset
    except (IndexError, ValueError):
        return False


def _open_for(partial: Path, have: int) -> Any:
    partial.parent.mkdir(parents=True, exist_ok=True)
    if have == 0:
        return partial.open("wb")
    fh = partial.open("r+b")
    fh.seek(have)
    fh.truncate()
    return fh


def _write(fh: Any, chunk: bytes, label: str, have: int, size: int | None) -> None:
    try:
        fh.write(chunk)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            total = f" of {human_bytes(size)}" if size else ""
            raise NotEnoughDiskError(
                f"The disk filled up while downloading {label} ({human_bytes(have)}{total} saved); free some "
                "space and run the same command again to resume.") from None
        raise


def _hash_existing(partial: Path, hashes: _Hashes, have: int) -> None:
    if not have:
        return
    with partial.open("rb") as fh:
        while block := fh.read(CHUNK * 8):
            hashes.update(block)


def _progress_bar(label: str, size: int | None, have: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=size, initial=have, unit="B", unit_scale=True, unit_divisor=1000, desc=label,
                dynamic_ncols=True, leave=True)


def _reason(exc: BaseException) -> str:
    text = str(exc).split("\n")[0].strip().rstrip(".")
    if not text:
        return type(exc).__name__
    return text[:120]
