"""Build synthetic GGUF files for tests: header, key/values, tensor infos and tensor data."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_FORMATS = {
    U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f",
    BOOL: "?", U64: "Q", I64: "q", F64: "d",
}  # fmt: skip
GGML_F32, GGML_Q8_0 = 0, 8

TEMPLATE = "{%- for m in messages %}<|im_start|>{{ m.content }}<tool_call>{%- endfor %}"

KV = tuple[str, int, Any]  # key, GGUF type, value (arrays: (item type, items))
Tensor = tuple[str, list[int], int, bytes]  # name, dims, ggml type, data


def _encode(vtype: int, value: Any, endian: str) -> bytes:
    if vtype == STRING:
        raw = str(value).encode()
        return struct.pack(endian + "Q", len(raw)) + raw
    if vtype == ARRAY:
        item_type, items = value
        body = b"".join(_encode(item_type, item, endian) for item in items)
        return struct.pack(endian + "IQ", item_type, len(items)) + body
    return struct.pack(endian + _FORMATS[vtype], value)


def gguf_bytes(
    kv: Sequence[KV],
    tensors: Sequence[Tensor] = (),
    *,
    version: int = 3,
    alignment: int = 32,
    endian: str = "<",
    pad: bool = True,
) -> bytes:
    """A GGUF file: header, key/values, tensor infos, then each tensor's data, aligned.

    With ``pad=False`` and no tensors the file ends right after the last
    key/value, with no alignment padding.
    """
    head = b"GGUF" + struct.pack(endian + "IQQ", version, len(tensors), len(kv))
    for key, vtype, value in kv:
        head += _encode(STRING, key, endian) + struct.pack(endian + "I", vtype)
        head += _encode(vtype, value, endian)
    data, infos = b"", b""
    for name, dims, ggml_type, blob in tensors:
        data += b"\0" * (-len(data) % alignment)
        infos += _encode(STRING, name, endian) + struct.pack(endian + "I", len(dims))
        infos += struct.pack(endian + f"{len(dims)}Q", *dims)
        infos += struct.pack(endian + "IQ", ggml_type, len(data))
        data += blob
    head += infos
    if pad or tensors:
        head += b"\0" * (-len(head) % alignment)
    return head + data


def model_kv(arch: str = "qwen2", ftype: int = 15) -> list[KV]:
    """Key/values like a real Qwen2.5 GGUF's, with a large vocabulary array."""
    return [
        ("general.architecture", STRING, arch),
        ("general.name", STRING, "Tiny Test"),
        ("general.size_label", STRING, "0.5B"),
        (f"{arch}.context_length", U32, 32768),
        (f"{arch}.block_count", U32, 24),
        (f"{arch}.rope.freq_base", F32, 1000000.0),
        ("general.file_type", U32, ftype),
        ("tokenizer.ggml.add_bos_token", BOOL, False),
        ("tokenizer.ggml.eos_token_id", I32, -5),
        ("general.big", U64, 2**40),
        ("general.signed", I64, -(2**40)),
        ("general.double", F64, 0.25),
        ("general.tags", ARRAY, (STRING, ["a", "bc"])),
        ("general.small", ARRAY, (U8, [1, 2, 3])),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, [f"tok{i}" for i in range(100)])),
        ("tokenizer.ggml.token_type", ARRAY, (I32, list(range(1000)))),
        ("nested", ARRAY, (ARRAY, [(U8, [i]) for i in range(70)])),
        ("tokenizer.chat_template", STRING, TEMPLATE),
    ]


def f32_tensors() -> list[Tensor]:
    """Two small F32 tensors (6 and 5 floats)."""
    return [
        ("a.weight", [2, 3], GGML_F32, struct.pack("<6f", *range(6))),
        ("b.weight", [5], GGML_F32, struct.pack("<5f", *range(5))),
    ]
