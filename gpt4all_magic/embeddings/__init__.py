"""Embeddings and the data map: the Embed4All and Atlas workflow next to a DataFrame.

:mod:`.vectors` turns texts (or a frame's text column) into L2-normalised float32 vectors through the
manager; :mod:`.neighbours` finds near-duplicate rows by cosine similarity with a faiss index;
:mod:`.layout` projects vectors to 2-D (UMAP, or PCA for tiny frames) and clusters the map (HDBSCAN);
:mod:`.datamap` shows the interactive map (jupyter-scatter) whose selection comes back as rows.

The public functions are ``gpt4all_magic.embed`` and ``gpt4all_magic.map``; they are imported from their
modules (this package re-exports nothing, so that no submodule name hides a function).
"""

from __future__ import annotations

__all__: list[str] = []
