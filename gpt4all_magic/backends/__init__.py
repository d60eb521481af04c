"""Engines behind the manager: ``llama_cpp`` (default, in-process), ``openai`` (remote servers) and
``fake`` (scripted, for tests). Each is imported only when used."""

from .base import Backend, LoadedModel, ModelRef, ScoreRequest, ScoreResult, StreamStats

__all__ = ["Backend", "LoadedModel", "ModelRef", "ScoreRequest", "ScoreResult", "StreamStats"]
