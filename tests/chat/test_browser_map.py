"""The data map in JupyterLab in a real browser: the jupyter-scatter widget renders (WebGL, software
rendering in headless Chromium, no CDN), a box drawn with the mouse selects points, and the kernel's
``m.selection`` holds exactly those rows; the tooltip shows a row's text as text.

Uses the JupyterLab server and step helpers of ``browser.py`` (the ``lab`` fixture is in ``conftest.py``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from browser import KERNEL_IDLE, browser_page, open_notebook, run_all_cells, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Three groups of ten rows with given vectors (no model needed): PCA puts them on three islands.
SETUP = """import numpy as np, pandas as pd, gpt4all_magic as g4
rng = np.random.default_rng(0)
groups = np.repeat([0, 1, 2], 10)
x = np.eye(8)[groups] * 3 + 0.2 * rng.standard_normal((30, 8))
texts = [f"prompt {i} of group {g}" for i, g in enumerate(groups)]
texts[7] = '<img src=x onerror="window.__pwned=1"> hostile prompt'
df = pd.DataFrame({"prompt": texts, "group": [f"g{g}" for g in groups]}, index=[f"r{i}" for i in range(30)])
m = g4.map(df, "prompt", color="group", vectors=x)
m"""

# Runs code in the notebook's kernel and returns what it printed.
KERNEL_RUN = """async (code) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = k.requestExecute({code, store_history: false});
  let out = '';
  future.onIOPub = (msg) => {
    if (msg.header.msg_type === 'stream') { out += msg.content.text; }
    if (msg.header.msg_type === 'error') { out += 'ERROR ' + msg.content.ename + ': ' + msg.content.evalue; }
  };
  await future.done;
  return out;
}"""


def _kernel(page: Any, code: str) -> str:
    return page.evaluate(KERNEL_RUN, code)


def test_map_renders_and_a_box_selection_reaches_the_kernel(lab: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    write_notebook(lab["root"] / "map.ipynb", [SETUP])
    with browser_page(lab, 1000, any_error=True) as (page, steps):
        with steps.step("open the notebook"):
            open_notebook(page, lab, "map.ipynb")

        canvas = page.locator(".jp-Cell").first.locator(".jp-OutputArea-output canvas").first
        with steps.step("the map renders with WebGL"):
            run_all_cells(page)
            expect(canvas).to_be_visible(timeout=120_000)
            page.wait_for_function(KERNEL_IDLE, timeout=60_000)
            box = canvas.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 200, box
            # something was drawn: the canvas is not one flat colour
            drawn = page.evaluate("""(c) => {
              const copy = document.createElement('canvas'); copy.width = c.width; copy.height = c.height;
              const ctx = copy.getContext('2d'); ctx.drawImage(c, 0, 0);
              const d = ctx.getImageData(0, 0, copy.width, copy.height).data;
              const seen = new Set(); for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] + ',' + d[i+1] + ',' + d[i+2]);
              return seen.size; }""", canvas.element_handle())
            assert drawn > 2, drawn

        with steps.step("draw a box with the mouse over the left half"):
            assert _kernel(page, "print(len(m.selection))").strip() == "0"
            # from the bottom left (clear of the toolbar and the legend) up to the middle of the top edge
            left, bottom = box["x"] + 60, box["y"] + box["height"] - 3
            right, top = box["x"] + box["width"] / 2, box["y"] + 3
            widget = page.locator(".jp-Cell").first.locator(".jp-OutputArea-output")
            widget.locator("button[title='Activate lasso selection']").click()  # the map's box tool
            page.mouse.move(left, bottom)
            page.mouse.down()
            page.mouse.move(left + 1, bottom - 1)  # the box starts at the first move, not at the press
            for k in range(1, 21):
                page.mouse.move(left + (right - left) * k / 20, bottom + (top - bottom) * k / 20)
                page.wait_for_timeout(20)
            page.mouse.up()

        with steps.step("the kernel's m.selection holds the rows left of the box's edge"):
            report = ("import json; s = m.selection; f = m.frame; "
                      "print(json.dumps({'selected': list(s.index), 'order': list(f.sort_values('map_x').index)}))")
            deadline = time.monotonic() + 30
            while _kernel(page, "print(len(m.selection))").strip() == "0" and time.monotonic() < deadline:
                page.wait_for_timeout(300)  # the widget's state reaches the kernel over the comm
            state = json.loads(_kernel(page, report))
            selected, order = state["selected"], state["order"]
            assert 0 < len(selected) < 30, state
            # a box over the full height selects exactly the leftmost points
            assert sorted(selected) == sorted(order[:len(selected)]), state

        with steps.step("the tooltip shows a row's text as text"):
            _kernel(page, "m.scatter.show_tooltip(7)")
            tip = page.locator(".jp-Cell").first.locator("text=hostile prompt")
            expect(tip.first).to_be_visible(timeout=30_000)
            assert page.evaluate("() => window.__pwned") is None
            assert page.locator(".jp-OutputArea-output img[src='x']").count() == 0
