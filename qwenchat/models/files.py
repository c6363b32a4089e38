"""Model files on disk: the stamps that spare re-hashing a verified file, the check of a
file's sha256 and size, and room on the disk before writing one."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path

from qwenchat.errors import ModelError

STAMP_SUFFIX = ".verified"
PARTIAL_SUFFIX = ".partial"
CHUNK = 4 << 20
"""Bytes read or written at a time when hashing, joining or downloading model files."""


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read a chunk at a time (OSError if it cannot be read)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stamp_path(target: Path) -> Path:
    """Where ``target``'s ``.verified`` stamp lives."""
    return target.with_name(target.name + STAMP_SUFFIX)


def stamp_matches(target: Path, sha256: str, size: int) -> bool:
    """Whether ``target`` has a stamp for this sha256 and size that matches its size and mtime."""
    try:
        stat = target.stat()
        stamp = json.loads(stamp_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    expected = {"sha256": sha256, "size": size, "mtime_ns": stat.st_mtime_ns}
    return stat.st_size == size and stamp == expected


def write_stamp(target: Path, sha256: str, size: int) -> None:
    """Record that ``target``, as it is now, was checked against ``sha256``."""
    stamp = {"sha256": sha256, "size": size, "mtime_ns": target.stat().st_mtime_ns}
    # Without a stamp the file is just hashed again next time.
    with contextlib.suppress(OSError):
        stamp_path(target).write_text(json.dumps(stamp), encoding="utf-8")


def verify_file(target: Path, sha256: str, size: int) -> bool:
    """Whether ``target`` has this sha256 and size: by its stamp, else by hashing it
    (once: a good file is stamped)."""
    if stamp_matches(target, sha256, size):
        return True
    try:
        if target.stat().st_size != size:
            return False
        if file_sha256(target) != sha256:
            return False
    except OSError:
        return False
    write_stamp(target, sha256, size)
    return True


def check_free_space(directory: Path, needed: int, what: str) -> None:
    """Raise :class:`ModelError` unless ``directory`` has ``needed`` bytes free for ``what``."""
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise ModelError(
            f"not enough disk space in {directory} for {what}: "
            f"need {-(-needed // 2**20)} MiB, {free // 2**20} MiB free; free some space"
        )
