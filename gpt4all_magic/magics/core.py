"""``%%gpt4all`` (the cell is the prompt) and ``%gpt4all`` (model management): parse, call the
library, present the result. Kernel-level settings are traitlets on :class:`Gpt4AllMagics`."""

from __future__ import annotations

import argparse
import difflib
import keyword
import sys
from typing import Any, Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool, CaselessStrEnum, Dict, Float, Int, TraitError, Unicode, observe, validate

from ..api import generate
from ..conversation.session import ChatSession
from ..errors import GenerationInterrupted, Gpt4AllError, InvalidOptionError
from ..manager import GenerationResult, ModelManager, get_manager
from ..options import GenerationOptions, LoadSettings, option_specs
from ..prompts import fill
from ..render import extract_code
from ._base import SUBCOMMANDS, Parser, Table, arg, option_args, subcommand, usage_errors
from ._stream import StreamDisplay

__all__ = ["Gpt4AllMagics", "cell_parser", "subcommand_parser"]

CELL_EXTENSIONS: list[Callable[[Parser], None]] = []  # other modules add cell flags (e.g. --df)
CELL_HANDLERS: list[Callable[[Gpt4AllMagics, argparse.Namespace, str], Any]] = []  # first non-None wins


def cell_parser() -> Parser:
    """The ``%%gpt4all`` flags, generated from the options definition."""
    p = Parser(prog="%%gpt4all", description="The cell is the prompt; {name} inserts a variable.",
               epilog="Examples:\n  %%gpt4all -t 0 -n 50\n  Summarize {text} in one sentence.")
    p.add_argument("-m", "--model", help="Model name or .gguf path (default: the loaded/default model).")
    p.add_argument("-o", "--out", metavar="VAR", help="Also store the answer (a str) in this variable.")
    p.add_argument("-f", "--format", choices=("markdown", "text", "code"), default=None,
                   help="How to show the answer; 'code' also puts its code into a new cell below.")
    p.add_argument("--chat", action="store_true",
                   help="Continue the kernel's conversation (see `%gpt4all reset`) instead of a fresh turn.")
    for flags, kwargs in option_args():
        p.add_argument(*flags, **kwargs)
    for extend in CELL_EXTENSIONS:
        extend(p)
    return p


def subcommand_parser(name: str) -> Parser:
    """The parser of ``%gpt4all NAME`` (its ``--help`` is the reference for that command)."""
    command = SUBCOMMANDS[name]
    parser = Parser(prog=f"%gpt4all {name}", description=command.help)
    for flags, kwargs in command.args:
        parser.add_argument(*flags, **kwargs)
    return parser


