"""Model-only widgets for the JupyterLab extension in ``labextension/``.

:class:`Sidebar` asks the front end to show a widget (the chat panel) in JupyterLab's left or right
sidebar; :class:`CellInserter` lets the kernel insert a code cell into the notebook. Both have no view:
in front ends without the extension (VS Code, plain IPython) their models simply fail to load and
nothing else is affected, so the chat panel is shown inline instead.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, Callable

from ipywidgets import DOMWidget, Widget, widget_serialization
from traitlets import Bool, CaselessStrEnum, Instance, Int, TraitError, Unicode

__all__ = ["NPM_NAME", "CellInserter", "Sidebar", "current_sidebar", "npm_range"]

NPM_NAME = "gpt4all-magic"  # labextension/package.json "name"


def npm_range(version: str | None = None) -> str:
    """The semver range of our front end that this Python version works with (``^MAJOR.MINOR.0``)."""
    if version is None:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        try:
            version = dist_version("gpt4all-magic")
        except PackageNotFoundError:  # running from a source tree that is not installed
            version = "0.1.0"
    match = re.match(r"(\d+)\.(\d+)", version)
    major, minor = (match.group(1), match.group(2)) if match else ("0", "1")
    return f"^{major}.{minor}.0"


def _child_to_json(child: Widget | None, owner: Any) -> str | None:
    # A closed child has no comm: serialize None rather than failing, because one widget that cannot
    # serialize breaks the kernel's whole widget-state reply and no widget comes back after a reload.
    if child is None or child.comm is None:
        return None
    return f"IPY_MODEL_{child.model_id}"


_CURRENT: dict[str, Sidebar] = {}  # one sidebar per kernel (this process)


def current_sidebar() -> Sidebar | None:
    """The open sidebar of this kernel, if any."""
    sidebar = _CURRENT.get("sidebar")
    return sidebar if sidebar is not None and sidebar.comm is not None else None


class Sidebar(Widget):
    """Shows ``child`` in JupyterLab's sidebar (needs the gpt4all-magic lab extension).

    Creating one closes the kernel's previous sidebar; it closes itself when its child closes.
    """

    _model_name = Unicode("SidebarModel").tag(sync=True)
    _model_module = Unicode(NPM_NAME).tag(sync=True)
    _model_module_version = Unicode(npm_range()).tag(sync=True)

    child = Instance(DOMWidget, allow_none=True, help="The widget shown in the sidebar.").tag(
        sync=True, to_json=_child_to_json, from_json=widget_serialization["from_json"])
    title = Unicode("GPT4All chat", help="Tooltip of the sidebar tab.").tag(sync=True)
    area = CaselessStrEnum(["left", "right"], "right", help="Which sidebar.").tag(sync=True)
    rank = Int(900, help="Position among the sidebar's tabs (higher is further down).").tag(sync=True)

    def __init__(self, child: DOMWidget, **kwargs: Any):
        area = kwargs.get("area", "right")
        if str(area).lower() not in ("left", "right"):  # refuse before closing the open one
            raise TraitError(f"area must be 'left' or 'right', got {area!r}.")
        previous = current_sidebar()
        if previous is not None:
            previous.close()  # re-running the opening cell must not stack a second panel
        self._close_callbacks: list[Callable[[Sidebar], None]] = []
        super().__init__(child=child, **kwargs)
        child.observe(self._child_comm_changed, names="comm")
        _CURRENT["sidebar"] = self

    def _child_comm_changed(self, change: dict[str, Any]) -> None:
        if change["new"] is None:
            self.close()

    def on_close(self, callback: Callable[[Sidebar], None]) -> None:
        """Call ``callback(sidebar)`` once when this sidebar closes."""
        self._close_callbacks.append(callback)

    def close(self) -> None:
        """Remove the panel from the sidebar (the child widget stays usable)."""
        if self.comm is None:
            return
        child = self.child
        if child is not None:
            with contextlib.suppress(ValueError):  # already removed
                child.unobserve(self._child_comm_changed, names="comm")
        if _CURRENT.get("sidebar") is self:
            del _CURRENT["sidebar"]
        super().close()
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            callback(self)


class CellInserter(Widget):
    """Inserts code cells into the notebook whose kernel this is; ``ready`` once the front end can."""

    _model_name = Unicode("CellInserterModel").tag(sync=True)
    _model_module = Unicode(NPM_NAME).tag(sync=True)
    _model_module_version = Unicode(npm_range()).tag(sync=True)

    ready = Bool(False, help="Set by the front end when it can insert cells.").tag(sync=True)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._reply_callbacks: list[Callable[[dict[str, Any]], None]] = []
        self.on_msg(self._handle_reply)

    def insert(self, code: str) -> bool:
        """Ask the front end to insert ``code`` as a new cell below the active one; False if it cannot."""
        if not self.ready or self.comm is None:
            return False
        self.send({"method": "insert_cell", "code": code})
        return True

    def on_reply(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback(content)`` with the front end's answer to each insert."""
        self._reply_callbacks.append(callback)

    def remove_reply_callback(self, callback: Callable[[dict[str, Any]], None]) -> None:
        if callback in self._reply_callbacks:
            self._reply_callbacks.remove(callback)

    def _handle_reply(self, widget: Widget, content: Any, buffers: Any) -> None:
        if isinstance(content, dict):
            for callback in self._reply_callbacks:
                callback(content)


_INSERTER: dict[str, CellInserter] = {}


def cell_inserter() -> CellInserter:
    """The kernel's cell inserter (created on first use)."""
    inserter = _INSERTER.get("inserter")
    if inserter is None or inserter.comm is None:
        inserter = _INSERTER["inserter"] = CellInserter()
    return inserter
