"""The two typed settings models: :class:`GenerationOptions` (one generation) and :class:`LoadSettings`
(how models load and how long callers wait for them).

Generation options feed validation, the magic's flags and the chat widget's controls. Names and
defaults follow GPT4All (``max_tokens=200, temp=0.7, top_k=40, top_p=0.4, min_p=0.0,
repeat_penalty=1.18, repeat_last_n=64``); ``seed``, ``stop`` and ``system_prompt`` are ours. Load
settings are shared by the traitlets (``%config Gpt4AllMagics``), ``%gpt4all load``, ``load()`` and
the manager, and validated here only.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import InvalidOptionError

__all__ = ["AUTO_THREADS", "PARALLEL_ROWS", "GenerationOptions", "LoadSettings", "OptionSpec", "option_specs"]

SEED_MAX = 2**32 - 2  # llama.cpp treats 0xFFFFFFFF as "random"
# Rows a local batch job generates together (KV memory may allow fewer). Measured on the bundled model,
# 2 cores, 128 rows: 64 at once was 1.13x faster than 32 for generate_rows and 1.10x for extract (rows
# join as others finish, and a job ends with a tail of few rows; fewer waves, less tail).
PARALLEL_ROWS = 64


def _opt(default: Any, help: str, *, flags: tuple[str, ...] = (), minimum: float | None = None,
         maximum: float | None = None, exclusive_minimum: bool = False, step: float | None = None,
         default_factory: Any = None) -> Any:
    meta = {"help": help, "flags": flags, "minimum": minimum, "maximum": maximum,
            "exclusive_minimum": exclusive_minimum, "step": step}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class OptionSpec:
    """What one option is: used to build argparse flags and widget controls."""

    name: str
    kind: type  # int, float, str, or list (of str)
    default: Any
    help: str
    flags: tuple[str, ...]
    minimum: float | None
    maximum: float | None
    exclusive_minimum: bool
    step: float | None
    optional: bool  # None is a valid value

    @property
    def cli_flags(self) -> tuple[str, ...]:
        return self.flags or ("--" + self.name.replace("_", "-"),)

    def describe_range(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            left = "(" if self.exclusive_minimum else "["
            return f"{left}{self.minimum}, {self.maximum}]"
        if self.minimum is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {self.minimum}"
        return ""


@dataclass(frozen=True)
class GenerationOptions:
    """Sampling options for one generation. Invalid values raise :class:`InvalidOptionError`."""

    max_tokens: int = _opt(200, "Maximum number of tokens to generate.",
                           flags=("-n", "--max-tokens"), minimum=1, maximum=1_000_000)
    temp: float = _opt(0.7, "Sampling temperature; 0 means greedy (deterministic).",
                       flags=("-t", "--temp", "--temperature"), minimum=0.0, maximum=2.0, step=0.05)
    top_k: int = _opt(40, "Sample from the k most likely tokens; 0 disables the limit.",
                      minimum=0, maximum=100_000)
    top_p: float = _opt(0.4, "Nucleus sampling: keep the smallest set of tokens with this total probability.",
                        minimum=0.0, maximum=1.0, exclusive_minimum=True, step=0.05)
    min_p: float = _opt(0.0, "Drop tokens less likely than min_p times the most likely one.",
                        minimum=0.0, maximum=1.0, step=0.01)
    repeat_penalty: float = _opt(1.18, "Penalty for repeating recent tokens; 1.0 disables it.",
                                 minimum=0.0, maximum=5.0, exclusive_minimum=True, step=0.01)
    repeat_last_n: int = _opt(64, "How many recent tokens the repeat penalty looks at.",
                              minimum=0, maximum=1_000_000)
    seed: int | None = _opt(None, "Random seed; the same seed and options give the same answer. "
                                  "Unset: a fresh seed is drawn and recorded.",
                            flags=("--seed",), minimum=0, maximum=SEED_MAX)
    stop: tuple[str, ...] = _opt((), "Stop generating when this text appears (repeatable).",
                                 flags=("--stop",), default_factory=tuple)
    system_prompt: str | None = _opt(None, "System prompt that sets the assistant's behaviour.",
                                     flags=("-s", "--system"))

    def __post_init__(self) -> None:
        for spec in option_specs():
            value = _coerce(spec, getattr(self, spec.name))
            _check_range(spec, value)
            object.__setattr__(self, spec.name, value)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None,
                     base: GenerationOptions | None = None) -> GenerationOptions:
        """Options from ``base`` (or the defaults) updated with ``values``; unknown keys are errors."""
        values = dict(values or {})
        _reject_unknown(values)
        current = dataclasses.asdict(base) if base is not None else {}
        current.update({k: v for k, v in values.items()})
        return cls(**current)

    def replace(self, **changes: Any) -> GenerationOptions:
        """A copy with some options changed (validated)."""
        _reject_unknown(changes)
        return dataclasses.replace(self, **changes)

    def with_seed(self) -> GenerationOptions:
        """A copy whose seed is set: the given one, or a freshly drawn one (so it can be recorded)."""
        if self.seed is not None:
            return self
        return dataclasses.replace(self, seed=random.randint(0, SEED_MAX))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["stop"] = list(self.stop)
        return data

    def changed(self) -> dict[str, Any]:
        """The options that differ from the defaults."""
        default = GenerationOptions()
        return {k: v for k, v in self.to_dict().items() if v != default.to_dict()[k]}


_SPECS: tuple[OptionSpec, ...] | None = None
_KINDS = {"int": int, "float": float, "tuple[str, ...]": list, "str | None": str, "int | None": int}


def option_specs() -> tuple[OptionSpec, ...]:
    """The option definitions, in declaration order."""
    global _SPECS
    if _SPECS is None:
        specs = []
        for f in dataclasses.fields(GenerationOptions):
            m = f.metadata
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            specs.append(OptionSpec(
                name=f.name, kind=_KINDS[str(f.type)], default=default, help=m["help"],
                flags=m["flags"], minimum=m["minimum"], maximum=m["maximum"],
                exclusive_minimum=m["exclusive_minimum"], step=m["step"],
                optional="None" in str(f.type)))
        _SPECS = tuple(specs)
    return _SPECS


# Names other tools use for our options, for "did you mean" hints.
_OTHER_NAMES = {"temperature": "temp", "max_new_tokens": "max_tokens", "n_predict": "max_tokens",
                "system": "system_prompt", "repetition_penalty": "repeat_penalty", "stop_sequences": "stop"}


def _reject_unknown(values: Iterable[str]) -> None:
    names = [s.name for s in option_specs()]
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(key, names + list(_OTHER_NAMES), n=1, cutoff=0.5)
            close = [_OTHER_NAMES.get(c, c) for c in close]
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise InvalidOptionError(
                f"Unknown generation option '{key}'.{hint} Valid options: {', '.join(names)}.")


def _coerce(spec: OptionSpec, value: Any) -> Any:
    if value is None:
        if spec.optional:
            return None
        raise InvalidOptionError(f"{spec.name} must be set (default {spec.default!r}).")
    if spec.kind is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise InvalidOptionError(f"stop must be a list of non-empty strings, got {value!r}.")
        return tuple(value)
    if spec.kind is str:
        if not isinstance(value, str):
            raise InvalidOptionError(f"{spec.name} must be text, got {type(value).__name__}.")
        return value
    if isinstance(value, bool):
        raise InvalidOptionError(f"{spec.name} must be a number, got {value!r}.")
    try:
        if spec.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidOptionError(
            f"{spec.name} must be {'an integer' if spec.kind is int else 'a number'}, got {value!r}."
        ) from None
    if number != number:  # NaN
        raise InvalidOptionError(f"{spec.name} must be a number, got NaN.")
    return number


def _check_range(spec: OptionSpec, value: Any) -> None:
    if value is None or spec.kind in (list, str):
        return
    low, high = spec.minimum, spec.maximum
    too_low = low is not None and (value <= low if spec.exclusive_minimum else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        flag = next(f for f in spec.cli_flags if f.startswith("--"))
        raise InvalidOptionError(
            f"{spec.name} must be in {spec.describe_range()}, got {value!r}; "
            f"e.g. {flag} {spec.default if spec.default is not None else low}.")


# -- load settings ------------------------------------------------------------------------------------

AUTO_THREADS = 0  # n_threads: use the physical cores this process may run on


@dataclass(frozen=True)
class LoadSettings:
    """How models load and how long callers wait for a busy model. Invalid values raise
    :class:`InvalidOptionError` naming the setting and a valid example."""

    n_ctx: int = 4096
    n_threads: int = AUTO_THREADS
    n_batch: int = 512
    busy_timeout: float | None = 300.0  # None: wait as long as it takes
    models_dir: Path | None = None  # None: $GPT4ALL_MAGIC_MODELS_DIR, else ~/.cache/gpt4all-magic/models

    HELP = {
        "n_ctx": "Context window in tokens for models loaded without --n-ctx (capped at the model's training "
                 "context).",
        "n_threads": "CPU threads for llama.cpp; 0 = the number of physical cores.",
        "n_batch": "Prompt tokens llama.cpp evaluates per step (capped at n_ctx).",
        "busy_timeout": "Seconds a cell waits for the model while another task (chat panel, batch job) uses it, "
                        "before failing with 'model busy'.",
        "models_dir": "Folder of .gguf models. Empty: $GPT4ALL_MAGIC_MODELS_DIR or ~/.cache/gpt4all-magic/models.",
    }

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_ctx", _whole(self.n_ctx, "n_ctx", 16, "must be at least 16"))
        object.__setattr__(self, "n_threads", _whole(self.n_threads, "n_threads", 0,
                                                     "must be 0 (auto) or a positive number"))
        object.__setattr__(self, "n_batch", _whole(self.n_batch, "n_batch", 1, "must be at least 1"))
        timeout = self.busy_timeout
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
                raise InvalidOptionError(f"busy_timeout must be a number of seconds above 0, got {timeout!r}.",
                                         setting="busy_timeout")
            object.__setattr__(self, "busy_timeout", float(timeout))
        if self.models_dir is not None:
            if not isinstance(self.models_dir, (str, os.PathLike)):
                raise InvalidOptionError(f"models_dir must be a folder path, got {type(self.models_dir).__name__}.",
                                         setting="models_dir")
            text = os.fspath(self.models_dir)
            object.__setattr__(self, "models_dir", Path(text).expanduser() if text.strip() else None)

    def replace(self, **changes: Any) -> LoadSettings:
        """A copy with some settings changed (validated)."""
        unknown = [k for k in changes if k not in self.HELP]
        if unknown:
            raise InvalidOptionError(f"Unknown load setting '{unknown[0]}'; the settings are "
                                     f"{', '.join(self.HELP)}.", setting=unknown[0])
        return dataclasses.replace(self, **changes)


def _whole(value: Any, name: str, minimum: int, rule: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidOptionError(f"{name} {rule}, got {value!r}.", setting=name)
    return value
