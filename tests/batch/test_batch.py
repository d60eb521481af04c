"""Generation and scoring over DataFrame rows on the real bundled model: same answers as single calls,
bad inputs, Ctrl-C, checkpoints, the manager's lock."""

from __future__ import annotations

import _thread
import json
import math
import subprocess
import sys
import threading

import pandas as pd
import pytest

import gpt4all_magic as g4
from gpt4all_magic.batch import _job as batch_runner
from gpt4all_magic.batch import generate as batch
from gpt4all_magic.engines.llama import model as llama_backend
from gpt4all_magic.errors import BatchInputError, InvalidOptionError

TOPICS = pd.DataFrame({"topic": ["tea", "the moon", "a cat who likes to sleep all day long", "rain"],
                       "n": [1, 2, 3, 1]}, index=[10, 3, 7, 1])
TEMPLATE = "Write {n} short sentence(s) about {topic}."


def single(manager, prompt: str, **options) -> g4.GenerationResult:
    return g4.generate(prompt, manager=manager, **options)


def test_rows_get_the_answer_a_single_call_gives_in_input_order(manager):
    out = g4.generate_rows(TOPICS, TEMPLATE, temp=0, max_tokens=24, manager=manager, progress=False)
    assert list(out.index) == [10, 3, 7, 1] and list(out["topic"]) == list(TOPICS["topic"])
    assert list(out.columns) == ["topic", "n", "response", "prompt_tokens", "completion_tokens",
                                 "tokens_per_second", "finish_reason", "status", "error"]
    for label, row in out.iterrows():
        expected = single(manager, TEMPLATE.format(**TOPICS.loc[label]), temp=0, max_tokens=24)
        assert row["response"] == expected.text
        assert (row["prompt_tokens"], row["completion_tokens"]) == (expected.prompt_tokens, expected.completion_tokens)
        assert row["finish_reason"] == expected.finish_reason and row["status"] == "ok" and pd.isna(row["error"])
        assert row["tokens_per_second"] > 0
    assert out.attrs["model"] == "smollm2-135m-instruct" and out.attrs["options"]["temp"] == 0.0
    assert isinstance(out.attrs["options"]["seed"], int) and out.attrs["interrupted"] is False


def test_greedy_batched_generation_equals_sequential_row_by_row(manager):
    """Measured agreement: every row, with rows finishing at different times and slots reused."""
    prompts = [f"{verb} about {topic}." for verb in ("Write a story", "Give two facts", "Write a poem")
               for topic in ("tea", "rivers", "clocks", "owls")]
    df = pd.DataFrame({"prompt": prompts})
    out = g4.generate_rows(df, prompt_column="prompt", temp=0, max_tokens=32, manager=manager, progress=False,
                           max_parallel=5)
    mismatches = []
    for prompt, got in zip(prompts, out["response"]):
        want = single(manager, prompt, temp=0, max_tokens=32).text
        if got != want:
            k = next(i for i, (a, b) in enumerate(zip(got + "\0", want + "\0")) if a != b)
            mismatches.append(f"{prompt!r}: same first {k} characters, then {got[k:k + 20]!r} vs {want[k:k + 20]!r}")
    assert not mismatches, "\n".join(mismatches)
    assert set(out["finish_reason"]) <= {"stop", "length"} and (out["status"] == "ok").all()


def test_sampled_rows_with_a_seed_equal_single_calls_with_that_seed(manager):
    df = pd.DataFrame({"prompt": ["Name a colour.", "Name an animal.", "Name a city."]})
    out = g4.generate_rows(df, prompt_column="prompt", temp=0.9, seed=42, max_tokens=16, manager=manager,
                           progress=False)
    for prompt, got in zip(df["prompt"], out["response"]):
        assert got == single(manager, prompt, temp=0.9, seed=42, max_tokens=16).text
    assert out.attrs["options"]["seed"] == 42


def test_stop_strings_system_prompt_and_max_tokens_behave_as_in_a_single_call(manager):
    df = pd.DataFrame({"q": ["List three fruits, one per line.", "Count from one to ten."]})
    kwargs = dict(temp=0, max_tokens=30, stop=["\n"], system_prompt="Answer tersely.")
    out = g4.generate_rows(df, "{q}", manager=manager, progress=False, **kwargs)
    for q, row in zip(df["q"], out.itertuples()):
        expected = single(manager, q, **kwargs)
        assert row.response == expected.text and row.finish_reason == expected.finish_reason
        assert "\n" not in row.response


