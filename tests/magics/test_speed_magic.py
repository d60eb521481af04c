"""``%gpt4all bench``: llama-bench's pp and tg through the manager, cached for ``%gpt4all list`` and for
the duration estimate at the start of a batch job (real timings of the bundled model; no speed asserted)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
from helpers import run, usage_error

import gpt4all_magic as g4
from gpt4all_magic.batch.tasks import load_sample
from gpt4all_magic.models import speeds


def test_bench_measures_caches_and_feeds_list_and_estimates(shell, manager, capsys):
    result = run(shell, "%gpt4all bench --quick")
    assert result.success
    table = result.result
    assert list(table.columns) == ["model", "test", "tokens/s", "±", "repetitions", "threads"]
    assert table["model"].tolist() == ["smollm2-135m-instruct"] * 2
    assert table["test"].str.match(r"^pp\d+$").iloc[0] and table["test"].str.match(r"^tg\d+$").iloc[1]
    assert (table["tokens/s"] > 0).all() and (table["±"] >= 0).all() and not table["±"].isna().any()
    assert (table["repetitions"] == 2).all()
    out = capsys.readouterr().out
    assert "tokens/s: mean ± standard deviation over 2 repetitions" in out

    cache = Path(os.environ["XDG_CACHE_HOME"]) / "gpt4all-magic" / "speeds.json"  # the hermetic cache
    assert cache == speeds.cache_file() and cache.is_file()
    entry = speeds.lookup(manager.current.ref.path)
    assert entry["pp"] > 0 and entry["tg"] > 0 and entry["pp_sd"] >= 0 and entry["build"].startswith("llama-cpp")
    (key,) = json.loads(cache.read_text())
    assert key.startswith(str(manager.current.ref.path.resolve()) + "|") and "llama-cpp-python" in key

    listing = run(shell, "%gpt4all list").result
    bundled = listing[listing["name"] == "smollm2-135m-instruct"].iloc[0]
    assert bundled["speed here"].startswith("pp ") and bundled["speed here"].endswith(" tok/s")
    assert listing[~listing["installed"].astype(bool)]["speed here"].isna().all()

    g4.choose(pd.DataFrame(load_sample("arc_easy")[:3]), task="arc_easy", manager=manager, progress=True)
    err = capsys.readouterr().err
    assert "arc_easy (≈ " in err and " for 3 items)" in err  # the progress bar's first line
    assert "arc_easy: 3 items in " in err and "(estimated ≈ " in err  # the real figure at the end
    estimate = speeds.estimate_seconds(manager.current.ref.path, 1000, 10)
    assert math.isclose(estimate, 1000 / entry["pp"] + 10 / entry["tg"])


def test_bench_refuses_bad_repetitions_in_one_line(shell, manager):
    message = usage_error(run(shell, "%gpt4all bench -r 0"))
    assert message.startswith("bench needs pp >= 1, tg >= 2 and repetitions >= 1")


def test_an_unmeasured_model_has_no_speed_and_no_estimate(shell, manager, capsys):
    listing = run(shell, "%gpt4all list").result
    assert listing["speed here"].isna().all()
    g4.choose(pd.DataFrame(load_sample("piqa")[:2]), task="piqa", manager=manager, progress=True)
    assert "≈" not in capsys.readouterr().err
