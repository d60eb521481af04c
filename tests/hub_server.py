"""A local stand-in for the Hugging Face Hub, for tests: two HTTP servers on 127.0.0.1.

The "hub" server speaks what huggingface_hub uses for our calls:

* ``HEAD|GET /{repo}/resolve/{revision}/{file}``: LFS files answer ``302`` to the CDN with ``X-Repo-Commit``,
  ``X-Linked-Etag`` (the sha256), ``X-Linked-Size`` and ``ETag`` (the git id of the LFS pointer), as the real
  Hub does; small files answer ``200`` with their git blob id as ``ETag``. Missing repos, revisions and files
  answer 404 with ``X-Error-Code`` RepoNotFound / RevisionNotFound / EntryNotFound; gated repos answer
  401 (no token) or 403 (wrong token) with ``X-Error-Code: GatedRepo``.
* ``GET /api/models/{repo}[/revision/{rev}]`` (``?blobs=true`` adds sizes and LFS hashes),
  ``GET /api/models/{repo}/tree/{rev}`` and ``GET /api/models?search=...&filter=gguf`` (the search).

The "cdn" server (another port, so another origin: huggingface_hub does not follow the redirect on HEAD,
and must not send the token there) serves blobs with ``Range`` support. ``hub.faults`` injects failures:
``drop_after`` (close the connection after that many body bytes), ``corrupt`` (flip one byte),
``stall`` (seconds of silence after ``stall_after`` bytes), ``ignore_range``, ``status`` (answer this code),
each for ``times`` responses (None: every one); ``hub_status`` makes the hub's file resolve answer that code
with no ``X-Error-Code`` (as a proxy or firewall would). ``hub.log`` records every request.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

_SHA_CACHE: dict[Path, str] = {}


def sha256_of(path: Path) -> str:
    """sha256 of a file (cached: the bundled model is hashed once per session)."""
    if path not in _SHA_CACHE:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(1 << 22):
                digest.update(block)
        _SHA_CACHE[path] = digest.hexdigest()
    return _SHA_CACHE[path]


@dataclass
class HubFile:
    name: str
    data: bytes | None = None
    path: Path | None = None
    lfs: bool = True

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.path.stat().st_size

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest() if self.data is not None else sha256_of(self.path)

    @property
    def git_oid(self) -> str:
        """What git calls this file: the blob id of the LFS pointer (LFS) or of the content (small files)."""
        if self.lfs:
            body = f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {self.size}\n".encode()
        else:
            body = self.read(0, self.size)
        return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()

    def read(self, start: int, end: int) -> bytes:
        if self.data is not None:
            return self.data[start:end]
        with self.path.open("rb") as fh:
            fh.seek(start)
            return fh.read(end - start)


@dataclass
class Repo:
    repo_id: str
    files: dict[str, HubFile]
    commit: str
    gated: bool = False
    private: bool = False
    token: str | None = None
    downloads: int = 0
    likes: int = 0


@dataclass
class Faults:
    drop_after: int | None = None
    corrupt: bool = False
    stall: float = 0.0
    stall_after: int = 0
    ignore_range: bool = False
    status: int | None = None
    hub_status: int | None = None
    times: int | None = None

    def active(self) -> bool:
        return self.times is None or self.times > 0

    def used(self) -> None:
        if self.times is not None:
            self.times -= 1


@dataclass
class Request:
    server: str
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    sent: int = 0  # body bytes written


class FakeHub:
    """Start with ``with FakeHub() as hub:``; point ``HF_ENDPOINT`` at ``hub.url``."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.faults = Faults()
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._hub = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, "hub"))
        self._cdn = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, "cdn"))
        self._hub.daemon_threads = self._cdn.daemon_threads = True
        self._threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
                         for s in (self._hub, self._cdn)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._hub.server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    def __enter__(self) -> FakeHub:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        """Take both servers down (a dead network for whoever calls next)."""
        if self._stopped:
            return
        self._stopped = True
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()

    def add_repo(self, repo_id: str, files: dict[str, bytes | Path], commit: str | None = None,
                 **kwargs: Any) -> Repo:
        hub_files = {}
        for name, content in files.items():
            big = isinstance(content, Path) or name.endswith(".gguf")
            hub_files[name] = (HubFile(name, path=content, lfs=True) if isinstance(content, Path)
                               else HubFile(name, data=content, lfs=big))
        digest = hashlib.sha1(repo_id.encode() + b"".join(sorted(f.sha256.encode() for f in hub_files.values())))
        repo = Repo(repo_id, hub_files, commit or digest.hexdigest(), **kwargs)
        self.repos[repo_id] = repo
        return repo

    def requests(self, server: str | None = None, method: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.log if (server is None or r.server == server)
                    and (method is None or r.method == method)]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def record(self, request: Request) -> None:
        with self._lock:
            self.log.append(request)


