"""The KV-state cache's files: lookup by exact token prefix, LRU eviction, failed writes."""

from __future__ import annotations

import hashlib
import os
import time
from array import array
from pathlib import Path

from qwenchat.engine.kvcache import KVCache, token_key


def writer(size: int):  # type: ignore[no-untyped-def]
    def write(path: Path) -> bool:
        path.write_bytes(b"k" * size)
        return True

    return write


def test_the_state_sharing_the_longest_prefix_is_found(tmp_path: Path) -> None:
    cache = KVCache(tmp_path, 10_000)
    cache.save([1, 2, 3], writer(10))
    cache.save([1, 2, 3, 4, 5], writer(10))
    cache.save([9, 9], writer(10))
    found = cache.find([1, 2, 3, 4, 5, 6], at_least=1)
    assert found is not None and found.path.stem == token_key([1, 2, 3, 4, 5])
    assert found.shared == 5
    # A state longer than the common prefix is used up to where the prompt differs.
    found = cache.find([1, 2, 3, 4, 7, 8], at_least=1)
    assert found is not None and found.path.stem == token_key([1, 2, 3, 4, 5])
    assert found.shared == 4
    # Of equally long prefixes, the smaller state; always one token left to evaluate.
    found = cache.find([1, 2, 3], at_least=1)
    assert found is not None and found.path.stem == token_key([1, 2, 3]) and found.shared == 2
    assert cache.find([2, 3, 4], at_least=1) is None
    assert cache.find([1, 2, 3, 4, 5, 6], at_least=6) is None  # shares too little


def test_what_is_kept_can_be_listed_and_cleared(tmp_path: Path) -> None:
    cache = KVCache(tmp_path, 10_000)
    cache.save([1, 2, 3], writer(10))
    cache.save([4, 5], writer(20))
    assert cache.holds([4, 5]) and not cache.holds([4])
    assert sorted((s.tokens, s.bytes) for s in cache.states()) == [(2, 20), (3, 10)]
    assert cache.clear() == 2
    assert cache.states() == [] and list(tmp_path.iterdir()) == []


def test_a_state_whose_tokens_file_is_not_its_own_is_never_used(tmp_path: Path) -> None:
    cache = KVCache(tmp_path, 10_000)
    cache.save([1, 2, 3, 4], writer(10))
    [tokens] = tmp_path.glob("*.tok")
    tokens.write_bytes(array("i", [1, 2, 3, 9]).tobytes())  # not the ids its name hashes
    assert cache.find([1, 2, 3, 4, 5], at_least=1) is None


def test_least_recently_used_files_go_over_the_cap(tmp_path: Path) -> None:
    cache = KVCache(tmp_path, 250)
    for n in range(1, 4):
        cache.save([n], writer(100))
        path = tmp_path / f"{token_key([n])}.kvs"
        os.utime(path, ns=(n * 10**9, n * 10**9))  # saved one after the other
    # 300 bytes > 250: the oldest ([1]) went when [3] was saved.
    assert not (tmp_path / f"{token_key([1])}.kvs").exists()
    cache.find([2, 0], at_least=1)  # using [2] makes it the newest
    cache.save([4], writer(100))
    left = sorted(p.stem for p in tmp_path.glob("*.kvs"))
    assert left == sorted([token_key([2]), token_key([4])])


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    cache = KVCache(tmp_path, 10_000)

    def fail(path: Path) -> bool:
        path.write_bytes(b"half")
        return False

    cache.save([1, 2], fail)
    assert list(tmp_path.iterdir()) == []


def test_a_zero_cap_saves_nothing_and_an_unwritable_dir_is_harmless(tmp_path: Path) -> None:
    KVCache(tmp_path / "off", 0).save([1], writer(10))
    assert not (tmp_path / "off").exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    KVCache(blocker / "kv", 10_000).save([1], writer(10))  # no exception


def test_a_changed_model_file_gets_its_own_directory(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    first = KVCache.for_model(model, tmp_path / "cache", 1).directory
    time.sleep(0.01)
    model.write_bytes(b"xy")
    assert KVCache.for_model(model, tmp_path / "cache", 1).directory != first


def test_a_state_whose_bytes_changed_is_deleted_not_loaded(tmp_path: Path) -> None:
    cache = KVCache(tmp_path, 10_000)
    cache.save([1, 2, 3], writer(4000))
    path = tmp_path / f"{token_key([1, 2, 3])}.kvs"
    with open(path, "r+b") as f:  # 1.5 KB overwritten inside, as a bad disk or a bug would
        f.seek(1000)
        f.write(b"!" * 1536)
    assert cache.find([1, 2, 3, 4], at_least=1) is None
    assert list(tmp_path.iterdir()) == []


def test_a_state_without_its_digest_is_not_trusted(tmp_path: Path) -> None:
    cache = KVCache(tmp_path, 10_000)
    cache.save([5, 6], writer(10))
    (tmp_path / f"{token_key([5, 6])}.sha256").unlink()
    assert cache.find([5, 6, 7], at_least=1) is None
    assert list(tmp_path.iterdir()) == []


def test_an_intact_state_is_found_with_its_digest(tmp_path: Path) -> None:
    cache = KVCache(tmp_path, 10_000)
    cache.save([5, 6], writer(10))
    found = cache.find([5, 6, 7], at_least=1)
    assert found is not None and found.path == tmp_path / f"{token_key([5, 6])}.kvs"
    assert (tmp_path / f"{token_key([5, 6])}.sha256").read_text() == (
        hashlib.sha256(b"k" * 10).hexdigest()
    )


def test_the_head_of_a_conversation_ends_where_its_first_user_turn_starts() -> None:
    from qwenchat.engine.llama import head_length

    start, user, end, nl = 1, 2, 3, 4
    system, greeting = [start, 7, 8, end, nl], [start, 9, 5, end, nl]
    assert head_length([*system, start, user, 6], start, user) == 5
    assert head_length([*system, *greeting, start, user, 6], start, user) == 10
    assert head_length([*system, start, 9], start, user) == 0  # no user turn
