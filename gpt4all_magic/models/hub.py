"""Talking to the Hugging Face Hub: the endpoint and offline switch as they are now, search, a
repository's GGUF files, and huggingface_hub's exceptions turned into our one-line errors.

huggingface_hub reads ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` once, when it is imported; a kernel (or a
test) that sets them later is honoured here by reading the environment at every call and passing the
endpoint explicitly.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import (
    DownloadError,
    GatedRepoError,
    Gpt4AllError,
    InvalidOptionError,
    OfflineError,
    RemoteFileNotFoundError,
)
from ..text import human_bytes

__all__ = ["HubCall", "gguf_files_hint", "hub_endpoint", "hub_error", "is_offline", "offline_error", "quant_of",
           "repo_files", "search"]

DEFAULT_ENDPOINT = "https://huggingface.co"
REPO_ID_RE = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
QUANT_RE = re.compile(r"(?i)\b(IQ\d_[A-Z0-9]+(?:_[A-Z0-9]+)*|Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32)\b")
PREFERRED_QUANTS = ("Q4_K_M", "Q4_0", "Q5_K_M", "Q8_0")  # what a search suggests downloading


def hub_endpoint() -> str:
    """``$HF_ENDPOINT`` as it is now, else the one huggingface_hub was imported with."""
    env = os.environ.get("HF_ENDPOINT", "").strip()
    if env:
        return env.rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/") or DEFAULT_ENDPOINT


def is_offline() -> bool:
    """``HF_HUB_OFFLINE=1`` (or ``TRANSFORMERS_OFFLINE``), as set now or when huggingface_hub was imported."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    if value is not None:
        return value.strip().upper() in ("1", "ON", "YES", "TRUE")
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def offline_error(what: str) -> OfflineError:
    return OfflineError(f"HF_HUB_OFFLINE is set, so {what} cannot be fetched; unset it (and connect) to download, "
                        "while models already downloaded keep working (`%gpt4all list`).")


@dataclass(frozen=True)
class HubCall:
    """What was asked of the Hub, so that a failure can say it."""

    action: str  # "download ORG/REPO/FILE", "search for 'qwen'", ...
    repo_id: str | None = None
    filename: str | None = None
    revision: str = "main"
    endpoint: str | None = None
    transfer: bool = False  # the file's bytes (the CDN), after the Hub already answered for the repository


def hub_error(exc: BaseException, call: HubCall, *, token: str | bool | None = None,
              timeout: float = 15.0) -> Gpt4AllError | None:
    """A huggingface_hub or network exception as one of our one-line errors (None: not ours to explain)."""
    from huggingface_hub import errors as hf

    from .transfer import network_errors

    if isinstance(exc, Gpt4AllError):
        return exc
    endpoint = call.endpoint or hub_endpoint()
    if isinstance(exc, hf.OfflineModeIsEnabled):
        return offline_error(call.action.split(" ", 1)[-1])
    if isinstance(exc, network_errors()):
        reason = str(exc).split("\n")[0][:100] or type(exc).__name__
        return OfflineError(f"Cannot reach {endpoint} to {call.action} ({reason}); check your network (or "
                            "HF_ENDPOINT). Models already downloaded still work: `%gpt4all list`.")
    if not isinstance(exc, hf.HfHubHTTPError):
        return None
    status = getattr(getattr(exc, "response", None), "status_code", None)
    repo = call.repo_id or ""
    if isinstance(exc, hf.GatedRepoError):  # the Hub said so (X-Error-Code: GatedRepo)
        return GatedRepoError(_login_hint(repo, endpoint, token))
    if status in (401, 403) and not isinstance(exc, hf.RepositoryNotFoundError):
        # A bare refusal is a login problem only if the repository itself is closed to us: a signed CDN link
        # that expired, or a proxy, answers 403 for public files too, and logging in would not help.
        if call.transfer or (repo and _readable_without_token(repo, call.revision, endpoint, timeout)):
            return DownloadError(f"The server refused the download of {call.action.split(' ', 1)[-1]} (HTTP "
                                 f"{status}); run the same command again to resume where it stopped, or try again "
                                 "later if it keeps refusing.")
        if not repo:
            return DownloadError(f"The Hub refused to {call.action} (HTTP {status}); check your Hugging Face token "
                                 "(HF_TOKEN or `hf auth login`), or try again later.")
        return GatedRepoError(_login_hint(repo, endpoint, token))
    if isinstance(exc, hf.RepositoryNotFoundError):
        return RemoteFileNotFoundError(
            f"No repository {repo} on the Hub, or it is private: check the name with `%gpt4all search "
            f"{repo.split('/')[-1]}`, or log in with `hf auth login` (or set HF_TOKEN) if it is yours.")
    if isinstance(exc, hf.RevisionNotFoundError):
        return RemoteFileNotFoundError(f"{repo} has no revision {call.revision!r}; leave --revision out to get "
                                       "the main branch.")
    if isinstance(exc, hf.EntryNotFoundError):
        return RemoteFileNotFoundError(_missing_file_hint(call, token, timeout))
    if status is not None and status >= 500:
        return DownloadError(f"The Hub answered HTTP {status} when asked to {call.action}; it may be down, "
                             "try again later.")
    return DownloadError(f"The Hub refused to {call.action} (HTTP {status}); check the name with `%gpt4all search`.")


def _login_hint(repo_id: str, endpoint: str, token: str | bool | None) -> str:
    from huggingface_hub.utils import get_token

    page = f"{endpoint}/{repo_id}"
    if token if isinstance(token, str) else (token is not False and get_token()):
        return (f"{repo_id} is gated or private and your Hugging Face token has no access to it: accept its terms "
                f"at {page} as the token's owner (or use a token that can read it), then run this again.")
    return (f"{repo_id} is gated or private and needs a Hugging Face token: accept its terms at {page}, log in "
            "with `hf auth login` in a terminal (or set the HF_TOKEN environment variable), then run this again.")


