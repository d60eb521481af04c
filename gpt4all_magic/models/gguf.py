"""Read a GGUF file's header and metadata without loading the model, and reject bad files early.

The reader only parses: it never evaluates a chat template or anything else the file says. It checks
the magic, the version, every length against the file size, and that all tensor data lies inside the
file, so a truncated download or random bytes are refused before llama.cpp sees them.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidModelFileError
from ..text import human_bytes, human_count

__all__ = ["GGUFInfo", "read_gguf"]

GGUF_MAGIC = b"GGUF"
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q")
_KEEP_ARRAY = 64  # longer arrays (vocabularies, merges) are recorded by length only

# llama.cpp's llama_ftype values (general.file_type) -> quantization name.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M",
    30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE",
}


@dataclass
class GGUFInfo:
    """What a GGUF file says about itself."""

    path: Path
    version: int
    file_size: int
    metadata: dict[str, Any]
    n_tensors: int
    n_parameters: int
    data_end: int  # byte offset just past the last tensor's data
    _tokens_offset: int | None = field(default=None, repr=False)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name") or self.path.stem)

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if value is not None else None

    @property
    def quantization(self) -> str:
        ftype = self.metadata.get("general.file_type")
        if ftype is None:
            return "unknown"
        return FILE_TYPES.get(int(ftype), f"type {ftype}")

    @property
    def chat_template(self) -> str | None:
        template = self.metadata.get("tokenizer.chat_template")
        return template if isinstance(template, str) else None

    @property
    def parameters_label(self) -> str:
        return human_count(self.n_parameters)

    def token_text(self, token_id: int | None) -> str | None:
        """The text of one vocabulary entry (e.g. the EOS token), read on demand."""
        if token_id is None or self._tokens_offset is None:
            return None
        with open(self.path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            reader = _Reader(buf, self.file_size)
            reader.pos = self._tokens_offset
            count = reader.u64()
            if not 0 <= token_id < count:
                return None
            reader.skip_strings(token_id)
            return reader.string()

    def summary(self) -> dict[str, Any]:
        """The facts a user asks about first, as a flat dict."""
        md = self.metadata
        return {
            "name": self.name,
            "file": str(self.path),
            "file_size": human_bytes(self.file_size),
            "architecture": self.architecture,
            "parameters": self.parameters_label,
            "quantization": self.quantization,
            "context_length": self.context_length,
            "embedding_length": md.get(f"{self.architecture}.embedding_length"),
            "layers": md.get(f"{self.architecture}.block_count"),
            "vocab_size": md.get("tokenizer.ggml.tokens"),
            "tokenizer": md.get("tokenizer.ggml.model"),
            "bos_token": self.token_text(md.get("tokenizer.ggml.bos_token_id")),
            "eos_token": self.token_text(md.get("tokenizer.ggml.eos_token_id")),
            "chat_template": "yes" if self.chat_template else "no",
            "license": md.get("general.license"),
            "gguf_version": self.version,
        }


class _Reader:
    def __init__(self, buf: Any, size: int):
        self.buf, self.size, self.pos = buf, size, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.size:
            raise _Truncated(self.pos + n)
        data = self.buf[self.pos:self.pos + n]
        self.pos += n
        return data

    def scalar(self, fmt: str) -> Any:
        n = struct.calcsize(fmt)
        if self.pos + n > self.size:
            raise _Truncated(self.pos + n)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return value

    def u32(self) -> int:
        return self.scalar("<I")

    def u64(self) -> int:
        return self.scalar("<Q")

    def string(self) -> str:
        return self.take(self.u64()).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        self.skip_strings(1)

    def skip_strings(self, count: int) -> None:
        # Vocabularies hold ~50k-250k strings: a tight local loop keeps `info`/`list` fast.
        pos, buf, size, unpack = self.pos, self.buf, self.size, _U64.unpack_from
        for _ in range(count):
            if pos + 8 > size:
                raise _Truncated(pos + 8)
            pos += 8 + unpack(buf, pos)[0]
        if pos > size:
            raise _Truncated(pos)
        self.pos = pos

    def value(self, vtype: int, key: str, info: dict[str, Any]) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype, count = self.u32(), self.u64()
            if count > self.size:
                raise _Corrupt(f"array '{key}' claims {count} elements")
            if key == "tokenizer.ggml.tokens":
                info["tokens_offset"] = self.pos - 8
            if etype == _STRING:
                if count > _KEEP_ARRAY:
                    self.skip_strings(count)
                    return count
                return [self.string() for _ in range(count)]
            if etype in _SCALARS:
                width = struct.calcsize(_SCALARS[etype])
                if count > _KEEP_ARRAY:
                    self.take(width * count)
                    return count
                return [self.scalar(_SCALARS[etype]) for _ in range(count)]
            raise _Corrupt(f"array '{key}' has unsupported element type {etype}")
        raise _Corrupt(f"key '{key}' has unknown value type {vtype}")


class _Truncated(Exception):
    def __init__(self, needed: int, in_data: bool = False):
        self.needed = needed  # bytes the read that failed needed
        self.in_data = in_data  # the header parsed; the tensor data runs past the end


class _Corrupt(Exception):
    pass


_CACHE: dict[tuple[str, int, int], GGUFInfo] = {}


def read_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Parse a GGUF file's header; raise :class:`InvalidModelFileError` for anything unusable.

    Results are cached by (path, size, mtime), so listing models re-reads only files that changed.
    """
    path = Path(path)
    try:
        stat = path.stat()
        fh = open(path, "rb")
    except OSError as exc:
        raise InvalidModelFileError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _CACHE:
        fh.close()
        return _CACHE[key]
    size = stat.st_size
    with fh:
        head = fh.read(4)
        if head != GGUF_MAGIC:
            raise InvalidModelFileError(
                f"{path.name} is not a GGUF model file (it starts with {head!r}, not b'GGUF'); "
                "download a .gguf file, e.g. with `%gpt4all download NAME`.")
        if size < 24:
            raise InvalidModelFileError(_truncated_message(path, size, _Truncated(24)))
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            try:
                info = _CACHE[key] = _parse(path, buf, size)
                return info
            except _Truncated as exc:
                raise InvalidModelFileError(_truncated_message(path, size, exc)) from None
            except (_Corrupt, UnicodeDecodeError, struct.error, OverflowError) as exc:
                raise InvalidModelFileError(
                    f"{path.name} is a corrupt GGUF file ({exc}); delete it and download it again."
                ) from None


