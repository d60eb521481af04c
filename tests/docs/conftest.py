"""Fixtures for local documents: the test corpus (12 files, 7 types; see corpus_build.py) indexed once per
module with the real bundled model as the embedding model, and fresh copies for tests that change files."""

from __future__ import annotations

from pathlib import Path

import corpus_build
import pytest

from gpt4all_magic.docs.index import add
from gpt4all_magic.docs.store import DOCS_DIR_ENV
from gpt4all_magic.models.catalog import MODELS_DIR_ENV

# A dozen realistic questions, each answered by one file of the corpus (worded unlike the file's sentences).
QUESTIONS = {
    "My VPN code stopped working after I got a new phone, how do I get a new one?": "vpn_setup.md",
    "What happens during my first week at the company?": "onboarding.txt",
    "How much extra does a customer pay when an invoice is settled late?": "billing.py",
    "How much water goes into a dough at 75 percent hydration?": "sourdough.ipynb",
    "What should I do about aphids on my tomato plants?": "garden.html",
    "How do I align the mirrors of the telescope?": "telescope_manual.pdf",
    "How much money is planned for travel this quarter?": "budget_q2.docx",
    "How often should I oil my bicycle chain?": "cycling.md",
    "What ingredients go into the lentil soup?": "lentil_soup.txt",
    "How many vacation days do employees get per year?": "hr_policy.md",
    "How long are old database dumps kept before they are deleted?": "backup.py",
    "Which database did the team decide to move to?": "meeting_notes.txt",
}


@pytest.fixture(scope="module")
def corpus_index(_shared_manager, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The corpus indexed as collection 'corpus' once per module (in the module's own folders)."""
    root = tmp_path_factory.mktemp("docs")
    folder = corpus_build.build(root / "corpus")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DOCS_DIR_ENV, str(root / "index"))
        mp.setenv(MODELS_DIR_ENV, str(root / "models"))  # nomic-embed-text is not there: the bundled model embeds
        report = add("corpus", folder, manager=_shared_manager, progress=False)
    return {"folder": folder, "docs_dir": root / "index", "report": report}


@pytest.fixture
def corpus(corpus_index: dict, manager, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The module's indexed corpus for this test; the working directory is the corpus folder."""
    monkeypatch.setenv(DOCS_DIR_ENV, str(corpus_index["docs_dir"]))
    monkeypatch.chdir(corpus_index["folder"])
    return corpus_index


SMALL = ("cycling.md", "hr_policy.md", "meeting_notes.txt", "recipes/lentil_soup.txt")


@pytest.fixture
def fresh(tmp_path: Path, manager, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private folder of four one-chunk text files from the corpus, to change; cwd is that folder.
    (Small: on a shared 2-core machine the bundled model embeds a chunk in about a second.)"""
    folder = tmp_path / "mydocs"
    for name in SMALL:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes((corpus_build.CORPUS / name).read_bytes())
    monkeypatch.chdir(folder)
    return folder
