"""Driving Jupyter in a real browser for the tests: a hermetic JupyterLab or Notebook 7 server on
127.0.0.1 (temporary root, config, data and runtime folders; no news, update or extension-manager requests),
Debian's Chromium through Playwright, and named steps that save a screenshot and the logs when they fail.
Without /usr/bin/chromium (or Playwright, or the built extension) a browser test is skipped, unless
GPT4ALL_MAGIC_REQUIRE_BROWSER=1 (as in CI), where it fails instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from gpt4all_magic.bench.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
# Read at import: the autouse `hermetic` fixture clears GPT4ALL_MAGIC_* variables before each test.
REQUIRED = os.environ.get("GPT4ALL_MAGIC_REQUIRE_BROWSER") == "1"
SCREENSHOTS = os.environ.get("GPT4ALL_MAGIC_SCREENSHOTS") == "1"
EXT_NAME = "gpt4all-magic"


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (GPT4ALL_MAGIC_REQUIRE_BROWSER=1 requires the browser test to run)")
    pytest.skip(reason)


def _installed_labextension() -> Path | None:
    """Our prebuilt extension where JupyterLab looks for it (e.g. after `pip install .`), if there."""
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("labextensions"):
        candidate = Path(base) / EXT_NAME / "package.json"
        if candidate.is_file():
            return candidate.parent
    return None


def _built_labextension() -> Path | None:
    """The extension built in this checkout (`jlpm --cwd labextension build:prod`), if built."""
    package = ROOT / "gpt4all_magic" / "labextension" / "package.json"
    if package.is_file() and "_build" in json.loads(package.read_text()).get("jupyterlab", {}):
        return package.parent
    return None


SERVER_CONFIG = """
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.open_browser = False
c.ServerApp.port_retries = 0
c.ServerApp.allow_root = True
c.LabApp.expose_app_in_browser = True
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.extension_manager = "readonly"
c.LanguageServerManager.autodetect = False
"""


@contextlib.contextmanager
def jupyter_server(tmp_path: Path, app: str) -> Iterator[dict[str, Any]]:
    """``python -m <app>`` (jupyterlab, or notebook for Notebook 7) on 127.0.0.1, hermetic under tmp_path."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing; install Debian's chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("playwright is not installed (pip install playwright; never `playwright install`)")
    root, config, data, runtime = (tmp_path / d for d in ("root", "config", "data", "runtime"))
    for folder in (root, config, data, runtime):
        folder.mkdir()
    (config / "jupyter_server_config.py").write_text(SERVER_CONFIG)
    labconfig = config / "labconfig"
    labconfig.mkdir()
    # No "would you like news?" toast over the page.
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    # This checkout's build wins over an installed copy (JUPYTER_PATH below comes first in JupyterLab's search
    # path; in a virtual environment the environment's folder otherwise comes before the user's), so the test
    # runs the TypeScript of the tree under test.
    built = _built_labextension()
    if built is None and _installed_labextension() is None:
        unavailable("the lab extension is not built; run `pip install .` or "
                     "`jlpm --cwd labextension install && jlpm --cwd labextension build:prod`")
    if built is not None:
        (data / "labextensions").mkdir()
        (data / "labextensions" / EXT_NAME).symlink_to(built, target_is_directory=True)
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config), JUPYTER_DATA_DIR=str(data),
               JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_PLATFORM_DIRS="1", HF_HUB_OFFLINE="1", JUPYTER_PATH=str(data),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    log_path = tmp_path / f"{app}.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", app, f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}"],
            env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{app} did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        yield {"base": base, "token": token, "root": root, "log": log_path}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        with contextlib.suppress(ProcessLookupError):  # kernels it left behind
            os.killpg(server.pid, signal.SIGKILL)


def write_notebook(path: Path, cells: list[str]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


# In-page helpers: the active notebook's kernel state, and text snapshots of a growing answer.
KERNEL_IDLE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle' && k.connectionStatus === 'connected';
}"""

RECORD_ANSWERS = """() => {
  window.__g4snaps = [];
  const record = () => {
    const answers = document.querySelectorAll('.gpt4all-sidebar .gpt4all-assistant .gpt4all-msg-body');
    if (!answers.length) { return; }
    const text = answers[0].innerText;  // the list is column-reverse: the newest comes first in the DOM
    const snaps = window.__g4snaps;
    if (!snaps.length || snaps[snaps.length - 1].text !== text) {
      snaps.push({n: answers.length, text});
    }
  };
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def _slug(name: str) -> str:
    return re.sub(r"\W+", "-", name).strip("-")


class Steps:
    """Names the step being run; on failure saves a screenshot and the server log tail."""

    def __init__(self, page: Any, lab: dict[str, Any], console: list[str]):
        self.page, self.lab, self.console = page, lab, console

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
            print(f"ok   {time.monotonic() - started:5.1f} s  {name}", flush=True)
            if SCREENSHOTS:  # a picture of every step, for a look
                ARTIFACTS.mkdir(exist_ok=True)
                self.page.screenshot(path=str(ARTIFACTS / f"browser-ok-{_slug(name)}.png"))
        except BaseException:
            ARTIFACTS.mkdir(exist_ok=True)
            slug = _slug(name)
            with contextlib.suppress(Exception):
                self.page.screenshot(path=str(ARTIFACTS / f"browser-{slug}.png"), full_page=True)
            (ARTIFACTS / f"browser-{slug}.log").write_text(
                "\n".join(self.console[-200:]) + "\n\n--- server log ---\n"
                + self.lab["log"].read_text(errors="replace")[-20000:])
            print(f"step failed: {name}; screenshot and logs in {ARTIFACTS}")
            raise


@contextlib.contextmanager
def browser_page(server: dict[str, Any], height: int = 900, *, any_error: bool = False
                 ) -> Iterator[tuple[Any, Steps]]:
    """A Chromium page (and its named steps) for ``server``; closed afterwards, and no page error from our
    code (with ``any_error``: from any code) may have happened meanwhile."""
    from playwright.sync_api import sync_playwright

    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": height})
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
            page.set_default_timeout(60_000)
            yield page, Steps(page, server, console)
        finally:
            browser.close()
    errors = [line for line in console if line.startswith("pageerror") and (any_error or "gpt4all" in line.lower())]
    assert not errors, errors


def open_notebook(page: Any, server: dict[str, Any], name: str) -> None:
    """Open ``name`` in JupyterLab and wait for its kernel to be idle."""
    page.goto(f"{server['base']}/lab/tree/{name}?token={server['token']}", wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext")
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)


def run_all_cells(page: Any) -> None:
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
