"""Nothing lost: the user's message is in the store before the model reads it, sessions
on the same name at once branch instead of chaining, and a turn that fails leaves no
empty session. Judged from the host: processes killed or raced, then the store read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from qwenchat.store import SessionStore
from tests.unit.test_cli import run_cli
from tests.unit.test_remote_engine import FakeServer, server, text_event  # noqa: F401

ASK = [sys.executable, "-c", "from qwenchat.cli import main; main()", "ask"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "QWENCHAT_CONFIG_DIR": str(tmp_path / "cfg"),
        "QWENCHAT_DATA_DIR": str(tmp_path / "data"),
    }


def _store(env: dict[str, str]) -> SessionStore:
    return SessionStore(Path(env["QWENCHAT_DATA_DIR"]) / "sessions.db")


def test_sigkill_before_the_first_token_keeps_the_question(
    server: FakeServer,  # noqa: F811
    env: dict[str, str],
) -> None:
    """The server stalls before its headers, as a long prompt being read would."""
    started = threading.Event()

    def stall(_handler: object, _body: object) -> None:
        started.set()
        server.release.wait(20)

    server.routes[("POST", "/v1/completions")] = stall
    proc = subprocess.Popen(
        [*ASK, "--engine", server.url, "--session", "kept", "Is my question kept?"],
        env={**os.environ, **env}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert started.wait(30), "the request never reached the server"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    with _store(env) as store:
        history = store.history(store.get_session("kept").id)
    assert [(m.role, m.content) for m in history if m.role == "user"] == [
        ("user", "Is my question kept?")
    ]


def test_two_asks_on_one_session_at_once_branch_as_each_read_it(
    server: FakeServer,  # noqa: F811
    env: dict[str, str],
) -> None:
    server.reply(["Hello."])
    assert run_cli("ask", "--engine", server.url, "--session", "s", "Hi.", env=env).returncode == 0
    a_waiting = threading.Event()

    def answer(handler, body):  # type: ignore[no-untyped-def]
        prompt = body["prompt"]
        if prompt.rfind("A's question") > prompt.rfind("B's question"):  # A: held till B ends
            a_waiting.set()
            server.release.wait(20)
            handler.send_sse([text_event("A's answer."), text_event("", "stop")])
        else:
            handler.send_sse([text_event("B's answer."), text_event("", "stop")])

    server.routes[("POST", "/v1/completions")] = answer
    a = subprocess.Popen(
        [*ASK, "--engine", server.url, "--session", "s", "A's question?"],
        env={**os.environ, **env}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert a_waiting.wait(30)
    b = run_cli("ask", "--engine", server.url, "--session", "s", "B's question?", env=env)
    assert b.returncode == 0, b.stderr
    server.release.set()
    assert a.wait(30) == 0
    with _store(env) as store:
        exported = json.loads(store.export_session("s", "json"))["messages"]
    by_id = {m["id"]: m for m in exported}
    reply = {m["content"]: m for m in exported if m["role"] == "assistant"}
    a_question = by_id[reply["A's answer."]["parent_id"]]
    b_question = by_id[reply["B's answer."]["parent_id"]]
    assert a_question["content"] == "A's question?" and b_question["content"] == "B's question?"
    # Each reply is stored under the conversation its model read: A's under A's question
    # (not after B's exchange, which A never saw); B read A's question, so B's follows it.
    assert a_question["parent_id"] == reply["Hello."]["id"]
    assert b_question["parent_id"] == a_question["id"]


def test_retry_on_a_new_session_fails_and_leaves_no_session(env: dict[str, str]) -> None:
    result = run_cli(
        "ask", "--engine", "http://127.0.0.1:9", "--retry", "--session", "new", env=env
    )
    assert result.returncode in (1, 2) and result.stderr.count("\n") == 1
    with _store(env) as store:
        assert store.list_sessions() == []


@pytest.mark.parametrize("data", [b"\xff\xfe latin", b"bin\x00ary"])
def test_bad_stdin_fails_with_one_line_and_leaves_no_session(
    env: dict[str, str], data: bytes
) -> None:
    result = subprocess.run(
        [*ASK, "--session", "new", "summarise"], input=data, capture_output=True,
        env={**os.environ, **env}, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert stderr.count("\n") == 1 and "stdin is" in stderr and "Traceback" not in stderr
    with _store(env) as store:
        assert store.list_sessions() == []


def test_a_model_that_fails_to_load_leaves_no_session(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 20)
    result = run_cli("ask", "-m", str(bad), "--session", "new", "hi", env=env)
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr
    with _store(env) as store:
        assert store.list_sessions() == []
