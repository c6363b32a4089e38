"""Tests for qwenchat.models.gguf: synthetic GGUF files, plus the real test model."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from qwenchat.errors import ModelError
from qwenchat.models.gguf import LargeArray, read_metadata
from tests.gguf_builder import (
    ARRAY,
    GGML_Q8_0,
    I32,
    KV,
    STRING,
    TEMPLATE,
    U8,
    U16,
    U32,
    f32_tensors,
    gguf_bytes,
    model_kv,
)


def write(tmp_path: Path, data: bytes, name: str = "m.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def model_error(path: Path) -> str:
    """read_metadata's error for ``path``, checked to be one line."""
    with pytest.raises(ModelError) as info:
        read_metadata(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_reads_header_values_and_properties(tmp_path: Path) -> None:
    data = gguf_bytes(model_kv(), f32_tensors())
    info = read_metadata(write(tmp_path, data))
    assert (info.version, info.tensor_count) == (3, 2)
    assert info.architecture == "qwen2"
    assert info.name == "Tiny Test"
    assert info.size_label == "0.5B"
    assert (info.context_length, info.block_count) == (32768, 24)
    assert info.file_type == "Q4_K_M"
    assert info.chat_template == TEMPLATE
    assert info.kv["qwen2.rope.freq_base"] == 1000000.0
    assert info.kv["tokenizer.ggml.add_bos_token"] is False
    assert info.kv["tokenizer.ggml.eos_token_id"] == -5
    assert (info.kv["general.big"], info.kv["general.signed"]) == (2**40, -(2**40))
    assert info.kv["general.double"] == 0.25
    assert info.kv["general.tags"] == ["a", "bc"]
    assert info.kv["general.small"] == [1, 2, 3]


def test_large_arrays_are_kept_as_their_length(tmp_path: Path) -> None:
    info = read_metadata(write(tmp_path, gguf_bytes(model_kv())))
    assert info.kv["tokenizer.ggml.tokens"] == LargeArray(STRING, 100)
    assert info.kv["tokenizer.ggml.token_type"] == LargeArray(I32, 1000)
    assert info.kv["nested"] == LargeArray(ARRAY, 70)
    assert info.chat_template == TEMPLATE  # read past the skipped arrays correctly


def test_tensor_data_end_is_computed(tmp_path: Path) -> None:
    data = gguf_bytes(model_kv(), f32_tensors())
    info = read_metadata(write(tmp_path, data))
    assert info.data_offset % 32 == 0
    assert info.required_size == len(data) == info.data_offset + 32 + 5 * 4


def test_quantized_tensor_sizes(tmp_path: Path) -> None:
    tensors = [("q.weight", [32, 2], GGML_Q8_0, b"\1" * 68)]
    data = gguf_bytes(model_kv(), tensors)
    assert read_metadata(write(tmp_path, data)).required_size == len(data)
    with pytest.raises(ModelError, match="truncated"):
        read_metadata(write(tmp_path, data[:-1]))


def test_custom_alignment(tmp_path: Path) -> None:
    kv = [*model_kv(), ("general.alignment", U32, 64)]
    data = gguf_bytes(kv, f32_tensors(), alignment=64)
    info = read_metadata(write(tmp_path, data))
    assert info.data_offset % 64 == 0 and info.required_size == len(data)


def test_version_2_and_trailing_bytes_are_accepted(tmp_path: Path) -> None:
    data = gguf_bytes(model_kv(), f32_tensors(), version=2) + b"extra"
    assert read_metadata(write(tmp_path, data)).version == 2


def test_missing_keys_give_none(tmp_path: Path) -> None:
    info = read_metadata(write(tmp_path, gguf_bytes([("general.file_type", STRING, "x")])))
    assert info.architecture is None and info.name is None and info.chat_template is None
    assert info.context_length is None and info.block_count is None
    assert info.file_type is None and info.size_label is None


@pytest.mark.parametrize(
    ("ftype", "name"),
    [(0, "F32"), (1, "F16"), (7, "Q8_0"), (14, "Q4_K_S"), (18, "Q6_K"), (32, "BF16"),
     (15 | 1024, "Q4_K_M (guessed)"), (99, "unknown type 99")],
)  # fmt: skip
def test_file_type_names(tmp_path: Path, ftype: int, name: str) -> None:
    info = read_metadata(write(tmp_path, gguf_bytes(model_kv(ftype=ftype))))
    assert info.file_type == name


def test_other_architecture_is_read(tmp_path: Path) -> None:
    info = read_metadata(write(tmp_path, gguf_bytes(model_kv(arch="llama"))))
    assert (info.architecture, info.context_length) == ("llama", 32768)


def test_bad_magic(tmp_path: Path) -> None:
    message = model_error(write(tmp_path, b"PK\3\4" + b"\0" * 100))
    assert "is not a GGUF file (bad magic)" in message and "download a .gguf model" in message


def test_html_page_is_recognised(tmp_path: Path) -> None:
    message = model_error(write(tmp_path, b"<!DOCTYPE html><html></html>"))
    assert "HTML page" in message


def test_zero_byte_file(tmp_path: Path) -> None:
    assert "is empty" in model_error(write(tmp_path, b""))


def test_every_truncation_is_reported(tmp_path: Path) -> None:
    kv: list[KV] = [
        ("general.architecture", STRING, "qwen2"),
        ("general.small", ARRAY, (U16, [1, 2])),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, ["t"] * 65)),
        ("tokenizer.ggml.token_type", ARRAY, (I32, [1] * 65)),
    ]
    data = gguf_bytes(kv, f32_tensors())
    for cut in range(1, len(data)):
        message = model_error(write(tmp_path, data[:cut]))
        assert "is truncated (expected at least" in message, cut
        assert f"found {cut}); download it again" in message


