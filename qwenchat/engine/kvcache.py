"""KV states on disk, shared by every prompt that starts the same way: a library of
prefixes, so that no process reads the same start of a prompt twice.

A state (per sequence: the keys and values only, not the logits buffer that
``Llama.save_state()`` copies) is saved as one file named for the exact token
sequence it holds, with those tokens beside it (``.tok``). A prompt uses the state
that shares the longest token prefix with it, whatever follows in either: the engine
loads it, drops what follows the common prefix (llama.cpp's sequence removal) and
evaluates the rest. So a resumed session does not re-read its history, and a new
conversation with the same system prompt and tools block, persona or pasted document
does not re-read those. The engine saves a state after each reply and, for the start
of a conversation (its system message, with the tools block, and a greeting), when
it first reads it. Files live in one directory per model file, the least recently
used go first when the directory outgrows its cap, and a file that fails to load is
deleted and ignored: the cache only ever costs speed.

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
from typing import NamedTuple

from qwenchat.models.files import file_sha256

_SUFFIX = ".kvs"
_DIGEST = ".sha256"
_TOKENS = ".tok"
MIN_SHARED = 16
"""Fewer tokens in common than this are cheaper to evaluate than to look up and load."""


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

    def find(self, tokens: Sequence[int], at_least: int = MIN_SHARED) -> Found | None:
        """The saved state sharing the longest prefix with ``tokens`` (at most all but
        their last token, so something is left to evaluate, and ``at_least`` tokens),
        whose bytes are as saved; of equally long ones, the smallest file. None if
        there is none. A state that fails the check is deleted on the way."""
        wanted = array("i", tokens)
        candidates = []
        for path in self._states():
            held = self._tokens(path)
            shared = min(_common_prefix(held, wanted), len(wanted) - 1)
            if held is not None and shared >= max(at_least, 1):
                candidates.append((-shared, _size(path), path))
        for minus_shared, _, path in sorted(candidates):
            if not _intact(path):
                self.discard(path)
                continue
            path.touch()  # least recently *used* goes first
            return Found(path=path, shared=-minus_shared)
        return None

    def holds(self, tokens: Sequence[int]) -> bool:
        """Whether a state of exactly ``tokens`` is saved."""
        return (self.directory / f"{token_key(tokens)}{_SUFFIX}").is_file()

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
                _write_atomically(target.with_suffix(_DIGEST), file_sha256(partial).encode())
                _write_atomically(target.with_suffix(_TOKENS), array("i", tokens).tobytes())
                os.replace(partial, target)
            else:
                partial.unlink(missing_ok=True)
            self._evict()
        except OSError:
            pass  # a full or read-only disk only costs the speed-up

    def discard(self, path: Path) -> None:
        for suffix in (_SUFFIX, _DIGEST, _TOKENS):
            path.with_suffix(suffix).unlink(missing_ok=True)

    def states(self) -> list[State]:
        """What is kept, newest use first (``qwenchat cache list``)."""
        found = []
        for path in self._states():
            try:
                stat = path.stat()
            except OSError:
                continue
            tokens = int(path.stem.partition("-")[0])
            found.append(State(path=path, tokens=tokens, bytes=stat.st_size, used=stat.st_mtime))
        return sorted(found, key=lambda state: -state.used)

    def clear(self) -> int:
        """Delete every state; return how many there were."""
        states = self._states()
        for path in states:
            self.discard(path)
        return len(states)

    def _states(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return [p for p in self.directory.glob(f"*{_SUFFIX}") if p.stem.partition("-")[0].isdigit()]

    def _tokens(self, path: Path) -> array[int] | None:
        """The tokens a state holds, from its ``.tok`` file, if that is the one saved with
        it (the file name is their hash)."""
        try:
            held = array("i", path.with_suffix(_TOKENS).read_bytes())
        except (OSError, ValueError):
            return None
        return held if token_key(held) == path.stem else None

    def _evict(self) -> None:
        files = []
        for path in self._states():
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


class Found(NamedTuple):
    """A saved state and how many leading tokens it shares with the prompt."""

    path: Path
    shared: int


class State(NamedTuple):
    """One kept state: its file, how many tokens it holds, its size, when it was used."""

    path: Path
    tokens: int
    bytes: int
    used: float


def _common_prefix(held: array[int] | None, wanted: array[int]) -> int:
    if held is None:
        return 0
    n = min(len(held), len(wanted))
    if held[:n] == wanted[:n]:
        return n
    low, high = 0, n  # held[:low] matches, held[:high] does not
    while high - low > 1:
        mid = (low + high) // 2
        if held[:mid] == wanted[:mid]:
            low = mid
        else:
            high = mid
    return low


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + "-partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _intact(path: Path) -> bool:
    """Whether the state's bytes match the digest saved with them."""
    try:
        return path.with_suffix(_DIGEST).read_text().strip() == file_sha256(path)
    except OSError:
        return False
