"""Sessions with the real test model: `ask --session` across processes, and SIGKILL
mid-reply losing at most the last second."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qwenchat.store import SessionStore

pytestmark = pytest.mark.model

ASK = [sys.executable, "-c", "from qwenchat.cli import main; main()", "ask"]


def session_env(model_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    # A private data dir for the store; the model comes from the shared one by path.
    return {**os.environ, **model_env, "QWENCHAT_DATA_DIR": str(tmp_path / "data")}


def test_ask_session_carries_the_conversation_across_processes(
    model_env: dict[str, str], test_model_path: Path, tmp_path: Path
) -> None:
    env = session_env(model_env, tmp_path)
    common = ["-m", str(test_model_path), "--temperature", "0", "--session", "ada", "--json"]
    first = subprocess.run(
        [*ASK, *common, "My name is Ada. Say hello."], env=env, capture_output=True, text=True,
        timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    second = subprocess.run(
        [*ASK, *common, "What is my name? Answer with one word."], env=env, capture_output=True,
        text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    reply = json.loads(second.stdout)
    assert "Ada" in reply["text"]  # observed at temperature 0: it reads the first turn
    assert reply["usage"]["prompt_tokens"] > json.loads(first.stdout)["usage"]["prompt_tokens"]
    with SessionStore(tmp_path / "data" / "sessions.db") as store:
        history = store.history(store.get_session("ada").id)
    # No --system: the template's default system prompt is rendered, not stored.
    assert [m.role for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[-1].content == reply["text"] and all(m.complete for m in history)

    retried = subprocess.run(
        [*ASK, "-m", str(test_model_path), "--session", "ada", "--retry", "--seed", "7"],
        env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert retried.returncode == 0, retried.stderr
    with SessionStore(tmp_path / "data" / "sessions.db") as store:
        after = store.history(store.get_session("ada").id)
        siblings = store.branches(after[-1].id)
    assert [m.role for m in after] == ["user", "assistant", "user", "assistant"]
    assert after[-1].content.strip() in retried.stdout
    assert len(siblings) == 2 and siblings[0].content == reply["text"]  # the old one is kept


def test_sigkill_mid_reply_loses_at_most_the_last_second(
    model_env: dict[str, str], test_model_path: Path, tmp_path: Path
) -> None:
    env = session_env(model_env, tmp_path)
    proc = subprocess.Popen(
        [*ASK, "-m", str(test_model_path), "--temperature", "0", "--max-tokens", "600",
         "--session", "story", "Write a long story about a lighthouse keeper."],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    printed, timeline = b"", []  # (time, bytes printed by then)
    first = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.05)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            printed += chunk
            timeline.append((time.monotonic(), len(printed)))
            first = first or time.monotonic()
        if first is not None and time.monotonic() - first > 3.0:
            break
    killed_at = time.monotonic()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, "the reply ended before the kill"

    with SessionStore(tmp_path / "data" / "sessions.db") as store:
        assert store.notice is None  # consistent: nothing moved aside
        last = store.history(store.get_session("story").id)[-1]
    text = printed.decode("utf-8", errors="ignore")
    assert last.role == "assistant" and not last.complete
    assert text.startswith(last.content)  # a prefix of what was shown
    # Everything shown more than 1.2 s before the kill was saved (the store keeps
    # a checkpoint at least once a second while text streams).
    shown_then = max((n for t, n in timeline if t <= killed_at - 1.2), default=0)
    assert len(last.content.encode()) >= shown_then > 0


def test_a_persona_opens_its_session_with_the_greeting(
    model_env: dict[str, str], test_model_path: Path, tmp_path: Path
) -> None:
    env = session_env(model_env, tmp_path)
    result = subprocess.run(
        [*ASK, "-m", str(test_model_path), "--persona", "noir", "--session", "case",
         "--temperature", "0", "--max-tokens", "60", "My sister is missing."],
        env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with SessionStore(tmp_path / "data" / "sessions.db") as store:
        session = store.get_session("case")
        history = store.history(session.id)
    assert session.persona == "noir"
    assert [m.role for m in history] == ["system", "assistant", "user", "assistant"]
    assert "You are Nick Harrow" in history[0].content and "{{" not in history[0].content
    assert history[1].content.startswith("Rain drummed on the window")
    assert "User walked in" in history[1].content  # {{user}} filled with the default name
    assert history[3].content.strip() and history[3].content.strip() in result.stdout
