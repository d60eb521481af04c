"""The benchmark script runs (a smoke run: figures are printed, never asserted as timings)."""

from __future__ import annotations

import re

from gpt4all_magic.bench import batch as bench_batch


def test_quick_benchmark_prints_ratios_and_agreement(capsys):
    assert bench_batch.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "multiple choice, 12 questions x 4 choices = 48 requests" in out
    assert "generation, 4 prompts x 16 tokens" in out
    assert len(re.findall(r"speed-up\s+:\s+\d+\.\d+x", out)) == 2
    assert "same acc/acc_norm predictions: 12/12" in out and "identical answers     : 4/4" in out
    worst = float(re.search(r"max \|logprob diff\|\s+: (\S+) nats", out).group(1))
    assert worst < 0.01
