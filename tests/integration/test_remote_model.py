"""The remote engine on the real test model, served by llama-cpp-python's server on 127.0.0.1.

The local engine's tests that apply to any engine are imported from test_engine.py,
test_tools_model.py and test_ask.py and run again here, where their ``engine`` is
a :class:`RemoteEngine` and their ``model_env`` configures ``engine.url``. The tests
of KV reuse (llama-cpp-python's server does not report cached tokens) and of
special-token text inside messages (servers parse special tokens in the whole
prompt) do not apply.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwenchat.chat import Chat
from qwenchat.chatml import render_segments
from qwenchat.config import Sampling, Settings
from qwenchat.engine.llama import LlamaEngine, default_threads
from qwenchat.engine.remote import RemoteEngine
from qwenchat.errors import EngineConnectionError
from tests.integration.test_ask import (  # noqa: F401 - collected again, on the server
    QWENCHAT,
    ask,
    test_ask_answers_on_stdout,
    test_ask_json,
    test_piped_stdin_is_context_for_the_prompt,
    test_sigint_stops_the_reply_cleanly,
    test_system_prompt_flag,
)
from tests.integration.test_engine import (  # noqa: F401 - collected again, on the server
    GREEDY,
    TOOL_CONVERSATION,
    WEATHER_TOOLS,
    cancel_mid_reply,
    new_chat,
    test_answers_a_simple_question,
    test_chinese_streams_without_mojibake,
    test_max_tokens_ends_with_length,
)
from tests.integration.test_tools_model import (  # noqa: F401 - collected again, on the server
    test_a_tool_that_raises_does_not_end_the_session,
    test_large_product_comes_from_the_calculator,
)
from tests.unit.test_remote_engine import free_port

pytestmark = pytest.mark.model

N_CTX = 4096


class Server:
    """A model server as a subprocess on 127.0.0.1: ``python -m llama_cpp.server`` serving
    the test model by default, or ``command`` (given the port) answering on ``ready``."""

    def __init__(
        self,
        model: Path,
        log: Path,
        port: int | None = None,
        command: list[str] | None = None,
        ready: str = "/v1/models",
    ) -> None:
        self.url = f"http://127.0.0.1:{port or free_port()}"
        port_text = self.url.rsplit(":", 1)[1]
        threads = str(default_threads())  # its own default is half the machine's CPUs
        self.log = log
        argv = command or [
            *(sys.executable, "-m", "llama_cpp.server", "--model", str(model)),
            *("--host", "127.0.0.1", "--port", port_text),
            *("--n_ctx", str(N_CTX), "--n_threads", threads),
            *("--n_threads_batch", threads, "--verbose", "False"),
        ]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [part.replace("{port}", port_text) for part in argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"{argv[0]} exited with {self.proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(self.url + ready, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{argv[0]} did not answer within 120 s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def server(test_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(test_model_path, tmp_path_factory.mktemp("server") / "server.log")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def engine(server: Server) -> RemoteEngine:
    return RemoteEngine(server.url)


@pytest.fixture(scope="module")
def local(test_model_path: Path) -> LlamaEngine:
    return LlamaEngine(test_model_path, n_ctx=N_CTX)


@pytest.fixture
def model_env(data_dir: Path, tmp_path: Path, server: Server) -> dict[str, str]:
    """As conftest's, with the config file pointing the engine at the server."""
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "config.toml").write_text(f'[engine]\nurl = "{server.url}"\n')
    return {"QWENCHAT_CONFIG_DIR": str(config), "QWENCHAT_DATA_DIR": str(data_dir)}


def test_connects_with_model_facts(engine: RemoteEngine, server: Server) -> None:
    assert engine.model_name == "qwen2.5-coder-0.5b-instruct-q4_k_m"
    assert engine.server == "llama-cpp-python's server"
    assert engine.n_ctx == N_CTX and engine.url == server.url


