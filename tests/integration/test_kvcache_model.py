"""Resuming a session in a new process from the KV state saved on disk (real model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwenchat.store import SessionStore

pytestmark = pytest.mark.model


def ask(env: dict[str, str], model: Path, prompt: str) -> dict:  # type: ignore[type-arg]
    result = subprocess.run(
        [sys.executable, "-c", "from qwenchat.cli import main; main()", "ask", "-m", str(model),
         "--session", "log", "--temperature", "0", "--max-tokens", "12", "--json", prompt],
        env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_new_process_resumes_from_the_saved_state(
    model_env: dict[str, str], test_model_path: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with SessionStore(data / "sessions.db") as store:
        session = store.create_session(name="log")
        for i in range(6):
            store.add_message(session.id, {"role": "user", "content": f"Ship {i} came in."})
            store.add_message(session.id, {"role": "assistant", "content": f"Logged ship {i}."})
    env = {
        **os.environ, **model_env,
        "QWENCHAT_DATA_DIR": str(data), "QWENCHAT_CACHE_DIR": str(tmp_path / "cache"),
    }  # fmt: skip
    first = ask(env, test_model_path, "How many ships?")
    assert first["usage"]["cached_tokens"] == 0  # nothing saved yet
    saved = list((tmp_path / "cache" / "kv").glob("*/*.kvs"))
    assert len(saved) == 1
    second = ask(env, test_model_path, "Which came last?")
    # Everything up to the new question came from the saved state, including the
    # first process's reply.
    new_question = second["usage"]["prompt_tokens"] - second["usage"]["cached_tokens"]
    assert second["usage"]["cached_tokens"] > first["usage"]["prompt_tokens"]
    assert new_question < 30

    for state in (tmp_path / "cache" / "kv").glob("*/*.kvs"):
        state.write_bytes(b"not a llama.cpp state")  # damaged: ignored and deleted
    third = ask(env, test_model_path, "Say hi.")
    assert third["usage"]["cached_tokens"] == 0 and third["text"].strip()
    assert len(list((tmp_path / "cache" / "kv").glob("*/*.kvs"))) == 1  # only the new one


def test_a_state_changed_inside_is_discarded_not_loaded(
    model_env: dict[str, str], test_model_path: Path, tmp_path: Path
) -> None:
    """A file llama.cpp would load without complaint (its header intact, 1.5 KB of its
    keys and values overwritten) and whose model would then answer ``!!!!!!!!``."""
    env = {
        **os.environ, **model_env,
        "QWENCHAT_DATA_DIR": str(tmp_path / "data"), "QWENCHAT_CACHE_DIR": str(tmp_path / "c"),
    }  # fmt: skip
    first = ask(env, test_model_path, "Name a colour of the sky.")
    [state] = (tmp_path / "c" / "kv").glob("*/*.kvs")
    with open(state, "r+b") as f:
        f.seek(state.stat().st_size * 3 // 10)  # keys of a layer: NaN halves
        f.write(b"\xff" * 1536)
    second = ask(env, test_model_path, "Name a colour of grass.")
    assert second["usage"]["cached_tokens"] == 0  # re-read, not loaded from the damaged file
    assert "!!!!" not in second["text"] and second["text"].strip()
    assert first["text"].strip()