def _parse(path: Path, buf: Any, size: int) -> GGUFInfo:
    r = _Reader(buf, size)
    r.pos = 4
    version = r.u32()
    if version not in (2, 3):
        raise _Corrupt(f"unsupported GGUF version {version}; llama.cpp reads versions 2 and 3")
    n_tensors, n_kv = r.u64(), r.u64()
    if n_tensors > size or n_kv > size:
        raise _Corrupt(f"header claims {n_tensors} tensors and {n_kv} keys")
    metadata: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for _ in range(n_kv):
        key = r.string()
        metadata[key] = r.value(r.u32(), key, extra)
    tensors = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.u32()
        if n_dims > 8:
            raise _Corrupt(f"tensor '{name}' has {n_dims} dimensions")
        dims = [r.u64() for _ in range(n_dims)]
        ggml_type, offset = r.u32(), r.u64()
        tensors.append((name, dims, ggml_type, offset))
    alignment = int(metadata.get("general.alignment", 32)) or 32
    data_start = (r.pos + alignment - 1) // alignment * alignment
    n_params, data_end = 0, data_start
    sizes = _quant_sizes()
    for name, dims, ggml_type, offset in tensors:
        count = 1
        for d in dims:
            count *= d
        n_params += count
        if ggml_type in sizes:
            block, type_size = sizes[ggml_type]
            data_end = max(data_end, data_start + offset + count // block * type_size)
        else:
            data_end = max(data_end, data_start + offset)
    if data_end > size:
        raise _Truncated(data_end, in_data=True)
    return GGUFInfo(path=path, version=version, file_size=size, metadata=metadata,
                    n_tensors=n_tensors, n_parameters=n_params, data_end=data_end,
                    _tokens_offset=extra.get("tokens_offset"))


def _quant_sizes() -> dict[int, tuple[int, int]]:
    try:
        from gguf.constants import GGML_QUANT_SIZES
    except ImportError:  # the reader still works; only the truncation check loses precision
        return {0: (1, 4), 1: (1, 2)}
    return {int(k): (int(v[0]), int(v[1])) for k, v in GGML_QUANT_SIZES.items()}


def _truncated_message(path: Path, size: int, cut: _Truncated) -> str:
    if cut.in_data:
        return (f"{path.name} is truncated: its tensors need {human_bytes(cut.needed)}, but only "
                f"{human_bytes(size)} is on disk; delete it and download it again.")
    # A header cut short says nothing reliable about the full size: name only what is known.
    return (f"{path.name} is truncated: it ends inside its header, after {human_bytes(size)}; "
            "delete it and download it again.")
