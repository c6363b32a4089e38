"""A small, pure-Python reader for GGUF file headers.

Reads the metadata key/values and the tensor info table of a GGUF v2/v3 file
(little-endian only) without loading any tensor data, and checks that the file
is long enough to hold every tensor. The file is memory-mapped, so only the
header pages are read: the 500 MB test model's header (with its 150k-token
vocabulary to skip) takes 35-80 ms, so a validated header can be cached
(see :func:`read_metadata`).

Large arrays (the tokenizer's vocabulary, merges, scores...) are not decoded:
they are kept as :class:`LargeArray` (item type and length). Strings, scalars and
arrays of at most :data:`MAX_ARRAY_ITEMS` items are kept as Python values.

Every problem is raised as a one-line :class:`~qwenchat.errors.ModelError`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import mmap
import os
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from qwenchat.errors import ModelError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_ARRAY_ITEMS = 64
MAX_DIMS = 4

# GGUF metadata value types: id -> struct format of a fixed-size value.
_STRING, _ARRAY = 8, 9
_SCALAR_FORMATS: dict[int, str] = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f",
    7: "<?", 10: "<Q", 11: "<q", 12: "<d",
}  # fmt: skip

_FTYPE_GUESSED = 1024  # llama_ftype's flag for a file type guessed from the tensors


@functools.cache
def _block_sizes() -> dict[int, tuple[int, int]]:
    """ggml tensor types: id -> (elements per block, bytes per block), from the ``gguf``
    package (llama.cpp's own gguf-py). Imported on first use: it costs 0.15 s."""
    from gguf.constants import GGML_QUANT_SIZES

    return {int(kind): sizes for kind, sizes in GGML_QUANT_SIZES.items()}


@functools.cache
def _file_types() -> dict[int, str]:
    """llama.cpp's ``llama_ftype`` (``general.file_type``) -> its name (``Q4_K_M``)."""
    from gguf.constants import LlamaFileType

    return {
        int(kind): kind.name.removeprefix("MOSTLY_").removeprefix("ALL_")
        for kind in LlamaFileType
        if kind.name != "GUESSED"
    }


_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


@dataclass(frozen=True)
class LargeArray:
    """An array value that was skipped: its GGUF item type id and its length."""

    item_type: int
    length: int


Scalar: TypeAlias = "int | float | bool | str"
Value: TypeAlias = "Scalar | list[Value] | LargeArray"


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF header says about a model file."""

    path: Path
    version: int
    tensor_count: int
    kv: Mapping[str, Value]
    data_offset: int
    """Where the tensor data starts (the header end, aligned)."""
    required_size: int
    """The smallest file size that holds every tensor."""
    parameter_count: int = 0
    """The elements of every tensor in this file, summed (one part's share for a split model)."""

    def _str(self, key: str) -> str | None:
        value = self.kv.get(key)
        return value if isinstance(value, str) else None

    def _int(self, key: str) -> int | None:
        value = self.kv.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def architecture(self) -> str | None:
        """``general.architecture``, e.g. ``qwen2``."""
        return self._str("general.architecture")

    @property
    def name(self) -> str | None:
        """``general.name``, e.g. ``Qwen2.5 Coder 0.5B Instruct``."""
        return self._str("general.name")

    @property
    def size_label(self) -> str | None:
        """``general.size_label``, e.g. ``0.5B``."""
        return self._str("general.size_label")

    @property
    def chat_template(self) -> str | None:
        """``tokenizer.chat_template``: the model's Jinja chat template."""
        return self._str("tokenizer.chat_template")

    @property
    def context_length(self) -> int | None:
        """``{arch}.context_length``: the context the model was trained for."""
        return self._int(f"{self.architecture}.context_length") if self.architecture else None

    @property
    def block_count(self) -> int | None:
        """``{arch}.block_count``: the number of transformer layers."""
        return self._int(f"{self.architecture}.block_count") if self.architecture else None

    @property
    def file_type(self) -> str | None:
        """``general.file_type`` as a quantization name, e.g. ``Q4_K_M``."""
        ftype = self._int("general.file_type")
        if ftype is None:
            return None
        base = ftype & ~_FTYPE_GUESSED
        name = _file_types().get(base, f"unknown type {base}")
        return f"{name} (guessed)" if ftype & _FTYPE_GUESSED else name


class _Truncated(Exception):
    """Internal: the file ended before ``needed`` bytes could be read."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


class _Corrupt(Exception):
    """Internal: the header holds an impossible value."""


class _Reader:
    """Sequential little-endian reads from a buffer, with bounds checks."""

    def __init__(self, buf: mmap.mmap, size: int) -> None:
        self.buf = buf
        self.size = size
        self.pos = 0

    def _need(self, n: int) -> int:
        start, end = self.pos, self.pos + n
        if end > self.size:
            raise _Truncated(end)
        self.pos = end
        return start

    def unpack(self, fmt: struct.Struct) -> int:
        return fmt.unpack_from(self.buf, self._need(fmt.size))[0]  # type: ignore[no-any-return]

    def scalar(self, fmt: str) -> Scalar:
        start = self._need(struct.calcsize(fmt))
        return struct.unpack_from(fmt, self.buf, start)[0]  # type: ignore[no-any-return]

    def string(self) -> str:
        length = self.unpack(_U64)
        start = self._need(length)
        return self.buf[start : start + length].decode("utf-8", errors="replace")

    def skip(self, n: int) -> None:
        self._need(n)

    def skip_strings(self, count: int) -> None:
        """Skip ``count`` length-prefixed strings (the fast path for vocabularies)."""
        buf, pos, unpack = self.buf, self.pos, _U64.unpack_from
        try:
            for _ in range(count):
                pos += 8 + unpack(buf, pos)[0]
        except struct.error:  # the length prefix at pos runs past the end
            raise _Truncated(pos + 8) from None
        if pos > self.size:
            raise _Truncated(pos)
        self.pos = pos


def read_metadata(path: str | os.PathLike[str], cache_dir: Path | None = None) -> GGUFInfo:
    """Read and validate the header of the GGUF file at ``path``.

    Raises :class:`ModelError` (one line) if the file cannot be read, is not a
    GGUF file, is big-endian or of an unsupported version, is corrupt, or is
    shorter than its tensors need.

    With ``cache_dir``, a header that passed validation is kept there as JSON,
    keyed by the file's path, device, inode, size and mtime, and reused while
    they are unchanged: walking the vocabulary costs tens of milliseconds on
    every start, which ``qwenchat ask`` should not pay for an unchanged file.
    """
    path = Path(path)
    if cache_dir is None:
        return _read_file(path)
    cache_file, key = _cache_entry(path, cache_dir)
    cached = _load_cached(cache_file, key, path)
    if cached is not None:
        return cached
    info = _read_file(path)
    _store_cached(cache_file, key, info)
    return info


def _read_file(path: Path) -> GGUFInfo:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            _check_magic(path, handle.read(4), size)
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse(path, buf, size)
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None


# --- the header cache -------------------------------------------------------------


def _cache_entry(path: Path, cache_dir: Path) -> tuple[Path, list[object]]:
    """The cache file for ``path`` and the key that must match for it to be used."""
    try:
        resolved = path.resolve()
        st = resolved.stat()
    except OSError:
        return cache_dir / "missing.json", []  # no key matches: read_file reports the error
    name = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:32]
    return cache_dir / f"{name}.json", [
        str(resolved),
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
    ]


def _load_cached(cache_file: Path, key: list[object], path: Path) -> GGUFInfo | None:
    if not key:
        return None
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
        if data["key"] != key:
            return None
        kv = {k: _decode_value(v) for k, v in data["kv"].items()}
        return GGUFInfo(
            path,
            data["version"],
            data["tensor_count"],
            kv,
            data["data_offset"],
            data["required_size"],
            data["parameter_count"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, stale or damaged: read the file again


def _store_cached(cache_file: Path, key: list[object], info: GGUFInfo) -> None:
    if not key:
        return
    data = {
        "key": key,
        "version": info.version,
        "tensor_count": info.tensor_count,
        "data_offset": info.data_offset,
        "required_size": info.required_size,
        "parameter_count": info.parameter_count,
        "kv": {k: _encode_value(v) for k, v in info.kv.items()},
    }
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_file.parent, suffix=".tmp")
    except OSError:
        return  # an unwritable cache only costs speed
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False)
        os.replace(tmp, cache_file)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def _encode_value(value: Value) -> object:
    if isinstance(value, LargeArray):
        return {"large_array": [value.item_type, value.length]}
    if isinstance(value, list):
        return [_encode_value(item) for item in value]
    return value


def _decode_value(value: object) -> Value:
    if isinstance(value, dict):
        item_type, length = value["large_array"]
        return LargeArray(item_type, length)
    if isinstance(value, list):
        return [_decode_value(item) for item in value]
    if isinstance(value, (int, float, str)):
        return value
    raise TypeError(f"unexpected cached value {value!r}")


def _check_magic(path: Path, head: bytes, size: int) -> None:
    if size == 0:
        raise ModelError(f"{path} is empty (0 bytes), not a GGUF model; download it again")
    if head == GGUF_MAGIC:
        return
    if len(head) < 4 and GGUF_MAGIC.startswith(head):
        raise _truncated(path, 4, size)
    hint = _magic_hint(head)
    raise ModelError(f"{path} is not a GGUF file (bad magic{hint}); download a .gguf model")


def _magic_hint(head: bytes) -> str:
    if head.lstrip().startswith(b"<"):
        return ": it looks like an HTML page"
    if head == b"vers":
        return ": it looks like a Git LFS pointer"
    return ""


def _truncated(path: Path, needed: int, size: int) -> ModelError:
    return ModelError(
        f"{path} is truncated (expected at least {needed} bytes, found {size}); download it again"
    )


def _parse(path: Path, buf: mmap.mmap, size: int) -> GGUFInfo:
    reader = _Reader(buf, size)
    reader.skip(4)
    try:
        version = _read_version(path, reader)
        tensor_count, kv_count = reader.unpack(_U64), reader.unpack(_U64)
        _check_counts(tensor_count, kv_count, size)
        kv = {reader.string(): _read_value(reader, reader.unpack(_U32)) for _ in range(kv_count)}
        tensor_end, parameters = _read_tensor_table(reader, tensor_count)
        alignment = _alignment(kv)
    except _Truncated as exc:
        raise _truncated(path, exc.needed, size) from None
    except _Corrupt as exc:
        raise ModelError(f"{path} is corrupt ({exc}); download it again") from None
    except RecursionError:
        raise ModelError(f"{path} is corrupt (arrays nested too deeply)") from None
    data_offset = -(-reader.pos // alignment) * alignment
    required = data_offset + tensor_end if tensor_count else reader.pos
    if size < required:
        raise _truncated(path, required, size)
    return GGUFInfo(path, version, tensor_count, kv, data_offset, required, parameters)


def _read_version(path: Path, reader: _Reader) -> int:
    version = reader.unpack(_U32)
    if version in SUPPORTED_VERSIONS:
        return version
    if int.from_bytes(version.to_bytes(4, "little"), "big") in SUPPORTED_VERSIONS:
        raise ModelError(
            f"{path} is a big-endian GGUF file, which is not supported; use a little-endian .gguf"
        )
    raise ModelError(f"{path} has GGUF version {version}, which is not supported (only 2 and 3)")


def _check_counts(tensor_count: int, kv_count: int, size: int) -> None:
    """Fail fast on counts that cannot fit: a tensor info takes 24+ bytes, a key/value 13+."""
    needed = 24 + tensor_count * 24 + kv_count * 13
    if needed > size:
        raise _Truncated(needed)


def _read_value(reader: _Reader, vtype: int) -> Value:
    fmt = _SCALAR_FORMATS.get(vtype)
    if fmt is not None:
        return reader.scalar(fmt)
    if vtype == _STRING:
        return reader.string()
    if vtype == _ARRAY:
        return _read_array(reader)
    raise _Corrupt(f"unknown metadata value type {vtype}")


def _read_array(reader: _Reader) -> Value:
    item_type, length = reader.unpack(_U32), reader.unpack(_U64)
    if length <= MAX_ARRAY_ITEMS:
        return [_read_value(reader, item_type) for _ in range(length)]
    fmt = _SCALAR_FORMATS.get(item_type)
    if fmt is not None:
        reader.skip(length * struct.calcsize(fmt))
    elif item_type == _STRING:
        reader.skip_strings(length)
    else:  # arrays of arrays: rare, skip them one by one
        for _ in range(length):
            _read_value(reader, item_type)
    return LargeArray(item_type, length)


def _read_tensor_table(reader: _Reader, count: int) -> tuple[int, int]:
    """Read the tensor infos; return the end of the furthest tensor, relative to the data
    start, and the number of elements of all tensors."""
    end = elements = 0
    for _ in range(count):
        name = reader.string()
        n_dims = reader.unpack(_U32)
        if n_dims > MAX_DIMS:
            raise _Corrupt(f"tensor '{name}' has {n_dims} dimensions")
        n_elements = 1
        for _ in range(n_dims):
            n_elements *= reader.unpack(_U64)
        ggml_type, offset = reader.unpack(_U32), reader.unpack(_U64)
        end = max(end, offset + _tensor_bytes(name, ggml_type, n_elements))
        elements += n_elements
    return end, elements


def _tensor_bytes(name: str, ggml_type: int, n_elements: int) -> int:
    """The size of a tensor's data; 0 for a type this table does not know yet."""
    block, nbytes = _block_sizes().get(ggml_type, (1, 0))
    if n_elements % block:
        raise _Corrupt(f"tensor '{name}' has {n_elements} elements, not a multiple of {block}")
    return n_elements // block * nbytes


def _alignment(kv: Mapping[str, Value]) -> int:
    alignment = kv.get("general.alignment", DEFAULT_ALIGNMENT)
    if type(alignment) is int and alignment > 0 and not alignment & (alignment - 1):
        return alignment
    raise _Corrupt(f"general.alignment is {alignment!r}, not a power of two")