def _handler(hub: FakeHub, role: str) -> type[BaseHTTPRequestHandler]:
    class Handler(_HubHandler if role == "hub" else _CdnHandler):
        pass

    Handler.hub = hub
    Handler.role = role
    return Handler


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeHub
    role: str

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _start(self) -> Request:
        request = Request(self.role, self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        self.hub.record(request)
        return request

    def _send(self, request: Request, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        request.status = status
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
            request.sent += len(body)

    def _json(self, request: Request, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(request, status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, request: Request, status: int, code: str, message: str, **extra: str) -> None:
        self._json(request, {"error": message}, status, {"X-Error-Code": code, "X-Error-Message": message, **extra})

    def do_HEAD(self) -> None:
        self.handle_request()

    def do_GET(self) -> None:
        self.handle_request()

    def handle_request(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class _HubHandler(_Base):
    def handle_request(self) -> None:
        request = self._start()
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        if segments[:2] == ["api", "models"]:
            if len(segments) == 2:
                return self._search(request, query)
            repo = self.hub.repos.get("/".join(segments[2:4]))
            if repo is None or (repo.private and not self._authorized(repo)):
                return self._error(request, 401, "RepoNotFound", "Repository not found")
            if len(segments) >= 6 and segments[4] == "tree":
                return self._tree(request, repo, segments[5])
            revision = segments[5] if len(segments) >= 6 and segments[4] == "revision" else "main"
            if revision not in ("main", repo.commit):
                return self._error(request, 404, "RevisionNotFound", "Invalid rev id")
            return self._info(request, repo, blobs="true" in query.get("blobs", []))
        if len(segments) >= 5 and segments[2] == "resolve":
            faults = self.hub.faults
            if faults.hub_status and faults.active():
                faults.used()
                return self._send(request, faults.hub_status, b"refused")
            return self._resolve(request, "/".join(segments[:2]), segments[3], "/".join(segments[4:]))
        self._error(request, 404, "NotFound", "Not found")

    def _authorized(self, repo: Repo) -> bool:
        return self.headers.get("Authorization") == f"Bearer {repo.token}"

    def _resolve(self, request: Request, repo_id: str, revision: str, filename: str) -> None:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized(repo)):
            return self._error(request, 404 if self.headers.get("Authorization") else 401, "RepoNotFound",
                               "Repository not found")
        if repo.gated and not self._authorized(repo):
            status = 403 if self.headers.get("Authorization") else 401
            return self._error(request, status, "GatedRepo",
                               f"Access to model {repo_id} is restricted. You must have access to it and be "
                               "authenticated to access it. Please log in.")
        if revision not in ("main", repo.commit):
            return self._error(request, 404, "RevisionNotFound", "Invalid rev id")
        file = repo.files.get(filename)
        if file is None:
            return self._error(request, 404, "EntryNotFound", "Entry not found", **{"X-Repo-Commit": repo.commit})
        headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{file.git_oid}"', "Accept-Ranges": "bytes"}
        if file.lfs:
            location = f"{self.hub.cdn_url}/blobs/{file.sha256}?name={quote(filename)}&signature=test"
            return self._send(request, 302, b"", {**headers, "Location": location,
                                                  "X-Linked-Etag": f'"{file.sha256}"',
                                                  "X-Linked-Size": str(file.size)})
        self._send(request, 200, file.read(0, file.size), headers)

    def _info(self, request: Request, repo: Repo, blobs: bool) -> None:
        siblings = []
        for file in repo.files.values():
            sibling: dict[str, Any] = {"rfilename": file.name}
            if blobs:
                sibling.update(size=file.size, blobId=file.git_oid)
                if file.lfs:
                    sibling["lfs"] = {"sha256": file.sha256, "size": file.size, "pointerSize": 134}
            siblings.append(sibling)
        self._json(request, {"id": repo.repo_id, "modelId": repo.repo_id, "sha": repo.commit, "private": repo.private,
                             "gated": "manual" if repo.gated else False, "downloads": repo.downloads,
                             "likes": repo.likes, "tags": ["gguf"], "siblings": siblings})

    def _tree(self, request: Request, repo: Repo, revision: str) -> None:
        items = []
        for file in repo.files.values():
            item: dict[str, Any] = {"type": "file", "oid": file.git_oid, "size": file.size, "path": file.name}
            if file.lfs:
                item["lfs"] = {"oid": file.sha256, "size": file.size, "pointerSize": 134}
            items.append(item)
        self._json(request, items)

    def _search(self, request: Request, query: dict[str, list[str]]) -> None:
        words = " ".join(query.get("search", [""])).casefold().split()
        expand = set(query.get("expand", []) + query.get("expand[]", []))
        repos = [r for r in self.hub.repos.values() if not r.private
                 and all(w in r.repo_id.casefold() for w in words)
                 and ("gguf" not in query.get("filter", []) or any(f.endswith(".gguf") for f in r.files))]
        repos.sort(key=lambda r: r.downloads, reverse=True)
        limit = int(query.get("limit", ["1000"])[0])
        items = []
        for repo in repos[:limit]:
            item: dict[str, Any] = {"id": repo.repo_id, "_id": repo.commit[:24]}
            full = {"downloads": repo.downloads, "likes": repo.likes, "gated": "manual" if repo.gated else False,
                    "siblings": [{"rfilename": name} for name in repo.files]}
            item.update({k: v for k, v in full.items() if not expand or k in expand})
            items.append(item)
        self._json(request, items)


class _CdnHandler(_Base):
    def handle_request(self) -> None:
        request = self._start()
        segments = urlsplit(self.path).path.strip("/").split("/")
        file = next((f for r in self.hub.repos.values() for f in r.files.values()
                     if len(segments) == 2 and segments[0] == "blobs" and f.sha256 == segments[1]), None)
        if file is None:
            return self._send(request, 404, b"no such blob")
        faults = self.hub.faults
        injecting = faults.active() and self.command == "GET"
        if injecting and faults.status:
            faults.used()
            return self._send(request, faults.status, b"fault injected")
        start, status = 0, 200
        range_header = self.headers.get("Range")
        if range_header and not (injecting and faults.ignore_range):
            start = int(range_header.split("=")[1].split("-")[0])
            if start >= file.size:
                return self._send(request, 416, b"", {"Content-Range": f"bytes */{file.size}"})
            status = 206
        length = file.size - start
        request.status = status
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{file.sha256}"')
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{file.size - 1}/{file.size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        if injecting:
            faults.used()
        try:
            self._stream(request, file, start, injecting)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _stream(self, request: Request, file: HubFile, start: int, injecting: bool) -> None:
        faults = self.hub.faults
        position, chunk = start, 1 << 20
        while position < file.size:
            end = min(file.size, position + chunk)
            if injecting and faults.drop_after is not None:
                end = min(end, start + faults.drop_after)
            if injecting and faults.stall and position < faults.stall_after <= end:
                end = faults.stall_after
            block = file.read(position, end)
            if injecting and faults.corrupt and position <= file.size // 2 < end:
                i = file.size // 2 - position
                block = block[:i] + bytes([block[i] ^ 0xFF]) + block[i + 1:]
            self.wfile.write(block)
            request.sent += len(block)
            position = end
            if injecting and faults.drop_after is not None and position - start >= faults.drop_after:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # a dead link: the client sees the body end early
                return
            if injecting and faults.stall and position == faults.stall_after:
                self.wfile.flush()
                time.sleep(faults.stall)



REPO = "test-org/SmolLM2-135M-Instruct-GGUF"
FILE = "smollm2-135m-instruct-q4_1.gguf"
NAME = "smollm2-135m-instruct-q4_1"
OTHER_FILE = "smollm2-135m-instruct-q8_0.gguf"
