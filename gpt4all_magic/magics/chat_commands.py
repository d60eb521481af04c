"""``%gpt4all chat``: open the kernel's chat panel inline, or in JupyterLab's sidebar with ``--sidebar``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..options import GenerationOptions, option_specs
from ._base import arg, option_args, subcommand

__all__: list[str] = []


@subcommand(
    "chat", "Open the chat panel (inline; in JupyterLab's right sidebar with --sidebar).",
    arg("-m", "--model", help="Model to load for the chat: a name from `%gpt4all list` or a .gguf path."),
    arg("--sidebar", action="store_true",
        help="Show the panel in JupyterLab's sidebar (needs the gpt4all-magic lab extension; elsewhere the "
             "panel shows inline)."),
    arg("--left", action="store_true", help="With --sidebar: use the left sidebar."),
    arg("--close", action="store_true", help="Take the panel out of the sidebar (the conversation stays)."),
    arg("--file", metavar="PATH",
        help="Keep the conversation in this JSON file; opening a chat on it again (e.g. after a kernel "
             "restart) restores it with its saved settings, except those given as flags here."),
    arg("--new", action="store_true", help="Open a separate panel instead of the kernel's chat."),
    *option_args(),
)
def _chat(magics: Any, args: argparse.Namespace) -> Any:
    from ..conversation.panel import chat, default_panel

    panel = default_panel()
    if args.close:
        if panel is not None:
            panel.close_sidebar()
        return None
    values = {spec.name: getattr(args, spec.name) for spec in option_specs()
              if getattr(args, spec.name, None) is not None}
    system_prompt = values.pop("system_prompt", None)
    path = Path(args.file).expanduser() if args.file is not None else None
    fresh = panel is None or args.new or (path is not None and panel.file != path)
    if fresh and (path is None or not path.exists()):
        # a new chat starts from the kernel's defaults (`%gpt4all config`) plus the flags
        options = GenerationOptions.from_mapping(values, base=magics.default_options)
        values = {}
    else:  # an open panel or a saved chat keeps its settings; only the flags given change them
        options = None
        GenerationOptions.from_mapping(values)  # validate now: a bad flag changes nothing
    return chat(model=args.model, system_prompt=system_prompt, file=args.file, sidebar=args.sidebar,
                area="left" if args.left else "right", new=args.new, manager=magics.manager,
                options=options, **values)