def test_the_server_tokenizes_prompts_as_the_local_engine(
    engine: RemoteEngine, local: LlamaEngine, server: Server
) -> None:
    conversation, tools = TOOL_CONVERSATION, WEATHER_TOOLS
    prompt = render_segments(conversation, tools=tools)
    # The role markers became control tokens on the server: the same ids as locally.
    assert engine.tokenize(prompt) == local.tokenize(prompt)
    # And the completion endpoint itself counts the raw prompt the same.
    body = {"prompt": "".join(s.text for s in prompt), "max_tokens": 1, "temperature": 0}
    request = urllib.request.Request(
        server.url + "/v1/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        usage = json.load(response)["usage"]
    assert usage["prompt_tokens"] == len(local.tokenize(prompt))


@pytest.mark.parametrize(
    ("question", "max_tokens"),
    [
        ("Count from 1 to 10, separated by commas.", 60),
        ("Write a Python function that reverses a string. Code only.", 80),
    ],
)
def test_greedy_reply_equals_the_local_engines(
    engine: RemoteEngine, local: LlamaEngine, question: str, max_tokens: int
) -> None:
    here = new_chat(local, max_tokens=max_tokens).send(question)
    there = new_chat(engine, max_tokens=max_tokens).send(question)
    assert there.text == here.text
    assert there.finish_reason == here.finish_reason
    assert there.usage.prompt_tokens == here.usage.prompt_tokens
    assert there.usage.completion_tokens == here.usage.completion_tokens
    assert there.model == here.model


def test_streamed_deltas_make_the_reply(engine: RemoteEngine) -> None:
    stream = new_chat(engine, max_tokens=40).stream("Name three fruits.")
    deltas = list(stream)
    assert stream.reply is not None and len(deltas) > 3
    assert "".join(deltas) == stream.reply.text
    timings = stream.reply.timings
    assert 0 < timings.ttft_s < timings.total_s and timings.decode_tokens_per_s > 0


def test_stop_string_as_the_local_engine(engine: RemoteEngine, local: LlamaEngine) -> None:
    prompt = render_segments(
        [{"role": "user", "content": "Count from 1 to 10, separated by commas."}]
    )
    results = []
    for each in (local, engine):
        gen = each.generate(prompt, Sampling(temperature=0, max_tokens=60), stop=[", 5"])
        deltas = list(gen)
        assert gen.result is not None and "".join(deltas) == gen.result.text
        results.append(gen.result)
    here, there = results
    assert there.text == here.text and there.text.endswith(", 5")
    assert there.stop_sequence == here.stop_sequence == ", 5"
    assert there.finish_reason == "stop"
    assert there.usage.completion_tokens == here.usage.completion_tokens


def test_cancel_from_another_thread_stops_within_a_token(engine: RemoteEngine) -> None:
    _, after = cancel_mid_reply(engine)  # the server reports no cached tokens
    assert after.text


def test_ask_with_the_engine_flag(
    data_dir: Path, tmp_path: Path, server: Server, model_env: dict[str, str]
) -> None:
    plain = {"QWENCHAT_CONFIG_DIR": str(tmp_path / "plain"), "QWENCHAT_DATA_DIR": str(data_dir)}
    result = ask("--engine", server.url + "/v1", "-v", "--max-tokens", "4", "Hi", env=plain)
    assert result.returncode == 0, result.stderr
    described, figures = result.stderr.strip().splitlines()
    assert described == (
        f"qwenchat: model qwen2.5-coder-0.5b-instruct-q4_k_m on llama-cpp-python's server"
        f" at {server.url}, n_ctx 4096 (assumed: set engine.n_ctx)"
    )
    assert " prompt tokens (0 from cache), " in figures and "tokens/s" in figures
    # `--engine local` overrides a configured server.
    result = ask("--engine", "local", "-v", "--max-tokens", "4", "Hi", env=model_env)
    assert result.returncode == 0, result.stderr
    assert "(Q4_K_M)" in result.stderr.splitlines()[0]


def test_a_server_killed_mid_reply(test_model_path: Path, data_dir: Path, tmp_path: Path) -> None:
    doomed = Server(test_model_path, tmp_path / "doomed.log")
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "config.toml").write_text(f'[engine]\nurl = "{doomed.url}"\n')
    env = {"QWENCHAT_CONFIG_DIR": str(config), "QWENCHAT_DATA_DIR": str(data_dir)}
    try:
        first = ask("--session", "doomed", "Name a colour. Reply with one word.", env=env)
        assert first.returncode == 0, first.stderr
        proc = subprocess.Popen(
            [
                *QWENCHAT,
                "ask",
                "--session",
                "doomed",
                "--temperature",
                "0",
                "--max-tokens",
                "2000",
                "Count from 1 to 1000, one number per line.",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
        )
        assert proc.stdout is not None
        started = os.read(proc.stdout.fileno(), 16)  # the reply is streaming
        doomed.proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        doomed.stop()
    assert started.strip()
    assert proc.returncode == 1, err
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qwenchat: ") and doomed.url in lines[0]
    # The session keeps both turns, the broken reply as far as it got.
    shown = subprocess.run(
        [*QWENCHAT, "sessions", "show", "doomed"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert shown.returncode == 0 and shown.stderr == ""
    assert "Name a colour" in shown.stdout and "Count from 1 to 1000" in shown.stdout
    partial = (started + out).decode().strip()
    assert f"## Assistant (interrupted)\n\n{partial}" in shown.stdout
    # With the server gone, the next turn fails at once, in one line.
    again = ask("--session", "doomed", "Are you there?", env=env)
    assert again.returncode == 1
    assert again.stderr == (
        f"qwenchat: cannot reach {doomed.url} (connection refused):"
        " is the server running? (--engine URL)\n"
    )


def test_a_stopped_server_is_an_error_the_chat_survives(
    test_model_path: Path, tmp_path: Path
) -> None:
    log = tmp_path / "restarted.log"
    first = Server(test_model_path, log)
    try:
        chat = Chat(settings=Settings(), engine=RemoteEngine(first.url), **GREEDY, max_tokens=8)
        assert chat.send("Hi").text
    finally:
        first.stop()
    with pytest.raises(EngineConnectionError, match="connection refused"):
        chat.send("Still there?")
    assert [m.role for m in chat.messages] == ["user", "assistant", "user"]
    again = Server(test_model_path, log, port=int(first.url.rsplit(":", 1)[1]))
    try:
        reply = chat.send("Say OK.")
    finally:
        again.stop()
    assert reply.text and reply.finish_reason in ("stop", "length")
    assert [m.role for m in chat.messages] == ["user", "assistant", "user", "user", "assistant"]
