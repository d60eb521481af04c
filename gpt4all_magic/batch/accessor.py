"""``df.gpt4all``: the batch functions as a pandas accessor, registered when :mod:`gpt4all_magic.batch`
is imported."""

from __future__ import annotations

from typing import Any

from .choose import choose
from .classify import classify
from .curate import curate
from .extract import extract
from .generate import generate_rows
from .score import perplexity, score

__all__ = ["Gpt4AllAccessor", "register_accessor"]


class Gpt4AllAccessor:
    """``df.gpt4all.generate(...)``, ``.extract(...)``, ``.classify(...)``, ``.score(...)``, ``.perplexity(...)``,
    ``.choose(...)``, ``.curate(...)``."""

    def __init__(self, df: Any):
        self._df = df

    def generate(self, template: str | None = None, **kwargs: Any) -> Any:
        """:func:`~.generate.generate_rows` on this frame."""
        return generate_rows(self._df, template, **kwargs)

    def extract(self, template: str | None = None, schema: Any = None, **kwargs: Any) -> Any:
        """:func:`~.extract.extract` on this frame."""
        return extract(self._df, template, schema, **kwargs)

    def classify(self, template: str | None = None, labels: Any = None, **kwargs: Any) -> Any:
        """:func:`~.classify.classify` on this frame."""
        return classify(self._df, template, labels, **kwargs)

    def score(self, context: str = "prompt", continuation: str = "response", **kwargs: Any) -> Any:
        """:func:`~.score.score` on this frame."""
        return score(self._df, context, continuation, **kwargs)

    def perplexity(self, prompt: str = "prompt", response: str = "response", **kwargs: Any) -> Any:
        """:func:`~.score.perplexity` on this frame."""
        return perplexity(self._df, prompt, response, **kwargs)

    def choose(self, **kwargs: Any) -> Any:
        """:func:`~.choose.choose` on this frame."""
        return choose(self._df, **kwargs)

    def curate(self, **kwargs: Any) -> Any:
        """:func:`~.curate.curate` on this frame."""
        return curate(self._df, **kwargs)


def register_accessor() -> None:
    """Register ``df.gpt4all`` (once)."""
    import pandas as pd

    if "gpt4all" not in getattr(pd.DataFrame, "_accessors", set()):
        pd.api.extensions.register_dataframe_accessor("gpt4all")(Gpt4AllAccessor)

