"""The README stays true: CI runs its test command, and its reference is generated from the parsers.

Refresh the generated parts with ``python tests/test_readme.py``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _generated() -> dict[str, str]:
    from gpt4all_magic import magics  # noqa: F401  (registers every subcommand)
    from gpt4all_magic.magics.core import Gpt4AllMagics

    class _Help(Gpt4AllMagics):
        def __init__(self) -> None:  # help_text needs no shell or manager
            pass

    from gpt4all_magic.magics._base import SUBCOMMANDS
    from gpt4all_magic.magics.core import subcommand_parser

    reference = "```text\n" + _Help.help_text(_Help()).strip() + "\n```"
    for name in SUBCOMMANDS:
        reference += "\n\n```text\n" + subcommand_parser(name).format_help().strip() + "\n```"
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for name, trait in sorted(Gpt4AllMagics.class_traits(config=True).items()):
        default = trait.default()
        rows.append(f"| `{name}` | `{default!r}` | {trait.help} |")
    return {"reference": reference, "settings": "\n".join(rows)}


def _section(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert match, f"README lacks the {name} markers"
    return match.group(1).strip()


def _commands(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", text, re.S)


def test_ci_runs_the_readme_test_command():
    commands = _commands(README.read_text())
    assert len(commands) >= 2
    test_command = commands[1]
    assert "pytest" in test_command
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()


def test_readme_demo_command_runs_the_demo():
    demo = _commands(README.read_text())[0]
    assert demo.endswith("python -m gpt4all_magic demo")


def test_reference_is_generated_from_the_parsers():
    text = README.read_text()
    for name, body in _generated().items():
        assert _section(text, name) == body.strip(), "README is stale: run `python tests/test_readme.py`"


def update() -> None:
    text = README.read_text()
    for name, body in _generated().items():
        text = re.sub(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)",
                      lambda m: m.group(1) + body.strip() + "\n" + m.group(2), text, flags=re.S)
    README.write_text(text)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    update()
    print("README reference refreshed.")
