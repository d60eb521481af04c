"""The chat panel inline in Notebook 7 (not JupyterLab) in a real browser: open a notebook in Notebook 7's
own UI, run ``%gpt4all chat``, send a message with the Send button and watch the answer stream in.

Reuses the server and step helpers of ``test_browser.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from browser import browser_page, jupyter_server, unavailable, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOT_RUN = re.compile(r"^\s*(\[\s*\]:?)?\s*$")  # the input prompt of a cell never sent to the kernel

# Text snapshots of the newest inline answer (the message list is column-reverse: newest first in the DOM).
RECORD_INLINE = """() => {
  window.__g4snaps = [];
  const record = () => {
    const answers = document.querySelectorAll('.gpt4all-chat .gpt4all-assistant .gpt4all-msg-body');
    if (!answers.length) { return; }
    const text = answers[0].innerText;
    const snaps = window.__g4snaps;
    if (!snaps.length || snaps[snaps.length - 1] !== text) { snaps.push(text); }
  };
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture
def notebook7(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A Notebook 7 server (``python -m notebook``) on 127.0.0.1, hermetic under tmp_path."""
    try:
        import notebook  # noqa: F401
    except ImportError:
        unavailable("Notebook 7 is not installed (pip install notebook)")
    with jupyter_server(tmp_path, "notebook") as server:
        yield server


def test_chat_panel_streams_inline_in_notebook7(notebook7: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    write_notebook(notebook7["root"] / "chat.ipynb", ["%load_ext gpt4all_magic\n%gpt4all chat -t 0 -n 48"])
    with browser_page(notebook7, 950) as (page, steps):
        panel = page.locator(".jp-Cell").first.locator(".gpt4all-chat")

        with steps.step("open the notebook in Notebook 7"):
            page.goto(f"{notebook7['base']}/notebooks/chat.ipynb?token={notebook7['token']}",
                      wait_until="domcontentloaded")
            expect(page.locator("#main-panel .jp-Notebook")).to_be_visible(timeout=60_000)
            assert "/lab" not in page.url  # Notebook 7's own page, not JupyterLab
            expect(page.locator(".jp-Cell").first.locator(".jp-InputArea")).to_contain_text("%gpt4all chat")
            # the kernel must be ready, or Shift+Enter only moves to a new cell
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status=idle]")).to_have_count(1, timeout=90_000)

        with steps.step("run %gpt4all chat: the panel shows inline"):
            first = page.locator(".jp-Cell").first
            for attempt in range(3):  # a kernel connection still settling can drop the request to run
                first.locator(".jp-InputArea-editor").click()
                page.keyboard.press("Control+Enter")  # run in place
                try:
                    expect(first.locator(".jp-InputPrompt")).not_to_have_text(NOT_RUN, timeout=20_000)
                    break
                except AssertionError:
                    if attempt == 2:
                        raise
            expect(panel).to_be_visible(timeout=120_000)
            expect(panel.locator(".gpt4all-chat-input textarea")).to_be_visible()

        with steps.step("send a message and watch the answer stream in"):
            page.evaluate(RECORD_INLINE)
            panel.locator(".gpt4all-chat-input textarea").fill("What is a Jupyter notebook? Two sentences.")
            panel.locator(".gpt4all-chat-send").click()
            expect(panel.locator(".gpt4all-msg-user")).to_have_count(1)
            done = panel.locator(".gpt4all-assistant[data-state=done]")
            expect(done).to_have_count(1, timeout=120_000)
            final = done.locator(".gpt4all-msg-body").inner_text().strip()
            assert final and final != "…"
            snaps = [s.strip() for s in page.evaluate("() => window.__g4snaps")]
            partial = [s for s in snaps if s and s != "…" and s != final]
            assert len(partial) >= 2, snaps  # it streamed: several growing versions before the end
            assert [len(s) for s in partial] == sorted(len(s) for s in partial), snaps
            expect(panel.locator(".gpt4all-chat-status")).to_contain_text("tok/s")