@magics_class
class Gpt4AllMagics(Magics):
    """``%%gpt4all`` / ``%gpt4all``. Configure with ``%config Gpt4AllMagics.<trait> = …``."""

    default_model = Unicode("", help="Model used when none is loaded or named: a name from `%gpt4all list` "
                                     "or a .gguf path. Empty: the bundled SmolLM2 model.").tag(config=True)
    # The load settings: defaults, help and validation all come from the one LoadSettings definition.
    models_dir = Unicode("", help=LoadSettings.HELP["models_dir"]).tag(config=True)
    n_ctx = Int(LoadSettings.n_ctx, help=LoadSettings.HELP["n_ctx"]).tag(config=True)
    n_threads = Int(LoadSettings.n_threads, help=LoadSettings.HELP["n_threads"]).tag(config=True)
    n_batch = Int(LoadSettings.n_batch, help=LoadSettings.HELP["n_batch"]).tag(config=True)
    options = Dict(help="Default generation options, e.g. {'temp': 0.2, 'max_tokens': 400}; flags override "
                        "them per cell.").tag(config=True)
    output_format = CaselessStrEnum(["markdown", "text", "code"], "markdown",
                                    help="How %%gpt4all shows answers by default.").tag(config=True)
    show_status = Bool(True, help="Print a status line (model, tokens, tokens/s, seed) after each "
                                  "answer.").tag(config=True)
    busy_timeout = Float(LoadSettings.busy_timeout, help=LoadSettings.HELP["busy_timeout"]).tag(config=True)
    display_mode = CaselessStrEnum(["auto", "rich", "text"], "auto",
                                   help="'rich' updates a display in place (notebooks), 'text' writes to "
                                        "stdout (terminals); 'auto' picks by the shell.").tag(config=True)
    update_interval = Float(0.05, help="Seconds between display updates while streaming.").tag(config=True)

    def __init__(self, shell: Any = None, manager: ModelManager | None = None, **kwargs: Any):
        super().__init__(shell=shell, **kwargs)
        self.manager = manager or get_manager()
        self._conversation: ChatSession | None = None
        self._quiet_ids: list[int] = []
        self._apply_settings()

    # -- settings --------------------------------------------------------------------------------
    _LOAD_SETTINGS = ("n_ctx", "n_threads", "n_batch", "busy_timeout", "models_dir")

    def _apply_settings(self) -> None:
        self.manager.default_model = self.default_model or None
        self.manager.configure(**{name: getattr(self, name) for name in self._LOAD_SETTINGS})

    # Config from ipython_config.py / %config before %load_ext fires these inside super().__init__,
    # before there is a manager; __init__ applies everything once it has one.
    @observe("default_model", *_LOAD_SETTINGS)
    def _settings_changed(self, change: dict[str, Any]) -> None:
        if "manager" in self.__dict__:
            self._apply_settings()

    @validate(*_LOAD_SETTINGS)
    def _valid_load_setting(self, proposal: Any) -> Any:
        try:
            LoadSettings().replace(**{proposal["trait"].name: proposal["value"]})
        except Gpt4AllError as exc:
            raise TraitError(str(exc)) from None
        return proposal["value"]

    @validate("options")
    def _valid_options(self, proposal: dict[str, Any]) -> dict[str, Any]:
        try:
            GenerationOptions.from_mapping(proposal["value"])
        except Gpt4AllError as exc:
            raise TraitError(str(exc)) from None
        return proposal["value"]

    @property
    def default_options(self) -> GenerationOptions:
        return GenerationOptions.from_mapping(self.options)

    @property
    def conversation(self) -> ChatSession:
        """The kernel-level conversation used by ``%%gpt4all --chat``."""
        if self._conversation is None:
            self._conversation = ChatSession(manager=self.manager)
        return self._conversation

    # -- %%gpt4all -------------------------------------------------------------------------------
    @cell_magic("gpt4all")
    def gpt4all_cell(self, line: str, cell: str) -> Any:
        """Send the cell to the model; the answer streams in and is the cell's value (a str)."""
        args = cell_parser().parse_line(line)
        if args is None:
            return None
        for handler in CELL_HANDLERS:
            result = handler(self, args, cell)
            if result is not None:
                return result
        return self.answer(cell, args)

    def answer(self, cell: str, args: argparse.Namespace, ask: Callable[..., GenerationResult] | None = None,
               after: Callable[[GenerationResult], None] | None = None) -> str:
        """Run one prompt for ``%%gpt4all`` and present it; ``ask`` replaces how it is asked (``--docs``) and
        ``after`` shows more under the answer."""
        out = self.check_variable(args.out)
        prompt = self.cell_prompt(cell)
        with usage_errors():
            options = self.cell_options(args)
            fmt = args.format or self.output_format
            result = self.stream(lambda on_text: (ask or self._ask)(prompt, args, options, on_text), fmt)
        if after is not None:
            after(result)
        text = result.text
        if out:
            self.shell.user_ns[out] = text
        if fmt == "code" and self.shell is not None:
            self.shell.set_next_input(extract_code(text), replace=False)
        return self.quiet(text)

    def cell_prompt(self, cell: str) -> str:
        """The cell's text with ``{name}`` filled from the notebook (notes printed); UsageError if empty."""
        filled = fill(cell, self.shell.user_ns if self.shell else {})
        prompt = filled.text.lstrip("\r\n").rstrip()  # the cell's trailing newline is not part of the prompt
        if not prompt:
            raise UsageError("The cell is empty: write a prompt below %%gpt4all.")
        for note in filled.notes():
            print(f"note: {note}", file=sys.stderr)
        return prompt

    def cell_options(self, args: argparse.Namespace, base: GenerationOptions | None = None) -> GenerationOptions:
        """The cell's generation options: its flags over ``base`` (default: the kernel's defaults)."""
        values = {spec.name: getattr(args, spec.name) for spec in option_specs()
                  if getattr(args, spec.name, None) is not None}
        return GenerationOptions.from_mapping(values, base=base or self.default_options)

    def _ask(self, prompt: str, args: argparse.Namespace, options: GenerationOptions,
             on_text: Callable[[str], None]) -> GenerationResult:
        if args.chat:
            session = self.conversation
            if args.model:
                session.model = args.model
            return session.send(prompt, on_text=on_text, options=options)
        return generate(prompt, model=args.model, options=options, on_text=on_text, manager=self.manager)

    def stream(self, run: Callable[[Callable[[str], None]], GenerationResult], fmt: str,
               shown: Callable[[GenerationResult], str] | None = None) -> GenerationResult:
        """Show a generation as it streams; on Ctrl-C keep and show the partial answer. ``shown`` gives
        the final form of a finished answer (default: its text)."""
        display = StreamDisplay(rich=self.rich(), output_format=fmt, interval=self.update_interval)
        display.start()
        interrupted = False
        try:
            result = run(display.feed)
        except GenerationInterrupted as exc:
            result, interrupted = exc.result, True
        except Gpt4AllError as exc:
            partial = getattr(exc, "result", None)
            if partial is not None and partial.text:  # keep what arrived before the failure visible
                display.finish(partial.text)
                print(partial.status_line())
            raise
        display.finish(shown(result) if shown is not None and not interrupted else result.text)
        for notice in result.notices:
            print(f"note: {notice}", file=sys.stderr)
        if self.show_status or interrupted:
            print(result.status_line())
        return result

    def rich(self) -> bool:
        """Whether answers update a display in place (a notebook) rather than print (a terminal)."""
        if self.display_mode != "auto":
            return self.display_mode == "rich"
        return getattr(self.shell, "kernel", None) is not None

    def check_variable(self, name: str | None) -> str | None:
        if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
            raise UsageError(f"-o needs a Python variable name, got {name!r}; e.g. -o answer.")
        return name

    def quiet(self, value: Any) -> Any:
        """Return ``value`` (the answer) as the cell's value without echoing it again below the answer shown."""
        if self.shell is not None:
            formatter = self.shell.display_formatter.ipython_display_formatter
            # A terminal has already written "Out[n]: " by the time this runs; finish that line.
            what = f"str of {len(value)} characters" if isinstance(value, str) else type(value).__name__
            note = None if self.rich() else f"<{what}: the answer above>"
            formatter.singleton_printers[id(value)] = lambda obj: note and print(note)
            self._quiet_ids.append(id(value))
        return value

    def post_run_cell(self, *args: Any) -> None:
        """Forget the values silenced by :meth:`quiet` (their ids may be reused)."""
        if self._quiet_ids and self.shell is not None:
            printers = self.shell.display_formatter.ipython_display_formatter.singleton_printers
            for obj_id in self._quiet_ids:
                printers.pop(obj_id, None)
            self._quiet_ids.clear()

    # -- %gpt4all --------------------------------------------------------------------------------
    @line_magic("gpt4all")
    def gpt4all_line(self, line: str) -> Any:
        """Manage models: list, load, unload, status, info, config, reset, error, help."""
        words = line.split(None, 1)
        if not words or words[0] in ("help", "--help", "-h"):
            print(self.help_text())
            return None
        name, rest = words[0], words[1] if len(words) > 1 else ""
        command = SUBCOMMANDS.get(name)
        if command is None:
            close = difflib.get_close_matches(name, list(SUBCOMMANDS), n=1)
            hint = f"Did you mean `%gpt4all {close[0]}`? " if close else ""
            raise UsageError(f"Unknown command '{name}'. {hint}Run `%gpt4all help` for the list.")
        args = subcommand_parser(name).parse_line(rest)
        if args is None:
            return None
        with usage_errors():
            return command.run(self, args)

    def help_text(self) -> str:
        """The reference for both magics, generated from the parsers."""
        lines = ["%gpt4all COMMAND — manage models and settings:", ""]
        for name, command in SUBCOMMANDS.items():
            lines.append(f"  {name:<10} {command.help}")
        lines += ["", "Run `%gpt4all COMMAND --help` for a command's flags.", "", cell_parser().format_help()]
        return "\n".join(lines)


