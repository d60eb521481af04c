"""gpt4all-magic: local, quantized language models native to Jupyter.

``%load_ext gpt4all_magic`` registers ``%%gpt4all`` and ``%gpt4all``. From code::

    import gpt4all_magic as g4
    g4.generate("Write a haiku about tea.", temp=0).text
    chat = g4.ChatSession(system_prompt="Be brief.")
    g4.docs.add("notes", "./notes"); g4.generate("How do I install it?", docs="notes").sources
    g4.chat()  # the chat panel (a widget); %gpt4all chat --sidebar puts it in JupyterLab's sidebar
    g4.map(df, "prompt", color="reason")  # embed, project and show a data map; m.selection is what you select

Importing this package is light: llama_cpp, pandas, huggingface_hub and ipywidgets load on first use.
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import Any

from .errors import GenerationInterrupted, Gpt4AllError
from .options import GenerationOptions, LoadSettings

__all__ = [
    "ChatSession",
    "GenerationInterrupted",
    "GenerationOptions",
    "GenerationResult",
    "Gpt4AllError",
    "LoadSettings",
    "ModelManager",
    "chat",
    "choose",
    "classify",
    "compare",
    "connect",
    "curate",
    "disconnect",
    "docs",
    "download",
    "embed",
    "evaluate",
    "extract",
    "generate",
    "generate_rows",
    "get_manager",
    "import_catalog",
    "list_models",
    "load",
    "load_ipython_extension",
    "map",
    "model_info",
    "perplexity",
    "remove",
    "score",
    "search",
    "status",
    "unload",
    "unload_ipython_extension",
]

# Library convention: no output unless the application configures logging (llama.cpp's native log
# lines go to the "gpt4all_magic.llama_cpp" logger and must never reach a cell by default).
logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "ChatSession": ("conversation.session", "ChatSession"),
    "chat": ("conversation.panel", "chat"),
    "generate": ("api", "generate"),
    "generate_rows": ("batch.generate", "generate_rows"),
    "score": ("batch.score", "score"),
    "perplexity": ("batch.score", "perplexity"),
    "choose": ("batch.choose", "choose"),
    "extract": ("batch.extract", "extract"),
    "classify": ("batch.classify", "classify"),
    "evaluate": ("batch.compare", "evaluate"),
    "compare": ("batch.compare", "compare"),
    "curate": ("batch.curate", "curate"),
    "embed": ("embeddings.vectors", "embed"),
    "map": ("embeddings.datamap", "data_map"),
    "GenerationResult": ("manager", "GenerationResult"),
    "ModelManager": ("manager", "ModelManager"),
    "get_manager": ("manager", "get_manager"),
    "load": ("api", "load"),
    "unload": ("api", "unload"),
    "status": ("api", "status"),
    "list_models": ("api", "list_models"),
    "model_info": ("api", "model_info"),
    "download": ("api", "download"),
    "search": ("models.hub", "search"),
    "remove": ("api", "remove"),
    "import_catalog": ("models.catalog", "import_catalog"),
    "connect": ("api", "connect"),
    "disconnect": ("api", "disconnect"),
}


def __getattr__(name: str) -> Any:
    if name == "docs":  # the subpackage as a namespace: g4.docs.add / search / list / rm
        return import_module(".docs", __name__)
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    if name == "__version__":
        from importlib.metadata import version

        return version("gpt4all-magic")
    raise AttributeError(f"module 'gpt4all_magic' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab extension lives (for `jupyter labextension develop`)."""
    return [{"src": "labextension", "dest": "gpt4all-magic"}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext gpt4all_magic``."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext gpt4all_magic``."""
    from .magics import unload

    unload(ipython)
