"""Local OpenAI-compatible servers on the bundled model, for the remote benchmark and the tests: a free
port on 127.0.0.1, the process, waiting until it answers, and stopping it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

__all__ = ["LocalServer", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """``python -m llama_cpp.server`` (through :mod:`.serve`; or llama.cpp's ``llama-server`` binary, given its path) on a model,
    listening on a free 127.0.0.1 port; its output goes to ``log``."""

    def __init__(self, model: str | Path, log: Path, *args: str, threads: int = 1, n_ctx: int = 2048,
                 api_key: str | None = None, llama_server: str | None = None, parallel: int = 4):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = api_key
        self.log = Path(log)
        self.name = "llama-server" if llama_server else "llama_cpp.server"
        if llama_server is None:
            cmd = [sys.executable, "-m", "gpt4all_magic.bench.serve", "--model", str(model), "--host", "127.0.0.1",
                   "--port", str(self.port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
                   "--n_threads_batch", str(threads), "--verbose", "False", *args]
            if api_key:
                cmd += ["--api_key", api_key]
        else:  # each of the `parallel` slots gets n_ctx tokens
            cmd = [llama_server, "-m", str(model), "--host", "127.0.0.1", "--port", str(self.port),
                   "--parallel", str(parallel), "-c", str(n_ctx * parallel), "-t", str(threads), *args]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def log_tail(self, n: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def wait_ready(self, timeout: float = 120.0) -> LocalServer:
        """Return once ``/v1/models`` answers; RuntimeError (with the log's tail) if it exits or times out."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited (is llama-cpp-python[server] installed?): {self.log_tail()}")
            try:
                if httpx.get(self.url + "/v1/models", headers=self.headers(), timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start in {timeout:g} s: {self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(model: str | Path, log: Path, args: Sequence[str] = (), **kwargs: object) -> LocalServer:
    """A started and answering :class:`LocalServer` (stopped again if it does not come up)."""
    server = LocalServer(model, log, *args, **kwargs)  # type: ignore[arg-type]
    try:
        return server.wait_ready()
    except BaseException:
        server.stop()
        raise