# -- core subcommands ------------------------------------------------------------------------------

@subcommand("list", "Models you can load, as a DataFrame: bundled, on disk and in the catalog "
                    "(a connected server's models instead, after `%gpt4all connect`).")
def _list(magics: Gpt4AllMagics, args: argparse.Namespace) -> Any:
    import pandas as pd

    return pd.DataFrame(magics.manager.model_rows())


@subcommand("load", "Load a model and keep it loaded for the next cells.",
            arg("name", nargs="?", help="Model name or .gguf path (default: the default model)."),
            arg("--n-ctx", type=int, help="Context window in tokens."),
            arg("--n-threads", type=int, help="CPU threads (default: the n_threads setting; 0: physical cores)."),
            arg("--n-batch", type=int, help="Prompt tokens evaluated per step (default: the n_batch setting)."),
            arg("--force", action="store_true", help="Load even if free RAM looks too small."),
            arg("--download", action="store_true",
                help="Download the model first if it is in the catalog (or on the Hub) but not on disk yet."))
def _load(magics: Gpt4AllMagics, args: argparse.Namespace) -> None:
    given = {k: v for k, v in (("n_ctx", args.n_ctx), ("n_threads", args.n_threads), ("n_batch", args.n_batch))
             if v is not None}
    try:
        magics.manager.settings.replace(**given)  # checked before anything is downloaded or loaded
    except InvalidOptionError as exc:  # the library names the setting; here it is a flag
        raise UsageError(str(exc).replace(exc.setting, "--" + exc.setting.replace("_", "-"), 1)) from None
    if args.download:
        from .catalog_commands import download_if_needed

        download_if_needed(magics, args.name, force=args.force)
    model = magics.manager.load(args.name, n_ctx=args.n_ctx, n_threads=args.n_threads, n_batch=args.n_batch,
                                force=args.force)
    seconds = magics.manager.status().get("load_seconds")
    print(f"Loaded {model.name} (n_ctx {model.n_ctx}, {model.n_threads} threads) in {seconds:.2f} s.")


