"""The catalog: the packaged data file, user catalog files, GPT4All's models3.json as is, resolution of
catalog names, and the rows of `%gpt4all list`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hub_server import sha256_of

from gpt4all_magic.errors import ModelError, ModelNotDownloadedError, ModelNotFoundError, NotEnoughMemoryError
from gpt4all_magic.models import catalog, memory
from gpt4all_magic.models.resolve import model_rows, resolve
from gpt4all_magic.options import GenerationOptions

# Two entries exactly as GPT4All's models3.json has them (nomic-ai/gpt4all, gpt4all-chat/metadata), plus a
# duplicate name as that file has ("SBert" appears twice).
MODELS3 = [
    {"order": "ab", "md5sum": "48ff0243978606fdba19d899b77802fc", "name": "Llama 3.2 1B Instruct",
     "filename": "Llama-3.2-1B-Instruct-Q4_0.gguf", "filesize": "773025920", "requires": "3.4.0",
     "ramrequired": "2", "parameters": "1 billion", "quant": "q4_0", "type": "LLaMA3",
     "description": "<ul><li>Fast responses</li><li>Instruct model</li></ul>",
     "url": "https://huggingface.co/bartowski/Llama-3.2-1B-Instruct-GGUF/resolve/main/Llama-3.2-1B-Instruct-Q4_0.gguf",
     "chatTemplate": "{{- bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"},
    {"order": "c", "md5sum": "97463be739b50525df56d33b26b00852", "name": "Mistral Instruct",
     "filename": "mistral-7b-instruct-v0.1.Q4_0.gguf", "filesize": "4108916384", "requires": "2.5.0",
     "ramrequired": "8", "parameters": "7 billion", "quant": "q4_0", "type": "Mistral", "systemPrompt": "",
     "description": "<strong>Strong overall fast instruction following model</strong>",
     "url": "https://gpt4all.io/models/gguf/mistral-7b-instruct-v0.1.Q4_0.gguf", "promptTemplate": "[INST] %1 [/INST]"},
    {"order": "r", "md5sum": "e479e6f38b59afc51a470d1953a6bfc7", "disableGUI": "true", "name": "SBert",
     "filename": "all-MiniLM-L6-v2-f16.gguf", "filesize": "45887744", "ramrequired": "1",
     "parameters": "40 million", "quant": "f16", "type": "Bert", "embeddingModel": True, "description": "",
     "url": "https://gpt4all.io/models/gguf/all-MiniLM-L6-v2-f16.gguf"},
    {"order": "r", "md5sum": "dd90e2cb7f8e9316ac3796cece9883b5", "name": "SBert",
     "filename": "all-MiniLM-L6-v2.gguf2.f16.gguf", "filesize": "45949216", "ramrequired": "1",
     "parameters": "40 million", "quant": "f16", "type": "Bert", "embeddingModel": True, "description": "",
     "url": "https://gpt4all.io/models/gguf/all-MiniLM-L6-v2.gguf2.f16.gguf"},
]


def test_packaged_catalog_is_complete_and_honest(hermetic, bundled_path):
    entries = catalog.load_catalog(hermetic)
    assert len(entries) >= 15 and len({e.filename for e in entries.values()}) == len(entries)
    embedders = {name: e for name, e in entries.items() if e.embedding}
    assert sorted(embedders) == ["all-minilm-l6-v2", "bge-small-en-v1.5", "nomic-embed-text-v1.5"]
    for e in embedders.values():  # pinned hashes, exact sizes, downloaded like the chat models
        assert e.sha256sum and len(e.sha256sum) == 64 and "filesize" not in e.estimated and e.n_ctx_train <= 2048
        assert e.ram_bytes > e.filesize > 30_000_000 and e.repo_id and e.hf_filename == e.filename
    assert embedders["nomic-embed-text-v1.5"].prefixes == {"document": "search_document: ", "query": "search_query: "}
    assert embedders["all-minilm-l6-v2"].prefixes == {} and "query" in embedders["bge-small-en-v1.5"].prefixes
    entries = {name: e for name, e in entries.items() if not e.embedding}
    counts = [e.parameter_count for e in entries.values()]
    assert counts == sorted(counts) and counts[0] == 135_000_000 and 7.5e9 < counts[-1] < 8.5e9
    allowed_estimates = {"filesize", "ramrequired"}
    for e in entries.values():
        assert e.origin == "package" and e.name == catalog.slug(e.name)
        assert e.repo_id.count("/") == 1 and e.hf_filename.endswith(".gguf") and e.license and e.n_ctx_train
        assert e.url == f"https://huggingface.co/{e.repo_id}/resolve/{e.revision}/{e.hf_filename}"
        assert e.quant.lower() in e.hf_filename.lower() and e.description
        assert "ramrequired" in e.estimated and set(e.estimated) <= allowed_estimates
        # RAM covers the weights plus a KV cache; round sizes are flagged as estimates, exact ones are not
        assert e.ram_bytes > e.filesize > 50_000_000
        assert ("filesize" in e.estimated) == (e.filesize % 1_000_000 == 0)
        GenerationOptions.from_mapping(e.generation_defaults())  # the sampling defaults are valid options
    bundled = entries[catalog.BUNDLED_NAME]
    assert bundled.filesize == bundled_path.stat().st_size and bundled.sha256sum == sha256_of(bundled_path)
    assert bundled.hf_filename == catalog.BUNDLED_FILE and len(bundled.revision) == 40


def test_sampling_defaults_map_to_option_names(hermetic):
    qwen = catalog.load_catalog(hermetic)["qwen2.5-1.5b-instruct"]
    assert qwen.generation_defaults() == {"temp": 0.7, "top_p": 0.8, "top_k": 20, "repeat_penalty": 1.05}


def test_user_catalog_adds_and_overrides_entries(hermetic, monkeypatch, tmp_path):
    hermetic.mkdir()
    (hermetic / "catalog.json").write_text(json.dumps({"models": [
        {"name": "qwen2.5-0.5b-instruct", "repo_id": "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
         "hf_filename": "qwen2.5-0.5b-instruct-q8_0.gguf", "quant": "Q8_0", "filesize": 675710816},
        {"name": "My Tiny Model", "repo_id": "me/tiny-GGUF", "hf_filename": "tiny.gguf", "temperature": 0.1}]}))
    extra = tmp_path / "team-catalog.json"
    extra.write_text(json.dumps([{"name": "team-model", "repo_id": "team/m-GGUF", "hf_filename": "m.gguf"}]))
    monkeypatch.setenv(catalog.CATALOG_ENV, str(extra))
    entries = catalog.load_catalog(hermetic)
    assert entries["qwen2.5-0.5b-instruct"].hf_filename == "qwen2.5-0.5b-instruct-q8_0.gguf"
    assert entries["qwen2.5-0.5b-instruct"].origin == str(hermetic / "catalog.json")
    tiny = entries["my-tiny-model"]
    assert tiny.title == "My Tiny Model" and tiny.sampling == {"temperature": 0.1}
    assert entries["team-model"].repo_id == "team/m-GGUF" and "llama-3.1-8b-instruct" in entries
    with pytest.raises(ModelNotDownloadedError, match=r"^my-tiny-model is in the catalog but not downloaded"):
        resolve("My Tiny Model", hermetic)


def test_gpt4all_models3_json_is_imported_as_is(hermetic, tmp_path):
    source = tmp_path / "models3.json"
    source.write_text(json.dumps(MODELS3))
    names = catalog.import_catalog(source, hermetic)
    assert names == ["llama-3.2-1b-instruct", "mistral-instruct", "sbert", "sbert"]
    entries = catalog.load_catalog(hermetic)
    llama = entries["llama-3.2-1b-instruct"]  # replaces the packaged Q4_K_M entry of the same name
    assert (llama.repo_id, llama.revision, llama.hf_filename) == (
        "bartowski/Llama-3.2-1B-Instruct-GGUF", "main", "Llama-3.2-1B-Instruct-Q4_0.gguf")
    assert (llama.filesize, llama.ramrequired, llama.quant, llama.md5sum) == (
        773025920, 2.0, "Q4_0", "48ff0243978606fdba19d899b77802fc")
    assert llama.chat_template.startswith("{{- bos_token }}") and llama.description == "Fast responses Instruct model"
    mistral = entries["mistral-instruct"]
    assert mistral.repo_id is None and mistral.url.startswith("https://gpt4all.io/") and mistral.system_message == ""
    assert entries["sbert"].filename == "all-MiniLM-L6-v2-f16.gguf" and entries["sbert"].embedding
    assert not mistral.embedding
    assert entries["all-minilm-l6-v2.gguf2.f16"].filename == "all-MiniLM-L6-v2.gguf2.f16.gguf"
    # importing again merges (no duplicates), and the user file is still a models3-style list
    catalog.import_catalog(source, hermetic)
    assert len(json.loads((hermetic / "catalog.json").read_text())) == 4
    rows = {r["name"]: r for r in model_rows(hermetic)}
    assert (rows["llama-3.2-1b-instruct"]["quant"], rows["llama-3.2-1b-instruct"]["size"]) == ("Q4_0", "773.0 MB")


def test_a_broken_catalog_file_is_one_clear_line_and_the_bundled_model_still_loads(hermetic, tmp_path):
    hermetic.mkdir()
    (hermetic / "catalog.json").write_text('[{"name": "x", "repo_id": "no-slash", "hf_filename": "a.gguf"}]')
    with pytest.raises(ModelError) as bad:
        catalog.load_catalog(hermetic)
    assert str(bad.value) == (f"The catalog file {hermetic / 'catalog.json'}, entry 0 (x): 'repo_id' must look like "
                              "ORG/NAME, got 'no-slash'; fix the entry or remove it.")
    assert resolve(None, hermetic).source == "bundled"
    (hermetic / "catalog.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"is not valid JSON \(.*\); fix it or remove it\.$"):
        resolve("anything", hermetic)
    source = tmp_path / "bad-models3.json"
    source.write_text(json.dumps([{"name": "Broken", "filename": "b.gguf", "md5sum": "not-a-hash"}]))
    with pytest.raises(ModelError, match="'md5sum' must be 32 hex digits"):
        catalog.import_catalog(source, tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere" / "catalog.json").exists()


def test_catalog_model_not_downloaded_names_the_command(hermetic):
    with pytest.raises(ModelNotDownloadedError) as missing:
        resolve("qwen2.5-1.5b-instruct", hermetic)
    assert str(missing.value) == (
        "qwen2.5-1.5b-instruct is in the catalog but not downloaded yet (986.0 MB); run "
        "`%gpt4all download qwen2.5-1.5b-instruct` or `%gpt4all load qwen2.5-1.5b-instruct --download`.")
    with pytest.raises(ModelNotDownloadedError, match=r"^qwen2.5-7b-instruct is .* \(~4.7 GB\)"):
        resolve("Qwen2.5-7B-Instruct-Q4_K_M.gguf", hermetic)  # its file name works too
    with pytest.raises(ModelNotDownloadedError, match="download it with `%gpt4all download org/repo/x.gguf`"):
        resolve("org/repo/x.gguf", hermetic)
    with pytest.raises(ModelNotFoundError, match=r"Did you mean 'qwen2.5-7b-instruct'\?"):
        resolve("qwen2.5-7b-instrukt", hermetic)


def test_a_gpt4all_file_in_the_models_dir_counts_as_that_catalog_model(hermetic, bundled_path, monkeypatch):
    entry = catalog.load_catalog(hermetic)["qwen2.5-0.5b-instruct"]
    hermetic.mkdir()
    shutil.copyfile(bundled_path, hermetic / entry.filename)  # as if copied from GPT4All's model folder
    ref = resolve("qwen2.5-0.5b-instruct", hermetic)
    assert (ref.source, ref.path) == ("catalog", hermetic / entry.filename)
    assert resolve("Qwen2.5-0.5B-Instruct-Q4_K_M", hermetic) == ref  # its file stem still works
    rows = model_rows(hermetic)
    assert [r["name"] for r in rows].count("qwen2.5-0.5b-instruct") == 1
    assert "Qwen2.5-0.5B-Instruct-Q4_K_M" not in [r["name"] for r in rows]


def test_list_rows_show_catalog_and_installed_with_ram_fit(hermetic, bundled_path, monkeypatch):
    hermetic.mkdir()
    shutil.copyfile(bundled_path, hermetic / "my-copy.gguf")
    monkeypatch.setattr(memory, "available_ram", lambda: 1_500_000_000)
    rows = {r["name"]: r for r in model_rows(hermetic, loaded="smollm2-135m-instruct")}
    bundled, copy, small, big = (rows["smollm2-135m-instruct"], rows["my-copy"], rows["qwen2.5-1.5b-instruct"],
                                 rows["llama-3.1-8b-instruct"])
    assert (bundled["source"], bundled["installed"], bundled["loaded"], bundled["fits"]) == (
        "bundled", True, True, True)
    assert bundled["ram_needed"] == "212.0 MB" and bundled["license"] == "apache-2.0"
    assert (copy["source"], copy["installed"], copy["quant"], copy["parameters"]) == ("installed", True, "Q4_1", "135M")
    assert (small["installed"], small["fits"], small["size"], small["ram_needed"]) == (
        False, True, "986.0 MB", "1.3 GB")
    assert (big["fits"], big["size"], big["parameters"], big["context"]) == (False, "~4.9 GB", "8.0B", 131072)
    assert list(rows)[:2] == ["smollm2-135m-instruct", "my-copy"]  # what is on disk comes first
    assert set(bundled) >= {"name", "parameters", "quant", "size", "ram_needed", "installed", "fits"}


def test_ram_check_before_downloading_a_catalog_model(hermetic):
    entry = catalog.load_catalog(hermetic)["qwen2.5-7b-instruct"]
    with pytest.raises(NotEnoughMemoryError) as small:
        memory.check_catalog_ram(entry, force=False, available=2_000_000_000)
    assert str(small.value) == (
        "qwen2.5-7b-instruct needs about 5.5 GB of RAM (catalog estimate at n_ctx 4096) but only 2.0 GB is free, "
        "so it was not downloaded; pick a smaller model from `%gpt4all list`, or go ahead with "
        "`%gpt4all load qwen2.5-7b-instruct --download --force`.")
    memory.check_catalog_ram(entry, force=True, available=2_000_000_000)
    memory.check_catalog_ram(entry, force=False, available=8_000_000_000)


def test_catalog_is_read_from_disk_only(hermetic, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("the catalog touched the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert len(model_rows(hermetic)) >= 12
    with pytest.raises(ModelNotDownloadedError):
        resolve("gemma-2-2b-it", hermetic)
    assert Path(catalog.PACKAGE_CATALOG).is_file()