def test_truncated_tensor_data_reports_the_full_size(tmp_path: Path) -> None:
    data = gguf_bytes(model_kv(), f32_tensors())
    message = model_error(write(tmp_path, data[:-1]))
    assert f"expected at least {len(data)} bytes, found {len(data) - 1}" in message


def test_big_endian_is_unsupported(tmp_path: Path) -> None:
    data = gguf_bytes(model_kv(), f32_tensors(), endian=">")
    assert "big-endian" in model_error(write(tmp_path, data))


@pytest.mark.parametrize("version", [1, 4])
def test_unsupported_version(tmp_path: Path, version: int) -> None:
    data = gguf_bytes(model_kv(), version=version)
    assert f"GGUF version {version}" in model_error(write(tmp_path, data))


def test_impossible_counts(tmp_path: Path) -> None:
    data = b"GGUF" + struct.pack("<IQQ", 3, 2**40, 1) + b"\0" * 64
    assert f"expected at least {24 + 2**40 * 24 + 13} bytes" in model_error(write(tmp_path, data))


def test_unknown_value_type(tmp_path: Path) -> None:
    data = bytearray(gguf_bytes([("k", U8, 1)]))
    data[33:37] = struct.pack("<I", 99)  # after magic, version, counts and the key "k"
    assert "unknown metadata value type 99" in model_error(write(tmp_path, bytes(data)))


def test_deeply_nested_arrays(tmp_path: Path) -> None:
    nested = struct.pack("<IQ", ARRAY, 1) * 5000 + struct.pack("<IQ", U8, 0)
    data = gguf_bytes([("k", U8, 1)])[:33] + struct.pack("<I", ARRAY) + nested
    assert "nested too deeply" in model_error(write(tmp_path, data))


@pytest.mark.parametrize("alignment", [0, 3])
def test_bad_alignment(tmp_path: Path, alignment: int) -> None:
    data = gguf_bytes([("general.alignment", U32, alignment)])
    assert "general.alignment" in model_error(write(tmp_path, data))


def test_tensor_size_not_a_block_multiple(tmp_path: Path) -> None:
    data = gguf_bytes(model_kv(), [("q.weight", [33], GGML_Q8_0, b"\0" * 68)])
    assert "not a multiple of 32" in model_error(write(tmp_path, data))


def test_unreadable_path(tmp_path: Path) -> None:
    assert "cannot read" in model_error(tmp_path)


@pytest.mark.model
def test_real_test_model(test_model_path: Path) -> None:
    info = read_metadata(test_model_path)
    assert info.architecture == "qwen2"
    assert info.context_length == 32768
    assert info.file_type == "Q4_K_M"
    assert info.block_count == 24
    assert info.chat_template is not None and "<tool_call>" in info.chat_template
    assert info.required_size == test_model_path.stat().st_size


# --- the header cache ----------------------------------------------------------


def test_cached_header_equals_the_read_one(tmp_path: Path) -> None:
    path = write(tmp_path, gguf_bytes(model_kv(), f32_tensors()))
    fresh = read_metadata(path, tmp_path / "cache")
    cached = read_metadata(path, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    assert cached == fresh == read_metadata(path)
    assert cached.kv["tokenizer.ggml.tokens"] == LargeArray(STRING, 100)
    assert type(cached.kv["tokenizer.ggml.add_bos_token"]) is bool


def test_cache_is_used_for_an_unchanged_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, gguf_bytes(model_kv(), f32_tensors()))
    read_metadata(path, tmp_path / "cache")

    def not_again(_path: Path) -> None:
        raise AssertionError("the file was parsed again")

    monkeypatch.setattr("qwenchat.models.gguf._read_file", not_again)
    assert read_metadata(path, tmp_path / "cache").architecture == "qwen2"


def test_a_changed_file_is_validated_again(tmp_path: Path) -> None:
    data = gguf_bytes(model_kv(), f32_tensors())
    path = write(tmp_path, data)
    read_metadata(path, tmp_path / "cache")
    path.write_bytes(data[:-8])  # truncated in place: size and mtime change
    with pytest.raises(ModelError, match="truncated"):
        read_metadata(path, tmp_path / "cache")


def test_a_damaged_cache_file_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, gguf_bytes(model_kv(), f32_tensors()))
    read_metadata(path, tmp_path / "cache")
    (cache_file,) = (tmp_path / "cache").glob("*.json")
    cache_file.write_text('{"key": 1, "kv"')
    assert read_metadata(path, tmp_path / "cache").context_length == 32768


def test_an_unwritable_cache_dir_only_costs_speed(tmp_path: Path) -> None:
    path = write(tmp_path, gguf_bytes(model_kv(), f32_tensors()))
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    assert read_metadata(path, blocker / "cache").block_count == 24


def test_a_missing_file_is_reported_with_a_cache(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read"):
        read_metadata(tmp_path / "absent.gguf", tmp_path / "cache")