@subcommand("unload", "Unload the model and free its memory.")
def _unload(magics: Gpt4AllMagics, args: argparse.Namespace) -> None:
    current = magics.manager.current
    if magics.manager.unload():
        print(f"Unloaded {current.name}.")
    else:
        print("No model is loaded.")


@subcommand("status", "The loaded model, its memory, context, threads and usage totals.")
def _status(magics: Gpt4AllMagics, args: argparse.Namespace) -> Table:
    return Table(magics.manager.status(), title="gpt4all-magic status")


@subcommand("info", "A model's GGUF metadata (read from the file, without loading it).",
            arg("name", nargs="?", help="Model name or .gguf path (default: the default model)."),
            arg("--template", action="store_true", help="Also print the chat template."))
def _info(magics: Gpt4AllMagics, args: argparse.Namespace) -> Table:
    from ..api import model_info

    info = model_info(args.name, manager=magics.manager)
    if info["source"] == "remote":  # a server's model: no file here to read
        return Table(info, title=f"Server model: {info['model']}")
    if args.template:
        from ..models.gguf import read_gguf

        print(read_gguf(magics.manager.resolve(args.name).path).chat_template or "(no chat template in this file)")
    return Table(info, title=f"GGUF metadata: {info['model']}")


_SETTINGS = ("default_model", "models_dir", "n_ctx", "n_threads", "n_batch", "output_format", "show_status",
             "busy_timeout", "display_mode", "update_interval")


@subcommand("config", "Show settings and generation defaults, or set them: `%gpt4all config temp=0.2 n_ctx=8192`.",
            arg("assignments", nargs="*", metavar="KEY=VALUE"))
def _config(magics: Gpt4AllMagics, args: argparse.Namespace) -> Table | None:
    if not args.assignments:
        rows: dict[str, Any] = {f"Gpt4AllMagics.{k}": getattr(magics, k) for k in _SETTINGS}
        rows.update({f"option {k}": v for k, v in magics.default_options.to_dict().items()})
        return Table(rows, title="Settings (set with `%gpt4all config KEY=VALUE`)")
    option_names = [s.name for s in option_specs()]
    options = dict(magics.options)
    for item in args.assignments:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise UsageError(f"Expected KEY=VALUE, got {item!r}; e.g. `%gpt4all config temp=0.2`.")
        if key in _SETTINGS:
            trait = magics.traits()[key]
            try:
                setattr(magics, key, trait.from_string(value))
            except (TraitError, ValueError) as exc:
                raise UsageError(f"Cannot set {key}={value!r}: {exc}") from None
        elif key in option_names:
            if value.lower() in ("", "none", "default"):
                options.pop(key, None)
            else:
                options[key] = [s for s in value.split(",") if s] if key == "stop" else value
                GenerationOptions.from_mapping(options)  # validate now: a bad value changes nothing
        else:
            close = difflib.get_close_matches(key, list(_SETTINGS) + option_names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"Unknown setting '{key}'.{hint} Run `%gpt4all config` to see them all.")
    magics.options = {k: v for k, v in GenerationOptions.from_mapping(options).changed().items()}
    return None


@subcommand("reset", "Forget the kernel-level conversation used by `%%gpt4all --chat`.")
def _reset(magics: Gpt4AllMagics, args: argparse.Namespace) -> None:
    turns = len(magics.conversation)
    magics.conversation.reset()
    print(f"Conversation cleared ({turns} exchange(s) forgotten).")
