"""GGUF metadata without loading, and bad files refused before llama.cpp sees them."""

import os
import shutil

import pytest

from gpt4all_magic.errors import InvalidModelFileError
from gpt4all_magic.models.gguf import read_gguf


def test_bundled_metadata(bundled_path):
    info = read_gguf(bundled_path)
    assert info.architecture == "llama"
    assert info.quantization == "Q4_1"
    assert info.context_length == 8192
    assert info.parameters_label == "135M"
    assert 130e6 < info.n_parameters < 140e6
    assert "<|im_start|>" in info.chat_template
    summary = info.summary()
    assert summary["eos_token"] == "<|im_end|>"
    assert summary["layers"] == 30
    assert summary["vocab_size"] == 49152
    assert info.data_end <= info.file_size


def test_text_file_is_not_gguf(tmp_path):
    p = tmp_path / "notes.gguf"
    p.write_text("hello, I am not a model")
    with pytest.raises(InvalidModelFileError, match=r"notes.gguf is not a GGUF model file \(it starts with b'hell'"):
        read_gguf(p)


def test_random_bytes_are_refused(tmp_path):
    p = tmp_path / "random.gguf"
    p.write_bytes(os.urandom(4096))
    with pytest.raises(InvalidModelFileError, match="not a GGUF model file"):
        read_gguf(p)


def test_random_bytes_behind_the_magic_are_refused(tmp_path):
    p = tmp_path / "fake.gguf"
    p.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + os.urandom(4096))
    with pytest.raises(InvalidModelFileError, match="corrupt|truncated"):
        read_gguf(p)


def _cut_copy(bundled_path, p, keep):
    with open(bundled_path, "rb") as src, open(p, "wb") as dst:
        dst.write(src.read(keep))
    return p


@pytest.mark.parametrize("keep", [10, 1_000_000, 2_000_000, 60_000_000])
def test_truncated_copies_are_refused(tmp_path, bundled_path, keep):
    with pytest.raises(InvalidModelFileError, match="cut.gguf is truncated"):
        read_gguf(_cut_copy(bundled_path, tmp_path / "cut.gguf", keep))


def test_cut_inside_the_tensor_data_names_the_real_sizes(tmp_path, bundled_path):
    # The bundled file's header (vocabulary included) ends near 1.8 MB; 2 MB keeps it whole.
    with pytest.raises(InvalidModelFileError) as info:
        read_gguf(_cut_copy(bundled_path, tmp_path / "trunc.gguf", 2_000_000))
    assert str(info.value) == ("trunc.gguf is truncated: its tensors need 98.4 MB, but only 2.0 MB is on disk; "
                               "delete it and download it again.")


@pytest.mark.parametrize("keep, on_disk", [(1_000_000, "1.0 MB"), (10, "10 B")])
def test_cut_inside_the_header_says_so(tmp_path, bundled_path, keep, on_disk):
    with pytest.raises(InvalidModelFileError) as info:
        read_gguf(_cut_copy(bundled_path, tmp_path / "trunc.gguf", keep))
    assert str(info.value) == (f"trunc.gguf is truncated: it ends inside its header, after {on_disk}; "
                               "delete it and download it again.")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidModelFileError, match="Cannot read"):
        read_gguf(tmp_path / "nope.gguf")


def test_whole_copy_reads_like_the_original(tmp_path, bundled_path):
    p = tmp_path / "copy.gguf"
    shutil.copyfile(bundled_path, p)
    assert read_gguf(p).metadata == read_gguf(bundled_path).metadata