def _readable_without_token(repo_id: str, revision: str, endpoint: str, timeout: float) -> bool:
    """Whether anyone may read ``repo_id``'s files: its metadata answers without a token and it is not gated."""
    from huggingface_hub import HfApi

    try:
        info = HfApi(endpoint=endpoint, token=False).model_info(repo_id, revision=revision, timeout=timeout)
    except Exception:
        return False
    return not info.gated and not info.private


def _missing_file_hint(call: HubCall, token: str | bool | None, timeout: float) -> str:
    repo = call.repo_id or ""
    head = f"{repo} has no file {call.filename!r}"
    return gguf_files_hint(head, repo, revision=call.revision, token=token, timeout=timeout,
                           none=f"{head} and no GGUF files at all")


def gguf_files_hint(head: str, repo_id: str, *, revision: str = "main", token: str | bool | None = None,
                    timeout: float = 15.0, none: str | None = None) -> str:
    """``head`` followed by the GGUF files ``repo_id`` has and how to download one (one request; without
    the network, a pointer to ``%gpt4all search``)."""
    try:
        files = [row["file"] for row in repo_files(repo_id, revision=revision, token=token, timeout=timeout)]
    except Gpt4AllError:
        files = None
    if files is None:
        return f"{head}; see its files with `%gpt4all search {repo_id}`."
    if not files:
        return (f"{none or head + ', and the repository has no GGUF files at all'}; look for a GGUF version with "
                f"`%gpt4all search {repo_id.split('/')[-1]}`.")
    shown = ", ".join(files[:8]) + (f" (+{len(files) - 8} more)" if len(files) > 8 else "")
    return f"{head}; its GGUF files are: {shown}. Download one with `%gpt4all download {repo_id} FILE`."


# -- search -------------------------------------------------------------------------------------------

def quant_of(filename: str) -> str | None:
    """``"Qwen2.5-0.5B-Instruct-Q4_K_M.gguf"`` -> ``"Q4_K_M"``."""
    match = QUANT_RE.search(Path(filename).name.removesuffix(".gguf"))
    return match.group(1).upper() if match else None


def repo_files(repo_id: str, *, revision: str | None = None, token: str | bool | None = None,
               timeout: float = 15.0) -> list[dict[str, Any]]:
    """The GGUF files of one Hub repository, with sizes and sha256 (one request)."""
    from huggingface_hub import HfApi

    if is_offline():
        raise offline_error(f"the file list of {repo_id}")
    endpoint = hub_endpoint()
    try:
        info = HfApi(endpoint=endpoint, token=token).model_info(repo_id, revision=revision, files_metadata=True,
                                                                timeout=timeout)
    except Exception as exc:
        call = HubCall(f"list the files of {repo_id}", repo_id, revision=revision or "main", endpoint=endpoint)
        raise hub_error(exc, call, token=token, timeout=timeout) or exc
    rows = []
    for sibling in info.siblings or []:
        if not sibling.rfilename.endswith(".gguf"):
            continue
        size = sibling.lfs.size if sibling.lfs else sibling.size
        rows.append({"repo_id": repo_id, "file": sibling.rfilename, "quant": quant_of(sibling.rfilename),
                     "size": human_bytes(size) if size else None, "size_bytes": size,
                     "sha256": sibling.lfs.sha256 if sibling.lfs else None, "gated": bool(info.gated),
                     "download": f"%gpt4all download {repo_id} {sibling.rfilename}"})
    return rows


def search(query: str, *, limit: int = 10, token: str | bool | None = None,
           timeout: float = 15.0) -> list[dict[str, Any]]:
    """GGUF repositories on the Hub matching ``query`` (most downloaded first), or, for ``ORG/REPO``,
    that repository's GGUF files."""
    query = " ".join(query.split())
    if not query:
        raise InvalidOptionError("Give words to search for, e.g. `%gpt4all search qwen 1.5b`.")
    if not 1 <= limit <= 100:
        raise InvalidOptionError(f"--limit must be between 1 and 100, got {limit}.")
    if REPO_ID_RE.fullmatch(query):
        return repo_files(query, token=token, timeout=timeout)
    if is_offline():
        raise offline_error("search results")
    from huggingface_hub.hf_api import ModelInfo
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    endpoint = hub_endpoint()
    params = [("search", query), ("filter", "gguf"), ("sort", "downloads"), ("limit", str(limit))]
    params += [("expand", key) for key in ("downloads", "likes", "gated", "siblings")]
    try:
        # The request HfApi.list_models makes, sent once: list_models retries a dead connection for ~20 s.
        response = get_session().get(f"{endpoint}/api/models", params=params, headers=build_hf_headers(token=token),
                                     timeout=timeout)
        hf_raise_for_status(response)
        items = response.json()
    except Exception as exc:
        raise hub_error(exc, HubCall(f"search for {query!r}", endpoint=endpoint), token=token) or exc
    rows = []
    for item in items[:limit]:
        info = ModelInfo(**{"siblings": None, **item})
        files = [s.rfilename for s in info.siblings or [] if s.rfilename.endswith(".gguf")]
        quants = sorted({q for q in map(quant_of, files) if q})
        pick = next((f for q in PREFERRED_QUANTS for f in files if quant_of(f) == q), files[0] if files else None)
        rows.append({"repo_id": info.id, "gguf_files": len(files), "quants": " ".join(quants),
                     "downloads": info.downloads, "likes": info.likes, "gated": bool(info.gated),
                     "download": f"%gpt4all download {info.id} {pick}" if pick else None})
    return rows