def test_a_row_longer_than_the_window_is_marked_and_the_others_run(manager):
    df = pd.DataFrame({"prompt": ["Say hi.", "word " * 3000, "Say bye."]})
    out = g4.generate_rows(df, prompt_column="prompt", temp=0, max_tokens=8, manager=manager, progress=False)
    assert list(out["status"]) == ["ok", "too_long", "ok"]
    message = out.loc[1, "error"]
    assert "\n" not in message and "context window is 2,048" in message and "--n-ctx" in message
    assert out.loc[0, "response"] == single(manager, "Say hi.", temp=0, max_tokens=8).text
    assert pd.isna(out.loc[1, "response"]) and out.loc[1, "prompt_tokens"] > 2048


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("call, expected", [
    (lambda m: g4.generate_rows(pd.DataFrame({"prompt": []}), manager=m), "empty (0 rows)"),
    (lambda m: g4.generate_rows([{"prompt": "x"}], manager=m), "must be a pandas DataFrame, got list"),
    (lambda m: g4.generate_rows(pd.DataFrame({"text": ["a"]}), manager=m), "Pass a template with {column} fields"),
    (lambda m: g4.generate_rows(pd.DataFrame({"text": ["a"]}), prompt_column="txt", manager=m),
     "No column 'txt' in the DataFrame. Did you mean 'text'?"),
    (lambda m: g4.generate_rows(pd.DataFrame({"topic": ["a"]}), "About {topik}.", manager=m),
     ("The template names {topik}, but the DataFrame has no column 'topik' (write {{ and }} for literal braces). "
      "Did you mean 'topic'?")),
    (lambda m: g4.generate_rows(pd.DataFrame({"topic": ["a"]}), "No fields here.", manager=m), "no {column} field"),
    (lambda m: g4.generate_rows(pd.DataFrame({"prompt": ["a", None, float("nan"), ["x"]]}, index=list("abcd")),
                                manager=m),
     "Column 'prompt' has 3 cell(s) that are not text (NaN, None, list) in row(s) 'b', 'c', 'd'"),
    (lambda m: g4.generate_rows(pd.DataFrame({"topic": [None]}), "About {topic}.", manager=m),
     "Column 'topic' has 1 cell(s) that are not text (None)"),
    (lambda m: g4.generate_rows(pd.DataFrame({"prompt": ["a"], "response": ["b"]}), manager=m),
     "already has the result column(s) 'response'"),
    (lambda m: g4.generate_rows(pd.DataFrame({"prompt": ["a"]}), "{prompt}", prompt_column="prompt", manager=m),
     "either a template or prompt_column"),
    (lambda m: g4.score(pd.DataFrame({"prompt": ["a"]}), manager=m), "No column 'response'"),
])
def test_bad_inputs_get_one_line_errors_before_any_work(manager, call, expected):
    before = manager.totals.generations
    with pytest.raises(BatchInputError) as info:
        call(manager)
    assert expected in one_line(info)
    assert manager.totals.generations == before


def test_bad_options_are_refused_and_numbers_fill_templates(manager):
    with pytest.raises(InvalidOptionError, match="temp must be in"):
        g4.generate_rows(TOPICS, TEMPLATE, temp=5, manager=manager, progress=False)
    frame = pd.DataFrame({"a": [1, 2], "f": [2.5, 0.1], "b": ["x", "y"]})
    assert batch.render_template(frame, "{b}={a}+{f} {{a}}") == ["x=1+2.5 {a}", "y=2+0.1 {a}"]


