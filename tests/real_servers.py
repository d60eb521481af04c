"""Real ``llama_cpp.server`` processes on the bundled model for the remote-backend tests (started on
127.0.0.1 by the fixtures in ``conftest.py``), with the constants the tests check against."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gpt4all_magic.bench.servers import LocalServer
from gpt4all_magic.models.catalog import bundled_model_path

KEY_ENV = "REMOTE_TEST_KEY"
SERVER_KEY = "sk-test-5f2c9e"  # the real server's --api_key; must never show up in output
ALIAS = "smol-server"  # a name only the server knows, so nothing resolves it locally by accident


class Server(LocalServer):
    """One ``llama_cpp.server`` on the bundled model, on one thread: the servers share the cores with the
    test process, and llama.cpp's spinning threads collapse when oversubscribed. The thread count does
    not change the arithmetic (the greedy texts equal the local model's on all its threads)."""

    def __init__(self, log: Path, *args: str, api_key: str | None = None):
        super().__init__(bundled_model_path(), log, *args, threads=1, n_ctx=2048, api_key=api_key)

    def wait_ready(self, timeout: float = 90.0) -> Server:
        try:
            super().wait_ready(timeout)
        except RuntimeError as exc:
            pytest.fail(str(exc))
        return self

    def flush_cache(self) -> None:
        """Make the server evaluate the next prompt from scratch, as the local backend does.

        llama_cpp.server keeps the previous request's tokens and evaluates only what follows the common
        prefix; a prompt starting with another token shares no prefix with any chat prompt."""
        r = httpx.post(self.url + "/v1/completions", json={"prompt": "Zebra", "max_tokens": 1},
                       headers=self.headers(), timeout=60)
        assert r.status_code == 200
