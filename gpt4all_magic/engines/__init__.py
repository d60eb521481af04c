"""Engines behind the manager: ``llama`` (default, in-process llama.cpp), ``openai`` (OpenAI-compatible
servers) and ``fake`` (scripted, for tests). :mod:`.base` is the seam all three implement; each engine
is imported only when used, and none of them imports the manager or anything above it."""

from .base import Backend, LoadedModel, ModelRef, ScoreRequest, ScoreResult, StreamStats, TokenCount

__all__ = ["Backend", "LoadedModel", "ModelRef", "ScoreRequest", "ScoreResult", "StreamStats", "TokenCount"]
