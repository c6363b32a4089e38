"""KV states on disk, so a resumed session does not re-read its history.

After a reply, the engine's llama.cpp KV cache holds the whole conversation. That
state (per sequence: the keys and values only, not the logits buffer that
``Llama.save_state()`` copies) is saved as one file named for the exact token
sequence it holds; a new process whose prompt starts with such a sequence loads
it and evaluates only the rest. Files live in one directory per model file, the
least recently used go first when the directory outgrows its cap, and a file
that fails to load is deleted and ignored: the cache only ever costs speed.

llama.cpp loads a state whose bytes were changed without complaint, and the model
then writes garbage (``!!!!!!!!``) into the session for good. So each state is saved
with the sha256 of its bytes beside it (``.sha256``), and one whose bytes do not match,
or that has none, is deleted instead of loaded.
"""

from __future__ import annotations

import hashlib
import os
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path

_SUFFIX = ".kvs"
_DIGEST = ".sha256"
_CHUNK = 1 << 20


def token_key(tokens: Sequence[int]) -> str:
    """The file stem for a token sequence: its length, then a hash of the ids."""
    digest = hashlib.sha256(array("i", tokens).tobytes()).hexdigest()[:32]
    return f"{len(tokens)}-{digest}"


class KVCache:
    """Saved KV states of one model in ``directory``, at most ``max_bytes`` in all."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    @classmethod
    def for_model(cls, model: Path, cache_dir: Path, max_bytes: int) -> KVCache:
        """The cache of the model file ``model``: a changed file gets a new directory."""
        stat = model.stat()
        return cls(cache_dir / "kv" / f"{model.stem}-{stat.st_size}-{stat.st_mtime_ns}", max_bytes)

    def find(self, tokens: Sequence[int]) -> Path | None:
        """The saved state holding the longest prefix of ``tokens`` (at least one token
        shorter, so something is left to evaluate) whose bytes are as saved, or None.
        A state that fails the check is deleted on the way."""
        for length, path in sorted(self._entries(), reverse=True):
            if length < len(tokens) and path.stem == token_key(tokens[:length]):
                if not _intact(path):
                    self.discard(path)
                    continue
                path.touch()  # least recently *used* goes first
                return path
        return None

    def save(self, tokens: Sequence[int], write: Callable[[Path], bool]) -> None:
        """Save the state holding ``tokens`` with ``write(path)`` (False: it failed),
        then evict the least recently used files over the cap."""
        if not tokens or self.max_bytes <= 0:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            target = self.directory / f"{token_key(tokens)}{_SUFFIX}"
            partial = target.with_suffix(".partial")
            if write(partial):
                digest = target.with_suffix(_DIGEST)
                digest.with_suffix(".sha256-partial").write_text(_sha256(partial))
                os.replace(digest.with_suffix(".sha256-partial"), digest)
                os.replace(partial, target)
            else:
                partial.unlink(missing_ok=True)
            self._evict()
        except OSError:
            pass  # a full or read-only disk only costs the speed-up

    def discard(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        path.with_suffix(_DIGEST).unlink(missing_ok=True)

    def _entries(self) -> list[tuple[int, Path]]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob(f"*{_SUFFIX}"):
            length, _, _ = path.stem.partition("-")
            if length.isdigit():
                found.append((int(length), path))
        return found

    def _evict(self) -> None:
        files = []
        for _, path in self._entries():
            try:
                stat = path.stat()
            except OSError:
                continue
            files.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            self.discard(path)
            total -= size


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _intact(path: Path) -> bool:
    """Whether the state's bytes match the digest saved with them."""
    try:
        return path.with_suffix(_DIGEST).read_text().strip() == _sha256(path)
    except OSError:
        return False
