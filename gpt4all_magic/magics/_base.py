"""Shared pieces of the magic layer: argument parsing that raises UsageError, the subcommand registry,
the error boundary, and a small table for key/value results."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import html
import shlex
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from IPython.core.error import UsageError

from ..errors import Gpt4AllError

__all__ = ["SUBCOMMANDS", "Parser", "Subcommand", "Table", "arg", "option_args", "subcommand", "usage_errors"]


class _HelpShown(Exception):
    """Raised instead of sys.exit() after --help printed the help."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one-line UsageErrors that name the fix."""

    def __init__(self, *args: Any, **kwargs: Any):
        # A fixed width: help must not depend on the terminal (the README embeds it).
        kwargs.setdefault("formatter_class",
                          lambda prog: argparse.RawDescriptionHelpFormatter(prog, width=100, max_help_position=32))
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> Any:
        if isinstance(kwargs.get("help"), str):  # argparse %-formats help strings
            kwargs["help"] = kwargs["help"].replace("%", "%%")
        return super().add_argument(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        hint = ""
        if "unrecognized arguments:" in message:
            unknown = message.split("unrecognized arguments:", 1)[1].split()
            flags = [s for a in self._actions for s in a.option_strings]
            for token in unknown:
                close = difflib.get_close_matches(token.split("=")[0], flags, n=1) if token.startswith("-") else []
                if close:
                    hint = f" Did you mean {close[0]}?"
                    break
        raise UsageError(f"{self.prog}: {message}.{hint} Run `{self.prog} --help` for the flags.")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            raise UsageError(message.strip())
        raise _HelpShown()

    def parse_line(self, line: str) -> argparse.Namespace | None:
        """Parse a magic's line; None when --help was shown."""
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"{self.prog}: cannot parse the line ({exc}); check your quotes.") from None
        try:
            return self.parse_args(argv)
        except _HelpShown:
            return None


def arg(*flags: str, **kwargs: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """One argparse argument, for :func:`subcommand`."""
    return flags, kwargs


def option_args() -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """The generation-option flags (``-t``, ``-n``, ``--seed`` …), generated from the one options definition."""
    from ..options import option_specs

    args = []
    for spec in option_specs():
        kwargs: dict[str, Any] = {"dest": spec.name, "default": None,
                                  "help": f"{spec.help} (default: {spec.default!r})"}
        if spec.kind is list:
            kwargs.update(action="append", metavar="TEXT")
        else:
            kwargs.update(type=_converter(spec), metavar=spec.name.upper())
        args.append(arg(*spec.cli_flags, **kwargs))
    return args


def _converter(spec: Any) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        if spec.kind is str:
            return text
        try:
            return spec.kind(text)
        except ValueError:
            kind = "an integer" if spec.kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{spec.name} must be {kind}, got {text!r}") from None

    convert.__name__ = spec.name  # argparse names the type in its messages
    return convert


@dataclass
class Subcommand:
    name: str
    help: str
    run: Callable[[Any, argparse.Namespace], Any]
    args: list[tuple[tuple[str, ...], dict[str, Any]]] = field(default_factory=list)


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(name: str, help: str, *args: tuple[tuple[str, ...], dict[str, Any]],
               ) -> Callable[[Callable[[Any, argparse.Namespace], Any]], Callable[..., Any]]:
    """Register ``%gpt4all NAME``: the function gets (magics, parsed args) and returns the result."""

    def register(fn: Callable[[Any, argparse.Namespace], Any]) -> Callable[..., Any]:
        SUBCOMMANDS[name] = Subcommand(name, help, fn, list(args))
        return fn

    return register


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """The boundary: library errors become one-line UsageErrors (no traceback, Run All stops)."""
    try:
        yield
    except Gpt4AllError as exc:
        raise UsageError(str(exc)) from None


class Table(dict):
    """A dict that shows itself as a two-column table (HTML-escaped) in notebooks."""

    def __init__(self, data: dict[str, Any], title: str = ""):
        super().__init__(data)
        self.title = title

    def __repr__(self) -> str:
        width = max((len(str(k)) for k in self), default=0)
        lines = [self.title] if self.title else []
        lines += [f"{str(k).ljust(width)}  {_fmt(v)}" for k, v in self.items()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
                       f"<td style='text-align:left'>{html.escape(_fmt(v))}</td></tr>" for k, v in self.items())
        caption = f"<caption style='text-align:left'><b>{html.escape(self.title)}</b></caption>" if self.title else ""
        return f"<table>{caption}{rows}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
