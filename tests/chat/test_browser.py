"""JupyterLab in a real browser: the magics in a notebook, the chat panel in the right sidebar.

Starts a hermetic JupyterLab on 127.0.0.1 (temporary root, config, data and runtime folders; no news,
update or extension-manager requests) and drives Debian's Chromium with Playwright. Screenshots of
failures go to test-artifacts/ (with GPT4ALL_MAGIC_SCREENSHOTS=1, one of every step). Without
/usr/bin/chromium (or Playwright, or the built extension) the test is skipped, unless
GPT4ALL_MAGIC_REQUIRE_BROWSER=1 (as in CI), where it fails instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
# Read at import: the autouse `hermetic` fixture clears GPT4ALL_MAGIC_* variables before each test.
REQUIRED = os.environ.get("GPT4ALL_MAGIC_REQUIRE_BROWSER") == "1"
SCREENSHOTS = os.environ.get("GPT4ALL_MAGIC_SCREENSHOTS") == "1"
EXT_NAME = "gpt4all-magic"


def _unavailable(reason: str) -> None:
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A JupyterLab server on 127.0.0.1 with everything it writes under tmp_path; stopped afterwards."""
    with jupyter_server(tmp_path, "jupyterlab") as server:
        yield server


@contextlib.contextmanager
def jupyter_server(tmp_path: Path, app: str) -> Iterator[dict[str, Any]]:
    """``python -m <app>`` (jupyterlab, or notebook for Notebook 7) on 127.0.0.1, hermetic under tmp_path."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing; install Debian's chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright; never `playwright install`)")
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
        _unavailable("the lab extension is not built; run `pip install .` or "
                     "`jlpm --cwd labextension install && jlpm --cwd labextension build:prod`")
    if built is not None:
        (data / "labextensions").mkdir()
        (data / "labextensions" / EXT_NAME).symlink_to(built, target_is_directory=True)
    port, token = _free_port(), secrets.token_hex(16)
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


def _notebook(path: Path, cells: list[str]) -> None:
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


# A saved chat whose answer tries every trick; it must show as text, and its code block goes into a cell.
HOSTILE_ANSWER = ("<script>window.__pwned = 2</script>\n\n<img src=x onerror=\"window.__pwned=3\">\n\n"
                  "[click](javascript:window.__pwned=4)\n\n![leak](http://127.0.0.1:9/leak?d=secret)\n\n```python\nprint('from the chat')\n```\n")


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


def test_notebook_magics_and_sidebar_chat(lab: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    _notebook(lab["root"] / "chat.ipynb", [
        "%load_ext gpt4all_magic",
        "%%gpt4all -t 0 -n 24\nSay hello to a new Jupyter user.",
        "import gpt4all_magic\ngpt4all_magic.chat(file='hostile-chat.json', new=True)",
    ])
    (lab["root"] / "hostile-chat.json").write_text(json.dumps({"messages": [
        {"role": "user", "content": "<img src=x onerror='window.__pwned=1'> hi"},
        {"role": "assistant", "content": HOSTILE_ANSWER}]}))
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
            page.set_default_timeout(60_000)
            steps = Steps(page, lab, console)
            sidebar = page.locator("#jp-right-stack .gpt4all-sidebar")

            with steps.step("open the notebook"):
                page.goto(f"{lab['base']}/lab/tree/chat.ipynb?token={lab['token']}", wait_until="domcontentloaded")
                page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                                       "&& window.jupyterapp.shell.currentWidget.sessionContext")
                page.wait_for_function(KERNEL_IDLE, timeout=90_000)

            with steps.step("run the magics"):
                page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
                answer = page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea-output")
                expect(answer.filter(has_text="tok/s")).to_have_count(1, timeout=90_000)
                text = answer.first.inner_text()
                assert len(text.strip()) > 5, text
                assert "smollm2-135m-instruct · " in page.locator(".jp-Cell").nth(1).inner_text()

            with steps.step("hostile output stays text; a code block goes into a new cell"):
                inline = page.locator(".jp-Cell").nth(2).locator(".gpt4all-chat")
                expect(inline.locator(".gpt4all-msg-assistant")).to_contain_text("<script>window.__pwned = 2</script>")
                expect(inline.locator(".gpt4all-msg-user")).to_contain_text("onerror=")
                assert inline.locator("img, script, iframe").count() == 0
                assert page.locator("a[href^='javascript']").count() == 0
                assert page.evaluate("() => window.__pwned") is None
                inline.locator(".gpt4all-chat-insert").click()
                expect(page.locator(".jp-Cell")).to_have_count(4)
                expect(page.locator(".jp-Cell").nth(3).locator(".jp-InputArea")).to_contain_text(
                    "print('from the chat')")

            with steps.step("open the chat from the command palette"):
                page.keyboard.press("Control+Shift+C")
                palette = page.locator(".lm-CommandPalette-input")
                expect(palette).to_be_visible()
                palette.fill("Open GPT4All chat")
                page.locator(".lm-CommandPalette-item", has_text="Open GPT4All chat").first.click()
                expect(sidebar).to_be_visible(timeout=60_000)
                box = sidebar.bounding_box()
                assert box is not None and box["height"] > 300 and box["width"] > 200, box
                messages = sidebar.locator(".gpt4all-chat-messages").bounding_box()
                assert messages is not None and messages["height"] > 100, messages

            with steps.step("send a message with Enter and watch it stream"):
                page.evaluate(RECORD_ANSWERS)
                box = sidebar.locator(".gpt4all-chat-input textarea")
                box.click()
                page.keyboard.type("What is a Jupyter notebook? Answer in two sentences.")
                page.keyboard.press("Enter")
                expect(sidebar.locator(".gpt4all-msg-user")).to_have_count(1)
                done = sidebar.locator(".gpt4all-assistant[data-state=done]")
                expect(done).to_have_count(1, timeout=90_000)
                final = done.locator(".gpt4all-msg-body").inner_text().strip()
                assert final and final != "…"
                assert box.input_value() == ""  # sent and cleared; Enter made no newline
                snaps = [s["text"].strip() for s in page.evaluate("() => window.__g4snaps") if s["n"] == 1]
                partial = [s for s in snaps if s and s != "…" and s != final]
                assert len(partial) >= 2, snaps  # it streamed: several growing versions before the end
                growing = [len(s) for s in partial]
                assert growing == sorted(growing), snaps
                expect(sidebar.locator(".gpt4all-chat-status")).to_contain_text("tok/s")

            with steps.step("stop a reply midway"):
                page.evaluate(RECORD_ANSWERS)
                box.click()
                page.keyboard.type("Write a long story about a dragon who learns to code.")
                page.keyboard.press("Enter")
                streaming = sidebar.locator(".gpt4all-assistant[data-state=streaming]")
                expect(streaming).to_have_count(1, timeout=60_000)
                page.wait_for_function("() => window.__g4snaps.some(s => s.n === 2 && s.text.length > 20)")
                sidebar.locator(".gpt4all-chat-stop").click()
                stopped = sidebar.locator(".gpt4all-assistant[data-state=stopped]")
                expect(stopped).to_have_count(1, timeout=30_000)
                expect(stopped).to_contain_text("stopped")
                kept = stopped.locator(".gpt4all-msg-body").inner_text().strip()
                assert len(kept) > 20, kept
                status_line = sidebar.locator(".gpt4all-chat-status")
                expect(status_line).to_contain_text(re.compile(r"\+ \d+ tokens"))  # updated after the turn's state
                status = status_line.inner_text()
                tokens = int(re.search(r"\+ (\d+) tokens", status).group(1))
                assert 0 < tokens < 200, status  # cut before max_tokens

            with steps.step("reload the page and find the panel restored"):
                page.reload(wait_until="domcontentloaded")
                page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget")
                expect(sidebar).to_be_visible(timeout=60_000)
                expect(sidebar.locator(".gpt4all-msg-user")).to_have_count(2)
                assert sidebar.bounding_box()["height"] > 300
                expect(sidebar.locator(".gpt4all-assistant[data-state=stopped]")).to_have_count(1)

            with steps.step("restart the kernel and find the panel gone"):
                page.wait_for_function(KERNEL_IDLE, timeout=60_000)
                # not awaited: the command's promise waits for the confirmation dialog below
                page.evaluate("() => { window.jupyterapp.commands.execute('kernelmenu:restart'); }")
                page.locator(".jp-Dialog-button.jp-mod-accept").click()
                expect(sidebar).to_have_count(0, timeout=60_000)
                page.wait_for_function(KERNEL_IDLE, timeout=60_000)

            with steps.step("open the chat from the launcher, for the restarted kernel"):
                page.evaluate("async () => { window.__g4launcher = "
                              "(await window.jupyterapp.commands.execute('launcher:create')).id; }")
                card = page.locator(".jp-LauncherCard", has_text="Open GPT4All chat")
                # After the restart the notebook can take the focus back; bring the launcher forward until
                # it has stayed in front for three polls in a row.
                page.wait_for_function("() => { const app = window.jupyterapp; "
                                       "const front = app.shell.currentWidget && "
                                       "app.shell.currentWidget.id === window.__g4launcher; "
                                       "if (!front) app.shell.activateById(window.__g4launcher); "
                                       "window.__g4front = front ? (window.__g4front || 0) + 1 : 0; "
                                       "return window.__g4front >= 3; }", polling=300)
                expect(card).to_be_visible()
                card.click()
                expect(sidebar).to_be_visible(timeout=60_000)
                assert sidebar.bounding_box()["height"] > 300
                expect(sidebar.locator(".gpt4all-msg-user")).to_have_count(0)  # the new kernel's own chat
        finally:
            browser.close()
    errors = [line for line in console if line.startswith("pageerror") and "gpt4all" in line.lower()]
    assert not errors, errors


LEAVE = ("# Leave policy\n\n## Annual leave\n\nFull-time employees are entitled to 28 days of paid annual leave per "
         "calendar year, plus public holidays.\n\n## Sick leave\n\nReport sickness to your manager before 10:00.\n")
BIKES = "# Bikes\n\nClean and lubricate the chain every 300 kilometres.\n"


def test_sidebar_chat_cites_documents_and_opens_them(lab: dict[str, Any]) -> None:
    """@docs:NAME in the sidebar chat: the answer lists its sources, and a click opens the file at its line."""
    from playwright.sync_api import expect, sync_playwright

    handbook = lab["root"] / "handbook"
    handbook.mkdir()
    (handbook / "leave.md").write_text(LEAVE)
    (handbook / "bikes.md").write_text(BIKES)
    _notebook(lab["root"] / "docs.ipynb", [
        "%load_ext gpt4all_magic\n%gpt4all config temp=0 max_tokens=12",
        "%gpt4all docs add handbook handbook",
        "%gpt4all chat --sidebar",
    ])
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
            page.set_default_timeout(60_000)
            steps = Steps(page, lab, console)
            sidebar = page.locator("#jp-right-stack .gpt4all-sidebar")

            with steps.step("docs: open the notebook, index the folder, open the sidebar chat"):
                page.goto(f"{lab['base']}/lab/tree/docs.ipynb?token={lab['token']}", wait_until="domcontentloaded")
                page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                                       "&& window.jupyterapp.shell.currentWidget.sessionContext")
                page.wait_for_function(KERNEL_IDLE, timeout=90_000)
                page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
                expect(page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea")).to_contain_text(
                    "handbook: 2 file(s) indexed", timeout=180_000)  # under its progress bar
                expect(sidebar).to_be_visible(timeout=60_000)

            with steps.step("docs: ask with @docs:handbook and see the sources under the answer"):
                box = sidebar.locator(".gpt4all-chat-input textarea")
                box.click()
                page.keyboard.type("@docs:handbook How many vacation days do I get per year?")
                page.keyboard.press("Enter")
                done = sidebar.locator(".gpt4all-assistant[data-state=done]")
                expect(done).to_have_count(1, timeout=180_000)
                source = done.locator(".gpt4all-sources a.gpt4all-source").first
                expect(source).to_contain_text("[1] handbook/leave.md, lines 1–")
                assert source.get_attribute("data-path") == "handbook/leave.md"
                assert source.get_attribute("data-line") == "1"
                assert done.locator(".gpt4all-sources script, .gpt4all-sources img").count() == 0

            with steps.step("docs: click a source and find the file open in JupyterLab"):
                source.click()
                page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget; "
                                       "return w && w.context && w.context.path === 'handbook/leave.md'; }")
                editor = page.locator(".jp-FileEditor").filter(has_text="28 days of paid annual leave")
                expect(editor).to_be_visible()
        finally:
            browser.close()
    errors = [line for line in console if line.startswith("pageerror") and "gpt4all" in line.lower()]
    assert not errors, errors
