"""Typed errors raised by the gpt4all-magic library.

Every message is one line that names the next step. The magics turn any
:class:`Gpt4AllError` into an IPython ``UsageError`` (one line, no traceback);
library users catch the classes below.

Map of the hierarchy::

    Gpt4AllError
    ├── ModelError
    │   ├── ModelNotFoundError      unknown name or missing file
    │   ├── NoDefaultModelError     nothing bundled, nothing configured
    │   ├── InvalidModelFileError   not GGUF, truncated, random bytes
    │   ├── ModelLoadError          llama.cpp refused the file
    │   ├── NotEnoughMemoryError    RAM needed exceeds free RAM
    │   └── ModelNotDownloadedError catalog model not on disk yet
    ├── GenerationError
    │   ├── EmptyPromptError
    │   ├── ContextOverflowError    prompt does not fit the context window
    │   ├── ModelBusyError          another caller holds the model
    │   ├── ScoringNotSupportedError
    │   └── StructuredOutputError   an answer that does not fit its schema (after one retry), or cut short
    ├── InvalidOptionError          a generation option or setting out of range
    ├── SchemaError                 a schema that is not valid, or uses what a grammar cannot enforce
    ├── DownloadError
    │   ├── OfflineError            no network / HF_HUB_OFFLINE
    │   ├── RemoteFileNotFoundError wrong repo or filename (lists alternatives)
    │   ├── GatedRepoError          needs a token
    │   ├── ChecksumMismatchError   bytes do not match the expected hash
    │   └── NotEnoughDiskError
    ├── RemoteError                 OpenAI-compatible server problems
    │   ├── RemoteConnectionError
    │   ├── RemoteAuthError
    │   └── RemoteTimeoutError
    ├── BatchInputError             bad DataFrame / template for batch work
    │   └── TaskDataError           a task's dataset is missing, offline, or not in the adapter's schema
    ├── MissingDependencyError      an optional extra is not installed (names the pip command)
    └── DocsError                   local document collections (g4.docs, --docs, @docs:NAME)
        ├── CollectionNotFoundError no collection of that name
        ├── IndexMismatchError      index built with another embedding model or dimension
        └── DocumentError           a file that cannot be indexed (unsupported, unreadable, no text layer)

    KeyboardInterrupt
    └── GenerationInterrupted       Ctrl-C mid-generation; carries the partial result
"""

from __future__ import annotations

__all__ = [
    "JOB_ENDING_ERRORS",
    "BatchInputError",
    "ChecksumMismatchError",
    "ContextOverflowError",
    "CollectionNotFoundError",
    "DocsError",
    "DocumentError",
    "DownloadError",
    "EmptyPromptError",
    "GatedRepoError",
    "GenerationError",
    "GenerationInterrupted",
    "Gpt4AllError",
    "InvalidModelFileError",
    "IndexMismatchError",
    "InvalidOptionError",
    "MissingDependencyError",
    "ModelBusyError",
    "ModelError",
    "ModelLoadError",
    "ModelNotDownloadedError",
    "ModelNotFoundError",
    "NoDefaultModelError",
    "NotEnoughDiskError",
    "NotEnoughMemoryError",
    "OfflineError",
    "RemoteAuthError",
    "RemoteConnectionError",
    "RemoteError",
    "RemoteFileNotFoundError",
    "RemoteTimeoutError",
    "SchemaError",
    "ScoringNotSupportedError",
    "StructuredOutputError",
    "TaskDataError",
]


class Gpt4AllError(Exception):
    """Base class of every error this package raises on purpose."""


class ModelError(Gpt4AllError):
    """A model could not be found, read or loaded."""


class ModelNotFoundError(ModelError):
    """No model matches the name or path given."""


class NoDefaultModelError(ModelError):
    """No model is loaded, none is configured, and the bundled one is missing."""


class InvalidModelFileError(ModelError):
    """The file is not a usable GGUF file (wrong magic, truncated, corrupt)."""


class ModelLoadError(ModelError):
    """llama.cpp could not load a file that looked like GGUF."""


class NotEnoughMemoryError(ModelError):
    """Loading the model would need more RAM than is free."""


class ModelNotDownloadedError(ModelError):
    """A catalog model (or a Hub file) is known but not on disk yet.

    The message names the magics that fetch it; :meth:`for_python` words the same error for code
    (``gpt4all_magic.download`` / ``load(..., download=True)``).
    """

    def __init__(self, message: str = "", *, name: str = "", size: str | None = None, in_catalog: bool = True):
        self.name, self.size, self.in_catalog = name, size, in_catalog
        super().__init__(message or self._message(python=False))

    def _message(self, *, python: bool) -> str:
        name, size = self.name, f" ({self.size})" if self.size else ""
        if python:
            what = (f"{name} is in the catalog but not downloaded yet{size}" if self.in_catalog
                    else f"{name} is neither a local file nor in the Hugging Face cache")
            return (f"{what}; run `%gpt4all download {name}` (or gpt4all_magic.download({name!r})), or load it "
                    f"with download=True: gpt4all_magic.load({name!r}, download=True).")
        if self.in_catalog:
            return (f"{name} is in the catalog but not downloaded yet{size}; run `%gpt4all download {name}` "
                    f"or `%gpt4all load {name} --download`.")
        return (f"No local file {name} and it is not in the Hugging Face cache; download it with "
                f"`%gpt4all download {name}`, or check the path.")

    def for_python(self) -> ModelNotDownloadedError:
        """The same error, worded for Python code rather than the magics."""
        return ModelNotDownloadedError(self._message(python=True), name=self.name, size=self.size,
                                       in_catalog=self.in_catalog)


