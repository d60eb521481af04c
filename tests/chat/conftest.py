"""Fixtures of the chat tests: a hermetic JupyterLab server for the browser tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from browser import jupyter_server


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A JupyterLab server on 127.0.0.1 with everything it writes under tmp_path; stopped afterwards."""
    with jupyter_server(tmp_path, "jupyterlab") as server:
        yield server
