"""Curation of prompt-response pairs, as the GPT4All paper curated ~1M pairs down to 437,605.

:func:`curate` flags refusals ("As an AI language model", "I'm sorry, but I cannot", …), empty and
malformed responses (broken characters, control characters, unclosed code fences, degenerate
repetition, an echo of the prompt), responses under ``min_words`` words, and exact or near-duplicate
prompts (the first of each group is kept). Near duplicates are prompts equal after case folding and
punctuation removal, and then either (lexical, ``near_duplicates=True``) prompts whose word 3-gram sets
have a Jaccard similarity of at least ``similarity`` (found with MinHash + LSH, so it scales to large
frames, and checked exactly), or (semantic, ``near_duplicates=0.95``) prompts whose embeddings have a
cosine similarity of at least that number, found with a faiss index (:mod:`..embeddings.neighbours`).
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any, NamedTuple, Sequence

import pandas as pd

from ..errors import BatchInputError
from ._job import check_columns, check_frame, text_cells

__all__ = ["REASONS", "REFUSAL_PHRASES", "Curation", "curate", "is_degenerate", "is_refusal", "malformed_reason"]

REASONS = ("empty", "refusal", "malformed", "too_short", "duplicate", "near_duplicate")
REFUSAL_PHRASES = (
    "as an ai language model", "as a language model", "as an ai model", "as an ai assistant", "as an ai,",
    "i'm sorry, but i cannot", "i'm sorry, but i can't", "i am sorry, but i cannot", "i'm sorry, i cannot",
    "i'm sorry, i can't", "sorry, but i can't", "i apologize, but i cannot", "i apologize, but i can't",
    "i cannot fulfill", "i can't fulfill", "i cannot provide", "i can't provide", "i cannot assist",
    "i can't assist", "i cannot help with", "i can't help with", "i cannot comply", "i must decline",
    "i'm unable to", "i am unable to", "i'm not able to", "i am not able to", "i'm just an ai",
    "i am just an ai", "i'm only an ai", "i do not have the ability", "i don't have the ability",
    "i do not have personal", "i don't have personal", "it is not appropriate for me",
    "it's not appropriate for me", "against my programming", "i'm not programmed to", "openai's content policy",
    "content policy", "i cannot generate", "i can't generate",
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WORD = re.compile(r"\w+", re.UNICODE)
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


class Curation(NamedTuple):
    """``flags`` (one row per input row), ``kept`` (the rows that passed), ``counts`` (rows per reason)."""

    flags: pd.DataFrame
    kept: pd.DataFrame
    counts: pd.Series

    def __repr__(self) -> str:
        return f"Curation: kept {len(self.kept)} of {len(self.flags)} rows\n{self.counts.to_string()}"

    def _repr_html_(self) -> str:
        return (f"<p>Curation: kept <b>{len(self.kept)}</b> of {len(self.flags)} rows</p>"
                + self.counts.to_frame().to_html())


def _normalize_quotes(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'")


def is_refusal(text: str, phrases: Sequence[str] = REFUSAL_PHRASES) -> bool:
    """True when the response contains a refusal phrase (case-insensitive, curly quotes allowed)."""
    low = _normalize_quotes(text).lower()
    return any(p in low for p in phrases)


def is_degenerate(text: str, times: int = 6, longest: int = 16) -> bool:
    """True when a word or phrase (up to ``longest`` words, with 4+ letters or digits and at least one
    letter) comes ``times`` times in a row, e.g. "na na na na …" or "I am here. I am here. …".

    Words are compared, not characters, so Markdown table dividers (``| --- | --- |``), ``====``
    underlines and other runs of punctuation do not count; the scan is linear in the text's length
    (each phrase length is one pass comparing every word with the one that many words later).
    """
    words = _WORD.findall(text.casefold())
    for n in range(1, longest + 1):
        need = (times - 1) * n  # words equal to the word n later, in a row
        run = 0
        for k in range(len(words) - n):
            run = run + 1 if words[k] == words[k + n] else 0
            if run == need:  # later positions of the same run are rotations of this unit
                unit = words[k + 1 - need:k + 1 - need + n]
                if sum(map(len, unit)) >= 4 and any(c.isalpha() for w in unit for c in w):
                    return True
    return False


def malformed_reason(text: str, prompt: str | None = None) -> str | None:
    """Why a non-empty response looks broken, or None."""
    if "\ufffd" in text:
        return "broken characters (U+FFFD)"
    if _CONTROL.search(text):
        return "control characters"
    if text.count("```") % 2:
        return "unclosed code fence"
    if is_degenerate(text):
        return "degenerate repetition"
    if prompt is not None and prompt.strip() and text.strip().casefold() == prompt.strip().casefold():
        return "echoes the prompt"
    return None


def curate(df: pd.DataFrame, response: str = "response", prompt: str | None = "prompt", *, min_words: int = 3,
           near_duplicates: bool | float = True, similarity: float = 0.8, vectors: Any = None,
           refusal_phrases: Sequence[str] | None = None) -> Curation:
    """Flag rows to drop and return ``Curation(flags, kept, counts)``.

    ``flags`` has a boolean column per reason (``empty``, ``refusal``, ``malformed``, ``too_short``,
    ``duplicate``, ``near_duplicate``), ``detail`` (why malformed), ``duplicate_of`` (the index label
    of the kept row a duplicate repeats), ``keep`` and ``reason`` (the first reason that applies).
    Missing responses (None / NaN) count as empty. ``prompt=None`` skips the duplicate checks.

    ``near_duplicates``: True compares prompts' words (Jaccard >= ``similarity``); a number such as 0.95
    compares their meaning: a prompt whose embedding has at least that cosine similarity with an earlier
    kept prompt is a near duplicate (``detail`` gives the similarity). The prompts are embedded with the
    kernel's embedding model, or ``vectors`` are used (a matrix with a row per row, or a column of
    vectors such as ``g4.embed(df, "prompt")``'s ``embedding``); False turns near duplicates off.
    """
    check_frame(df)
    if not isinstance(min_words, int) or min_words < 0:
        raise BatchInputError(f"min_words must be a whole number >= 0, got {min_words!r}.")
    if not 0.0 < similarity <= 1.0:
        raise BatchInputError(f"similarity must be in (0, 1], got {similarity!r}; e.g. similarity=0.8.")
    semantic = _semantic_threshold(near_duplicates)
    check_columns(df, [response])
    prompts: list[str] | None = None
    if prompt is not None:
        if prompt not in df.columns:
            raise BatchInputError(f"No prompt column '{prompt}' in the DataFrame; name it with prompt='...', or "
                                  "pass prompt=None to skip the duplicate checks.")
        prompts = text_cells(df, prompt)
    phrases = tuple(p.lower() for p in (refusal_phrases if refusal_phrases is not None else REFUSAL_PHRASES))
    flags, detail = _response_flags(df[response].tolist(), prompts, phrases, min_words)
    duplicate_of: list[Any] = [None] * len(df)
    if prompts is not None:
        labels = list(df.index)
        found = _duplicates(prompts, bool(near_duplicates) and semantic is None, similarity)
        if semantic is not None:
            found.update(_semantic(df, prompt, prompts, vectors, semantic, found, detail))
        for i, (kind, first) in found.items():
            flags[kind][i] = True
            duplicate_of[i] = labels[first]
    out = pd.DataFrame(flags, index=df.index)
    out["detail"] = pd.Series(detail, index=df.index, dtype=object)
    out["duplicate_of"] = pd.Series(duplicate_of, index=df.index, dtype=object)
    reason = [next((r for r in REASONS if flags[r][i]), None) for i in range(len(df))]
    out["keep"] = [r is None for r in reason]
    out["reason"] = pd.Series(reason, index=df.index, dtype=object)
    counts = pd.Series({r: int(out[r].sum()) for r in REASONS}, name="rows")
    counts["kept"] = int(out["keep"].sum())
    counts["total"] = len(df)
    return Curation(out, df[out["keep"].to_numpy()], counts)


def _response_flags(responses: list[Any], prompts: list[str] | None, phrases: tuple[str, ...],
                    min_words: int) -> tuple[dict[str, list[bool]], list[str | None]]:
    """The per-response flags (empty, refusal, malformed, too short; the duplicate ones start False) and
    why a malformed one is."""
    flags = {r: [False] * len(responses) for r in REASONS}
    detail: list[str | None] = [None] * len(responses)
    for i, value in enumerate(responses):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            flags["empty"][i] = True
            continue
        if not isinstance(value, str):
            flags["malformed"][i] = True
            detail[i] = f"not text ({type(value).__name__})"
            continue
        if not value.strip():
            flags["empty"][i] = True
            continue
        flags["refusal"][i] = is_refusal(value, phrases)
        why = malformed_reason(value, prompts[i] if prompts else None)
        if why:
            flags["malformed"][i], detail[i] = True, why
        flags["too_short"][i] = len(_WORD.findall(value)) < min_words
    return flags, detail


# -- duplicates -------------------------------------------------------------------------------------

def _semantic_threshold(near: Any) -> float | None:
    """None for lexical or no near-duplicate search; the cosine threshold for a number."""
    if isinstance(near, bool) or near is None:
        return None
    if not isinstance(near, (int, float)) or not 0.5 <= near <= 1.0:
        raise BatchInputError(f"near_duplicates must be True (similar words), False, or a cosine similarity "
                              f"between 0.5 and 1 (similar meaning, e.g. 0.95), got {near!r}.")
    return float(near)


def _semantic(df: pd.DataFrame, column: str, prompts: list[str], vectors: Any, threshold: float,
              exact: dict[int, tuple[str, int]], detail: list[str | None]) -> dict[int, tuple[str, int]]:
    """Near duplicates by meaning among the rows that are not exact duplicates already: ``{row: (kind,
    kept row)}``; ``detail`` gets the cosine similarity of each."""
    import numpy as np

    from ..embeddings.neighbours import first_of_groups, similar_pairs
    from ..embeddings.vectors import vectors_of

    rows = np.array([i for i in range(len(prompts)) if i not in exact], dtype=np.int64)
    if len(rows) < 2:
        return {}
    if vectors is None:
        matrix, _ = vectors_of(df.iloc[rows], column, what="near-duplicate search")
    else:
        matrix = vectors_of(df, None, vectors, what="near-duplicate search")[0][rows]
    i, j, sims = similar_pairs(matrix, threshold)
    found = {}
    similarity = {(a, b): s for a, b, s in zip(i.tolist(), j.tolist(), sims.tolist())}
    for later, first in first_of_groups(len(rows), i, j).items():
        found[int(rows[later])] = ("near_duplicate", int(rows[first]))
        if detail[int(rows[later])] is None:  # a malformed row keeps why it is malformed
            detail[int(rows[later])] = f"cosine {similarity[(first, later)]:.3f}"
    return found


def _normalized(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.casefold()).split())


def _duplicates(prompts: list[str], near: bool, similarity: float) -> dict[int, tuple[str, int]]:
    """``{row: ("duplicate" | "near_duplicate", first row of its group)}`` for every row but the first."""
    found: dict[int, tuple[str, int]] = {}
    exact: dict[str, int] = {}
    norm: dict[str, int] = {}
    representatives = []
    for i, p in enumerate(prompts):
        key = p.strip()
        if key in exact:
            found[i] = ("duplicate", exact[key])
            continue
        exact[key] = i
        if not near:
            continue
        n = _normalized(p)
        if n in norm:
            found[i] = ("near_duplicate", norm[n])
            continue
        norm[n] = i
        representatives.append(i)
    if near and similarity < 1.0 and len(representatives) > 1:
        for i, first in _similar(prompts, representatives, similarity).items():
            found[i] = ("near_duplicate", first)
    return found


def _shingles(text: str) -> set[str]:
    words = _normalized(text).split()
    if len(words) < 3:
        return {" ".join(words)}
    return {" ".join(words[k:k + 3]) for k in range(len(words) - 2)}


def _similar(prompts: list[str], rows: list[int], threshold: float, bands: int = 16, rows_per_band: int = 4
             ) -> dict[int, int]:
    """MinHash-LSH candidates among ``rows``, kept when the exact Jaccard similarity is high enough;
    ``{row: first row of its cluster}``. Each bucket is compared against its first member only, which
    keeps the work linear when many prompts share a template."""
    import numpy as np

    prime = np.uint64(4294967311)  # > 2**32, so (a*x + b) never overflows 64 bits
    rng = np.random.default_rng(20230328)  # fixed: the same frame always gives the same flags
    n_hash = bands * rows_per_band
    a = rng.integers(1, 2**32 - 1, n_hash, dtype=np.uint64)
    b = rng.integers(0, 2**32 - 1, n_hash, dtype=np.uint64)
    sets = {}
    signatures = np.empty((len(rows), n_hash), dtype=np.uint64)
    for k, i in enumerate(rows):
        s = sets[i] = _shingles(prompts[i])
        x = np.fromiter((zlib.crc32(t.encode("utf-8")) for t in s), dtype=np.uint64, count=len(s))
        signatures[k] = ((np.outer(x, a) + b) % prime).min(axis=0)
    parent = {i: i for i in rows}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for band in range(bands):
        buckets: dict[bytes, int] = {}
        part = signatures[:, band * rows_per_band:(band + 1) * rows_per_band]
        for k, i in enumerate(rows):
            key = part[k].tobytes()
            first = buckets.setdefault(key, i)
            if first == i:
                continue
            s1, s2 = sets[first], sets[i]
            if len(s1 & s2) / len(s1 | s2) >= threshold:
                ra, rb = find(first), find(i)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    return {i: find(i) for i in rows if find(i) != i}
