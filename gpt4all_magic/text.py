"""Small text rules shared by every layer: stop strings, lm-evaluation-harness's whitespace split,
decoding speed, and human-readable sizes. Nothing here imports anything of the package."""

from __future__ import annotations

from typing import Generic, Sequence, TypeVar

__all__ = ["StopScanner", "human_bytes", "human_count", "human_duration", "move_trailing_whitespace", "tokens_per_second",
           "utf8_safe_end"]

T = TypeVar("T", str, bytes)


class StopScanner(Generic[T]):
    """Cuts generated text at the first stop string, holding back the tail that could start one.

    Works on ``str`` (server streams) or ``bytes`` (llama.cpp token pieces, where a character can span
    two tokens: the bytes given back end on a character boundary). :meth:`feed` adds a piece and
    returns what is safe to show; after a stop string is found, ``hit`` is True and ``text`` ends
    before it. :meth:`flush` returns the rest once the stream ends.
    """

    def __init__(self, stops: Sequence[str], *, binary: bool = False):
        self.binary = binary
        self.stops: list[T] = [s.encode("utf-8") if binary else s for s in stops if s]  # type: ignore[misc]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.text: T = b"" if binary else ""  # type: ignore[assignment]
        self.sent = 0  # length of text already given out
        self.hit = False

    def feed(self, piece: T) -> T:
        """Add ``piece``; the newly safe part of the text (empty when all of it is held back)."""
        start = max(0, len(self.text) - self.hold)
        self.text += piece
        if self.stops:
            found = [i for i in (self.text.find(s, start) for s in self.stops) if i >= 0]
            if found:
                self.text = self.text[: min(found)]
                self.hit = True
                return self.flush()
        end = len(self.text) - self.hold if self.stops else len(self.text)
        if self.binary:
            end = utf8_safe_end(self.text, end)  # type: ignore[arg-type]
        if end > self.sent:
            out, self.sent = self.text[self.sent:end], end
            return out
        return self.text[:0]

    def flush(self) -> T:
        """The text not given out yet (all of it: the stream has ended)."""
        out, self.sent = self.text[self.sent:], len(self.text)
        return out


def utf8_safe_end(buf: bytes, end: int) -> int:
    """The largest index <= end that does not split a UTF-8 character."""
    end = max(0, min(end, len(buf)))
    for j in range(end - 1, max(end - 4, 0) - 1, -1):
        byte = buf[j]
        if byte & 0xC0 != 0x80:  # a lead byte (or ASCII): is its character complete before end?
            width = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return j if j + width > end else end
    return end


def move_trailing_whitespace(context: str, continuation: str) -> tuple[str, str]:
    """lm-evaluation-harness's split: the context's trailing whitespace belongs to the continuation."""
    n = len(context) - len(context.rstrip())
    if n:
        return context[:-n], context[-n:] + continuation
    return context, continuation


def tokens_per_second(n_tokens: int, first: float | None, last: float | None,
                      elapsed: float | None = None) -> float | None:
    """Decoding speed after the first token: ``(n - 1) / (last - first)``; with one token (or no span)
    and ``elapsed`` given, ``n / elapsed``; None when it cannot be known."""
    if first is not None and last is not None and n_tokens > 1 and last > first:
        return (n_tokens - 1) / (last - first)
    if elapsed and n_tokens >= 1 and first is not None:
        return n_tokens / elapsed
    return None


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KB' (decimal units, as disk tools show them)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_duration(seconds: float) -> str:
    """8.2 -> '8 s', 840 -> '14 min', 9000 -> '2.5 h' (rounded: for estimates and totals)."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def human_count(n: int) -> str:
    """134_515_008 -> '135M'."""
    for value, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= value:
            scaled = n / value
            return f"{scaled:.1f}{suffix}" if scaled < 10 else f"{scaled:.0f}{suffix}"
    return str(n)
