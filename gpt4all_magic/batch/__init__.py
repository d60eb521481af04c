"""Batch work on DataFrames, faster than a loop of single calls: generation over rows (:mod:`.generate`),
log-likelihood scoring and perplexity (:mod:`.score`), multiple choice (:mod:`.choose`) on the Table 1
tasks (:mod:`.tasks`), summaries over tasks and models (:mod:`.compare`), curation (:mod:`.curate`),
all on one job runner (:mod:`._job`). Everything here reaches the model through the manager.

Importing this package (which importing any of its modules does) registers ``df.gpt4all``
(:mod:`.accessor`). The functions are imported from their modules, or from ``gpt4all_magic`` itself;
this package does not re-export them, so that ``gpt4all_magic.batch.compare`` stays the module.
"""

from __future__ import annotations

from .accessor import register_accessor

__all__: list[str] = []

register_accessor()