class GenerationError(Gpt4AllError):
    """Generation could not start or run."""


class EmptyPromptError(GenerationError):
    """The prompt is empty or whitespace only."""


class ContextOverflowError(GenerationError):
    """The prompt does not fit into the model's context window."""

    def __init__(self, message: str, *, prompt_tokens: int = 0, n_ctx: int = 0):
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx


class ModelBusyError(GenerationError):
    """Another caller (chat panel, batch job) holds the model for too long."""


class ScoringNotSupportedError(GenerationError):
    """The backend cannot compute log-likelihoods."""


class StructuredOutputError(GenerationError):
    """A typed answer did not validate (after one retry with the error in the prompt), or ``max_tokens`` cut
    it before the JSON was complete; ``status`` is ``"invalid"`` or ``"truncated"``, ``result`` keeps the
    text."""

    def __init__(self, message: str, *, status: str, result: object = None, error: str | None = None):
        super().__init__(message)
        self.status = status
        self.result = result
        self.error = error


class SchemaError(Gpt4AllError, ValueError):
    """A schema (pydantic model, JSON Schema, labels) that is not valid or uses a feature the grammar
    cannot enforce; refused before any work."""


class InvalidOptionError(Gpt4AllError, ValueError):
    """A generation option or setting has an invalid value; ``setting`` names it when it is a load setting
    (so a magic can say ``--n-ctx`` where the library says ``n_ctx``)."""

    def __init__(self, message: str, *, setting: str | None = None):
        super().__init__(message)
        self.setting = setting


class DownloadError(Gpt4AllError):
    """A model download failed; nothing half-written is kept."""


class OfflineError(DownloadError):
    """The network (or the Hub) cannot be reached, or offline mode is on."""


class RemoteFileNotFoundError(DownloadError):
    """The repository or file does not exist on the Hub."""


class GatedRepoError(DownloadError):
    """The repository needs an access token (gated or private)."""


class ChecksumMismatchError(DownloadError):
    """The downloaded bytes do not match the expected hash."""


class NotEnoughDiskError(DownloadError):
    """The disk has less free space than the file needs."""


class RemoteError(Gpt4AllError):
    """An OpenAI-compatible server failed or refused a request."""


class RemoteConnectionError(RemoteError):
    """The server cannot be reached or dropped the connection."""


class RemoteAuthError(RemoteError):
    """The server refused the API key (HTTP 401/403)."""


class RemoteTimeoutError(RemoteError):
    """The server did not answer within the configured timeout."""


class BatchInputError(Gpt4AllError, ValueError):
    """A DataFrame, column or template given to a batch function is unusable."""


class TaskDataError(BatchInputError):
    """A task's dataset could not be read: not cached while offline, no such split, or a schema the
    task's adapter cannot read (the message names the missing field)."""


class MissingDependencyError(Gpt4AllError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    @classmethod
    def for_extra(cls, module: str, extra: str, purpose: str) -> MissingDependencyError:
        return cls(f"{purpose} needs {module}, which is not installed; install it with "
                   f"`pip install \"gpt4all-magic[{extra}]\"`.")


class DocsError(Gpt4AllError):
    """A document collection cannot be built, found or searched; also a missing ``[docs]`` extra."""


class CollectionNotFoundError(DocsError):
    """No collection has this name."""


class IndexMismatchError(DocsError):
    """The collection was indexed with another embedding model or vector dimension."""


class DocumentError(DocsError):
    """One file cannot be indexed: unsupported type, unreadable, corrupt, or a PDF without a text layer.
    ``add`` skips such a file with a note; naming it alone raises this."""


class GenerationInterrupted(KeyboardInterrupt):
    """Ctrl-C (a kernel interrupt) stopped a generation; ``result`` holds the partial answer.

    It is a ``KeyboardInterrupt`` so that loops over many prompts still stop; the magics catch it
    and keep the partial text as the cell's result.
    """

    def __init__(self, result: object):
        super().__init__("generation interrupted")
        self.result = result


# Errors about the server, the model or the connection rather than one request: every later request
# would hit them too, so a batch job ends on them (keeping the rows finished) instead of marking one row,
# and a probe (token counting, the scoring self-check) passes them on instead of trying another way.
JOB_ENDING_ERRORS: tuple[type[Gpt4AllError], ...] = (
    RemoteAuthError, RemoteConnectionError, RemoteTimeoutError, ModelNotFoundError, ScoringNotSupportedError)
