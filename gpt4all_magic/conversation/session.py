"""A conversation kept in the kernel (:class:`ChatSession`): the chat panel and ``%%gpt4all --chat`` are
thin layers over it. It needs no widgets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from ..engines.base import Message
from ..errors import GenerationInterrupted, InvalidOptionError
from ..manager import GenerationResult, ModelManager, get_manager
from ..options import GenerationOptions

__all__ = ["ChatSession"]


class ChatSession:
    """A conversation kept in memory: each :meth:`send` sees the earlier turns.

    When the history no longer fits the context window, the oldest turns are left out of the prompt
    (and the result's ``notices`` say so); they stay in :attr:`messages`. With ``docs`` the question's best
    chunks from those collections go into the model's copy of each user turn (half of the free context is
    kept for them) and ``result.sources`` cites them; the history keeps the question alone.
    """

    def __init__(self, *, model: str | os.PathLike[str] | None = None, system_prompt: str | None = None,
                 options: GenerationOptions | None = None, manager: ModelManager | None = None,
                 docs: str | Sequence[str] | None = None, docs_k: int = 3, **option_values: Any):
        self.manager = manager or get_manager()
        self.model = model
        self.docs = docs  # collection(s) whose best chunks go into every user turn (g4.docs.add)
        self.docs_k = docs_k
        self.options = GenerationOptions.from_mapping(option_values, base=options)
        if system_prompt is not None:
            self.options = self.options.replace(system_prompt=system_prompt)
        self.messages: list[Message] = []
        self.results: list[GenerationResult] = []

    @property
    def system_prompt(self) -> str | None:
        return self.options.system_prompt

    def send(self, text: str, *, on_text: Callable[[str], None] | None = None,
             should_stop: Callable[[], bool] | None = None, options: GenerationOptions | None = None,
             docs: str | Sequence[str] | None = None, docs_query: str | None = None,
             **option_values: Any) -> GenerationResult:
        """Add a user turn, stream the assistant's answer, keep both in the history. ``docs`` (default: the
        session's) adds document excerpts found for ``docs_query`` (default: ``text``)."""
        if not isinstance(text, str):
            raise InvalidOptionError(f"message must be text, got {type(text).__name__}.")
        opts = GenerationOptions.from_mapping(option_values, base=options or self.options)
        user = {"role": "user", "content": text}
        names = docs or self.docs
        manager = self.manager
        built = None
        with manager.acquire("chat"):
            n_ctx = manager.ensure_loaded(self.model).n_ctx
            free = n_ctx - min(opts.max_tokens, n_ctx // 2)
            prompt, dropped = self._fit(n_ctx, self.messages + [user], opts, reserve=free // 2 if names else 0)
            if names:
                from ..docs.prompt import docs_prompt

                built = docs_prompt(text, names, manager=manager, n_ctx=n_ctx, max_tokens=opts.max_tokens,
                                    before=prompt[:-1], k=self.docs_k, query=docs_query)
                prompt = prompt[:-1] + [{"role": "user", "content": built.content}]
            try:
                result = manager.generate(prompt, opts, on_text=on_text, should_stop=should_stop,
                                          reuse_cache=True)
            except GenerationInterrupted as exc:
                _cite(exc.result, built)
                if exc.result.text:  # keep the partial answer; an exchange with no answer is not kept
                    self._record(user, exc.result, dropped)
                raise
        _cite(result, built)
        self._record(user, result, dropped)
        return result

    def _fit(self, n_ctx: int, messages: list[Message], opts: GenerationOptions,
             reserve: int = 0) -> tuple[list[Message], int]:
        """Drop the oldest turns until the prompt leaves room for the answer (and ``reserve`` tokens)."""
        system = [{"role": "system", "content": opts.system_prompt}] if opts.system_prompt else []
        budget = n_ctx - min(opts.max_tokens, n_ctx // 2) - reserve
        dropped = 0
        while len(messages) > 1 and self.manager.count_tokens(system + messages) > budget:
            messages = messages[2:] if len(messages) > 2 else messages[1:]
            dropped += 1
        return system + messages, dropped

    def _record(self, user: Message, result: GenerationResult, dropped: int) -> None:
        if dropped:
            result.notices.append(
                f"{dropped} earlier exchange(s) left out of the prompt to fit the context window.")
        self.messages += [user, {"role": "assistant", "content": result.text}]
        self.results.append(result)

    def reset(self) -> None:
        """Forget the conversation (the system prompt and options stay)."""
        self.messages.clear()
        self.results.clear()

    def to_dict(self) -> dict[str, Any]:
        return {"model": str(self.model) if self.model else None, "system_prompt": self.system_prompt,
                "options": self.options.to_dict(), "messages": list(self.messages)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        """The conversation as Markdown (one heading per turn)."""
        parts = []
        if self.system_prompt:
            parts.append(f"**System:** {self.system_prompt}")
        for m in self.messages:
            who = "You" if m["role"] == "user" else "Assistant"
            parts.append(f"### {who}\n\n{m['content']}")
        return "\n\n".join(parts) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the conversation as JSON (atomically)."""
        path = Path(path).expanduser()
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, manager: ModelManager | None = None) -> ChatSession:
        """A session restored from :meth:`save`'s JSON."""
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
        session = cls(model=data.get("model"), manager=manager,
                      options=GenerationOptions.from_mapping(data.get("options") or {}))
        session.messages = [{"role": m["role"], "content": m["content"]} for m in data.get("messages", [])
                            if m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str)]
        return session

    def __len__(self) -> int:
        return len(self.messages) // 2

    def __repr__(self) -> str:
        return f"<ChatSession {len(self)} exchange(s), model={self.model or 'default'}>"


def _cite(result: GenerationResult, built: Any) -> None:
    """Put the excerpts a turn was given (and the notes about them) on its result."""
    if built is not None:
        result.sources, result.notices = built.sources, built.notes + result.notices
