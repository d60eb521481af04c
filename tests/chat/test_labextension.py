"""The JupyterLab extension is installed with the package and enabled, with the package's version."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gpt4all_magic

BUILT = Path(gpt4all_magic.__file__).parent / "labextension" / "package.json"


def test_labextension_is_listed_enabled_and_ok():
    if not BUILT.exists() and os.environ.get("GPT4ALL_MAGIC_REQUIRE_BROWSER") != "1":
        pytest.skip("the lab extension was not built (no node at install time)")
    listing = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"],
                             capture_output=True, text=True, check=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)
    assert re.search(rf"gpt4all-magic v{re.escape(gpt4all_magic.__version__)} enabled\s+OK", text), text
