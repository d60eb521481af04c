"""What every batch function shares: input checks, a progress bar, Ctrl-C that keeps finished rows, a
checkpoint file that lets a rerun skip them, the result frame in input order, and scoring a chunk of
rows through the manager with a failing row marked on its own.

A :class:`Job` runs chunks of row positions. Each finished row is recorded as a dict of result
columns (and appended to the checkpoint); on Ctrl-C the rows finished so far come back with a
``status`` column marking the rest ``"interrupted"`` (partial answer kept) or ``"not_run"``; an
error that stops the job after some rows finished (the server went away) keeps them the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..engines.base import ScoreRequest, ScoreResult
from ..errors import JOB_ENDING_ERRORS, BatchInputError, ContextOverflowError, Gpt4AllError
from ..frames import check_columns, check_frame, text_cells
from ..manager import ModelManager
from ..models import speeds
from ..text import human_duration

__all__ = ["Job", "PathLike", "check_columns", "check_frame", "chunked", "each_model", "estimate_seconds", "failed_row",
           "peek_checkpoint", "reserved", "row_key", "run_chunk", "sorted_by_length", "text_cells"]

PathLike = str | os.PathLike[str]

STATUS_OK = "ok"
_MAGIC = "gpt4all_magic checkpoint"


def row_key(label: Any, payload: Any) -> str:
    """A stable key for a row: its index label and the inputs that decide its result."""
    data = json.dumps([repr(label), payload], ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha1(data.encode("utf-8")).hexdigest()


def peek_checkpoint(path: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The header of an existing checkpoint file (None if there is none)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.exists():
        return None
    with p.open(encoding="utf-8") as f:
        first = f.readline()
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != _MAGIC:
        raise BatchInputError(f"{p} exists but is not a gpt4all-magic checkpoint; choose another path or delete it.")
    return header


class Job:
    """One batch run over the rows of a frame: progress, checkpoint, Ctrl-C, results in input order."""

    def __init__(self, df: Any, kind: str, job: dict[str, Any], keys: Sequence[str], *,
                 checkpoint: str | os.PathLike[str] | None = None, progress: bool = True, desc: str = "",
                 header: dict[str, Any] | None = None, unit: str = "row"):
        self.df = df
        self.unit = unit
        self.estimate: float | None = None  # seconds for the rows left, from the measured speeds (see estimate_seconds)
        self._header = header or {}
        self.kind = kind
        self.job = job
        self.keys = list(keys)
        self.results: dict[int, dict[str, Any]] = {}
        self.interrupted = False
        self.stopped_by: str | None = None  # the error that ended the job early, rows kept
        self.tokens = 0
        self.resumed = 0
        self._path = Path(checkpoint).expanduser() if checkpoint is not None else None
        self._file: Any = None
        self._bar: Any = None
        self._progress = progress
        self._desc = desc or kind
        self._started = time.perf_counter()
        if self._path is not None:
            self._restore()

    # -- checkpoint ------------------------------------------------------------------------------
    def _restore(self) -> None:
        header = peek_checkpoint(self._path)
        if header is not None:
            if header.get("kind") != self.kind or header.get("job") != json.loads(json.dumps(self.job, default=str)):
                diff = _describe_diff(header.get("job") or {}, self.job) if header.get("kind") == self.kind else (
                    f"it holds a {header.get('kind')} job")
                raise BatchInputError(
                    f"The checkpoint {self._path} was written by a different job ({diff}); pass the same "
                    "arguments to resume, or another checkpoint path to start over.")
            wanted = {k: i for i, k in enumerate(self.keys)}
            positions: dict[str, list[int]] = {}
            for i, k in enumerate(self.keys):
                positions.setdefault(k, []).append(i)
            with self._path.open(encoding="utf-8") as f:
                f.readline()
                for line in f:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a crash: that row runs again
                    if isinstance(entry, dict) and entry.get("key") in wanted:
                        for i in positions[entry["key"]]:
                            self.results[i] = entry["row"]
            self.resumed = len(self.results)
        else:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.open("w", encoding="utf-8") as f:
                f.write(json.dumps({"format": _MAGIC, "kind": self.kind, "job": self.job, **self._header},
                                   default=str) + "\n")

    def todo(self) -> list[int]:
        """Row positions without a result yet."""
        return [i for i in range(len(self.keys)) if i not in self.results]

    # -- recording -------------------------------------------------------------------------------
    def record(self, pos: int, row: dict[str, Any], *, tokens: int = 0) -> None:
        """Keep a row's result; rows with status "ok" also go to the checkpoint (the others run again
        on resume: an interrupted row, or one that may fit after reloading with a larger window)."""
        self.results[pos] = row
        self.tokens += tokens
        if row.get("status") == STATUS_OK and self._path is not None:
            if self._file is None:
                self._file = self._path.open("a", encoding="utf-8")
            self._file.write(json.dumps({"key": self.keys[pos], "row": row}, default=_json_default) + "\n")
            self._file.flush()
        if self._bar is not None:
            self._bar.update(1)
            if self.tokens:
                self._bar.set_postfix_str(f"{self.tokens_per_second:.0f} tok/s", refresh=False)

    # -- running ---------------------------------------------------------------------------------
    def run(self, chunks: Iterable[list[int]], work: Callable[[list[int]], None]) -> None:
        """Call ``work`` on each chunk of positions; Ctrl-C stops and keeps what is recorded."""
        todo = self.todo()
        if self._progress and todo:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=len(self.keys), initial=len(self.keys) - len(todo), desc=self._first_line(todo),
                             unit=self.unit, file=sys.stderr, dynamic_ncols=True)
        self._started = time.perf_counter()
        try:
            for chunk in chunks:
                if chunk:
                    work(chunk)
        except KeyboardInterrupt:
            self.interrupted = True
        except Gpt4AllError as exc:
            if len(self.results) <= self.resumed:
                raise  # nothing finished in this run: the error itself is the answer
            self.stopped_by = str(exc)  # keep the finished rows; the rest stay "not_run"
        finally:
            if self._bar is not None:
                self._bar.close()
            if self._file is not None:
                self._file.close()
                self._file = None
        if self._progress and self.estimate is not None and todo and not self.interrupted:
            print(f"{self._desc}: {len(todo):,} {self.unit}s in {human_duration(self.elapsed)} (estimated "
                  f"≈ {human_duration(self.estimate)})", file=sys.stderr)
        if self.interrupted:
            done = sum(1 for r in self.results.values() if r.get("status") != "interrupted")
            where = f"; rerun the same call to resume from {self._path}" if self._path else (
                "; pass checkpoint='file.jsonl' to make reruns skip finished rows")
            print(f"note: interrupted: {done} of {len(self.keys)} rows finished, the others are marked in the "
                  f"'status' column{where}.", file=sys.stderr)
        elif self.stopped_by is not None:
            where = f"; fix it and rerun the same call to resume from {self._path}" if self._path else (
                "; fix it and rerun (pass checkpoint='file.jsonl' to make reruns skip finished rows)")
            print(f"note: stopped after {len(self.results)} of {len(self.keys)} rows ({self.stopped_by}); the "
                  f"others are marked 'not_run'{where}.", file=sys.stderr)

    def _first_line(self, todo: list[int]) -> str:
        """The bar's description, with the estimate for the rows left when the model's speed is known."""
        if self.estimate is None:
            return self._desc
        return f"{self._desc} (≈ {human_duration(self.estimate)} for {len(todo):,} {self.unit}s)"

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    @property
    def tokens_per_second(self) -> float:
        """Tokens of this run per second of it, overall (rows run together, so not one row's speed)."""
        return self.tokens / max(self.elapsed, 1e-9)

    def frame(self, columns: Sequence[str], attrs: dict[str, Any] | None = None) -> Any:
        """The input frame plus the result columns and ``status`` / ``error``, in input order."""
        out = self.df.copy()
        n = len(self.keys)
        for column in list(columns) + ["status", "error"]:
            values = []
            for i in range(n):
                row = self.results.get(i)
                if row is None:
                    values.append("not_run" if column == "status" else None)
                else:
                    values.append(row.get(column))
            out[column] = values
        out.attrs.update(attrs or {})
        out.attrs.update({"interrupted": self.interrupted, "resumed_rows": self.resumed,
                          "stopped_by": self.stopped_by})
        return out


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _describe_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    new = json.loads(json.dumps(new, default=str))
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            return f"{key}: {old.get(key)!r} then, {new.get(key)!r} now"
    return "different settings"


def reserved(df: Any, columns: Iterable[str]) -> None:
    """Refuse a frame that already has one of the result columns (``status`` and ``error`` of an
    earlier batch run are replaced: they describe the latest run)."""
    clash = [c for c in columns if c in df.columns]
    if clash:
        raise BatchInputError(
            f"The DataFrame already has the result column(s) {', '.join(map(repr, clash))}; drop or rename them "
            f"first, e.g. df.drop(columns={clash!r}).")


def chunked(positions: Sequence[int], size: int) -> list[list[int]]:
    return [list(positions[i:i + size]) for i in range(0, len(positions), size)]


def sorted_by_length(texts: Sequence[str], positions: Sequence[int]) -> list[int]:
    """Longest first, equal prefixes together: rows that finish together share a chunk."""
    return sorted(positions, key=lambda i: (-len(texts[i]) // 64, texts[i]))


@contextlib.contextmanager
def each_model(manager: ModelManager, models: Sequence[Any] | None) -> Iterator[list[Any]]:
    """Yield the models to run (None: the one loaded now); afterwards, load again what was loaded before."""
    before = manager.current
    again = None
    if before is not None:
        again = before.ref.path if before.ref.source == "file" and before.ref.path else before.ref.name
    names = [again if m is None else m for m in models] if models else [again]
    try:
        yield names
    finally:
        current = manager.current
        if before is not None and (current is None or current.ref != before.ref):
            manager.load(again, n_ctx=before.n_ctx)


def estimate_seconds(manager: ModelManager, model: Any, texts: Sequence[str], generated_tokens: int = 0) -> float | None:
    """Seconds to evaluate ``texts`` and generate ``generated_tokens`` with the loaded model, from the speeds
    ``%gpt4all bench`` measured for its file on this machine (None when it has not been measured). Tokens
    are counted on up to 64 of the texts and scaled by characters for the rest."""
    loaded = manager.current
    path = loaded.ref.path if loaded is not None else None
    if path is None or not texts or speeds.lookup(path) is None:
        return None
    step = max(1, len(texts) // 64)
    sample = list(texts[::step])[:64]
    chars = sum(len(t) for t in sample)
    counted = sum(manager.count_text(t, model=model).tokens for t in sample)
    tokens = counted / chars * sum(len(t) for t in texts) if chars else 0.0
    return speeds.estimate_seconds(path, tokens, generated_tokens)


# -- scoring a chunk of rows ------------------------------------------------------------------------

def run_chunk(manager: ModelManager, model: Any, positions: list[int], requests: list[list[ScoreRequest]],
              on_row: Callable[[int, list[ScoreResult]], None], on_error: Callable[[int, Exception], None], *,
              chat: bool = False, system_prompt: str | None = None) -> None:
    """Score the requests of several rows in one call; if a row fails (too long, a server error for
    that text), score row by row so only that row is marked. Errors that are not about a row (the
    server cannot score, went away, timed out, refused the key) end the job; its Job keeps the rows
    finished so far."""
    flat = [r for rs in requests for r in rs]

    def score(reqs: list[ScoreRequest]) -> list[ScoreResult]:
        return manager.score(reqs, chat=chat, system_prompt=system_prompt, model=model)

    with manager.acquire("batch scoring"):
        try:
            results = score(flat)
        except JOB_ENDING_ERRORS:
            raise
        except Gpt4AllError:
            results = None
        if results is not None:
            k = 0
            for pos, rs in zip(positions, requests):
                on_row(pos, results[k:k + len(rs)])
                k += len(rs)
            return
        for pos, rs in zip(positions, requests):
            try:
                on_row(pos, score(rs))
            except JOB_ENDING_ERRORS:
                raise
            except Gpt4AllError as exc:
                on_error(pos, exc)


def failed_row(columns: Sequence[str], exc: Exception, label: Any, part: str | None = None) -> dict[str, Any]:
    """A row that could not be done, its error naming the DataFrame row ``label``. The scorer numbers
    the requests of one call ("Request 2 is 3,001 tokens …"): a row's ``part`` (its choices) when
    given, else the row itself, scored alone."""
    text = str(exc)
    match = _REQUEST.match(text)
    if match:
        where = f" ({part} {match.group(1)})" if part else ""
        error = f"Row {label!r}{where}{text[match.end():]}"
    else:
        error = f"Row {label!r}: {text}"
    row: dict[str, Any] = {c: None for c in columns}
    row.update(status="too_long" if isinstance(exc, ContextOverflowError) else "error", error=error)
    return row


_REQUEST = re.compile(r"Request (\d+)(?= is )")
