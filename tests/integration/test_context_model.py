"""A session longer than the context window, on the real test model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwenchat.store import SessionStore

pytestmark = pytest.mark.model


def test_ask_on_a_session_longer_than_the_window(
    model_env: dict[str, str], test_model_path: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with SessionStore(data / "sessions.db") as store:
        session = store.create_session(name="long")
        store.add_message(session.id, {"role": "system", "content": "You are terse."})
        for i in range(60):  # about 3,000 tokens of history against a 1,024-token window
            store.add_message(session.id, {"role": "user", "content": f"Note {i}: " + "blue " * 20})
            store.add_message(session.id, {"role": "assistant", "content": f"Noted {i}."})
    env = {**os.environ, **model_env, "QWENCHAT_DATA_DIR": str(data)}
    result = subprocess.run(
        [sys.executable, "-c", "from qwenchat.cli import main; main()", "ask",
         "-m", str(test_model_path), "--session", "long", "--n-ctx", "1024",
         "--max-tokens", "32", "--temperature", "0", "--json", "Say hello."],
        env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "oldest" in result.stderr and "left out of the prompt" in result.stderr
    import json

    reply = json.loads(result.stdout)
    assert reply["text"].strip()
    assert reply["usage"]["prompt_tokens"] + 32 <= 1024
    with SessionStore(data / "sessions.db") as store:
        kept = store.history(store.get_session("long").id)
    assert len(kept) == 1 + 120 + 2  # nothing was deleted from the session