def _interrupt_after(n_rows: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Send a real KeyboardInterrupt to the main thread once ``n_rows`` rows are recorded."""
    seen: list[int] = []
    reached = threading.Event()
    real_record = batch_runner.Job.record

    def record(self, pos, row, **kwargs):
        real_record(self, pos, row, **kwargs)
        seen.append(pos)
        if len(seen) == n_rows:
            reached.set()

    monkeypatch.setattr(batch_runner.Job, "record", record)

    def interrupter() -> None:
        if reached.wait(60):
            _thread.interrupt_main()

    threading.Thread(target=interrupter, daemon=True).start()
    return seen


def test_ctrl_c_returns_the_finished_rows_and_marks_the_rest(manager, monkeypatch, capsys):
    df = pd.DataFrame({"prompt": [f"Write a long story about {t}." for t in
                                  ("tea", "owls", "snow", "bread", "clocks", "rivers", "glass", "sand")]})
    _interrupt_after(2, monkeypatch)
    try:
        out = g4.generate_rows(df, prompt_column="prompt", temp=0, max_tokens=48, manager=manager, progress=False,
                               max_parallel=2, chunk_size=2)
    except KeyboardInterrupt:  # pragma: no cover - would mean the batch lost the rows
        pytest.fail("KeyboardInterrupt escaped generate_rows")
    assert out.attrs["interrupted"] is True
    statuses = list(out["status"])
    assert statuses.count("ok") >= 2 and "not_run" in statuses
    assert set(statuses) <= {"ok", "interrupted", "not_run"}
    for prompt, row in zip(df["prompt"], out.itertuples()):
        full = single(manager, prompt, temp=0, max_tokens=48).text
        if row.status == "ok":
            assert row.response == full
        elif row.status == "interrupted":
            assert full.startswith(row.response)  # the partial answer is kept
        else:
            assert pd.isna(row.response)
    assert "interrupted:" in capsys.readouterr().err
    again = g4.generate_rows(df.head(1), prompt_column="prompt", temp=0, max_tokens=48, manager=manager,
                             progress=False)
    assert again.loc[0, "response"] == single(manager, df.loc[0, "prompt"], temp=0, max_tokens=48).text


def test_a_checkpoint_lets_a_rerun_skip_finished_rows(manager, monkeypatch, tmp_path):
    df = pd.DataFrame({"prompt": [f"Give one fact about {t}." for t in ("tea", "owls", "snow", "bread", "glass")]})
    path = tmp_path / "run.jsonl"
    kwargs = dict(prompt_column="prompt", temp=0.8, max_tokens=24, manager=manager, progress=False,
                  checkpoint=path, max_parallel=1, chunk_size=1)
    _interrupt_after(2, monkeypatch)
    first = g4.generate_rows(df, **kwargs)
    monkeypatch.undo()
    done = first.index[first["status"] == "ok"].tolist()
    assert len(done) >= 2 and first.attrs["interrupted"]
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["seed"] == first.attrs["options"]["seed"] and len(lines) == 1 + len(done)

    asked: list[int] = []
    real = llama_backend.LlamaCppModel.generate_many

    def spy(self, prompts, *args, **kw):
        asked.append(len(prompts))
        return real(self, prompts, *args, **kw)

    monkeypatch.setattr(llama_backend.LlamaCppModel, "generate_many", spy)
    second = g4.generate_rows(df, **kwargs)  # no seed given: the checkpoint's seed is used
    assert sum(asked) == len(df) - len(done) and second.attrs["resumed_rows"] == len(done)
    assert (second["status"] == "ok").all()
    assert second.loc[done, "response"].tolist() == first.loc[done, "response"].tolist()
    fresh = g4.generate_rows(df, prompt_column="prompt", temp=0.8, max_tokens=24, seed=header["seed"],
                             manager=manager, progress=False)
    assert second["response"].tolist() == fresh["response"].tolist()
    with pytest.raises(BatchInputError, match="written by a different job .*max_tokens") as info:
        g4.generate_rows(df, **{**kwargs, "max_tokens": 30})
    one_line(info)


def test_the_batch_holds_the_manager_lock_and_default_backends_loop(fake_manager, monkeypatch):
    """The FakeBackend has no batch engine: LoadedModel.generate_many runs rows one by one."""
    backend = fake_manager.backend
    busy: list[bool] = []
    df = pd.DataFrame({"prompt": ["one two", "three", "four five six"]})
    real_record = batch_runner.Job.record

    def record(self, pos, row, **kwargs):
        probe = threading.Thread(target=lambda: busy.append(fake_manager.busy))  # another caller's view
        probe.start()
        probe.join()
        real_record(self, pos, row, **kwargs)

    monkeypatch.setattr(batch_runner.Job, "record", record)
    out = g4.generate_rows(df, prompt_column="prompt", manager=fake_manager, progress=False)
    assert list(out["response"]) == ["Echo: one two", "Echo: three", "Echo: four five six"]
    assert all(busy) and backend.max_active == 1 and not fake_manager.busy
    fake_manager.current.n_ctx = 4  # the fake counts words + 2
    out = g4.generate_rows(df, prompt_column="prompt", manager=fake_manager, progress=False)
    assert list(out["status"]) == ["too_long", "ok", "too_long"]


def test_score_columns_and_perplexity_summary(manager):
    df = pd.DataFrame({"prompt": ["Name a colour.", "What is 2+2?"], "response": ["Blue.", "4"]})
    raw = g4.score(df, manager=manager, progress=False)
    model = manager.current
    direct = model.score([g4_request(p, r) for p, r in zip(df["prompt"], df["response"])])
    for row, d in zip(raw.itertuples(), direct):
        assert row.logprob == pytest.approx(d.logprob) and row.n_tokens == d.n_tokens
        assert row.mean_logprob == pytest.approx(d.logprob / d.n_tokens)
        assert row.perplexity == pytest.approx(math.exp(-d.logprob / d.n_tokens)) and row.status == "ok"
    chat = g4.score(df, chat=True, manager=manager, progress=False)
    assert chat.attrs["chat"] is True and (chat["logprob"] != raw["logprob"]).all()
    assert chat.attrs["scoring"]["flash_attn"] is True

    summary = g4.perplexity(df, clip=2.0, manager=manager, progress=False)
    ppl = chat["perplexity"]
    row = summary.loc["smollm2-135m-instruct"]
    assert row["mean_perplexity"] == pytest.approx(ppl.clip(upper=2.0).mean())
    assert row["clipped_rows"] == int((ppl > 2.0).sum()) and row["rows"] == 2
    assert row["corpus_perplexity"] == pytest.approx(math.exp(-chat["logprob"].sum() / chat["n_tokens"].sum()))


def test_a_failing_row_or_a_lost_server_keeps_the_finished_rows(manager, monkeypatch, capsys):
    from gpt4all_magic.errors import GenerationError, RemoteConnectionError

    df = pd.DataFrame({"prompt": ["Name a colour.", "What is 2+2?", "Say hi.", "Count to three."],
                       "response": ["Blue.", "BOOM", "Hi!", "1, 2, 3."]})
    clean = g4.score(df, manager=manager, progress=False)
    model = manager.ensure_loaded()
    real_score = model.score
    calls = []

    def flaky(requests):  # a server error for one text (as a server's HTTP 500 after retries)
        calls.append(len(requests))
        if any(r.continuation == "BOOM" for r in requests):
            raise GenerationError("The server answered HTTP 500 to /completions: boom")
        return real_score(requests)

    monkeypatch.setattr(model, "score", flaky)
    out = g4.score(df, manager=manager, progress=False, chunk_size=4)
    assert list(out["status"]) == ["ok", "error", "ok", "ok"] and "HTTP 500" in out.loc[1, "error"]
    ok = out["status"] == "ok"
    assert (out.loc[ok, "logprob"] == clean.loc[ok, "logprob"]).all()  # the others scored as before

    def server_gone(requests):  # the server dies after the first chunk: a job-level error
        if len(calls) >= 1:
            raise RemoteConnectionError("Cannot reach the server at http://127.0.0.1:9/v1; is it running?")
        calls.append(len(requests))
        return real_score(requests)

    calls.clear()
    monkeypatch.setattr(model, "score", server_gone)
    out = g4.score(df, manager=manager, progress=False, chunk_size=2)
    assert (out["status"] == "ok").sum() == 2 and (out["status"] == "not_run").sum() == 2
    assert "Cannot reach the server" in out.attrs["stopped_by"]
    assert "stopped after 2 of 4 rows" in capsys.readouterr().err
    calls.append(0)
    with pytest.raises(RemoteConnectionError):  # nothing finished: the error itself
        g4.score(df, manager=manager, progress=False, chunk_size=2)


def g4_request(context: str, continuation: str):
    from gpt4all_magic.engines.base import ScoreRequest

    return ScoreRequest(context, continuation)


def test_the_accessor_and_a_light_package_import(manager):
    out = TOPICS.head(1).gpt4all.generate(TEMPLATE, temp=0, max_tokens=8, manager=manager, progress=False)
    assert out.loc[10, "response"] == single(manager, "Write 1 short sentence(s) about tea.", temp=0,
                                             max_tokens=8).text
    show = "print(sorted(m for m in ('pandas', 'numpy', 'llama_cpp') if m in sys.modules))"
    code = "import sys, gpt4all_magic as g; g.curate; " + show
    lazy = subprocess.run([sys.executable, "-c", "import sys, gpt4all_magic; " + show],
                          capture_output=True, text=True, check=True)
    assert lazy.stdout.strip() == "[]"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pandas" in loaded.stdout and "llama_cpp" not in loaded.stdout


def test_progress_bar_reports_rows(manager, capsys):
    g4.generate_rows(TOPICS.head(2), TEMPLATE, temp=0, max_tokens=4, manager=manager, progress=True)
    err = capsys.readouterr().err
    assert "generate" in err and "2/2" in err and "row" in err
