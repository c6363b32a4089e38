"""The remote engine against the real llama-server (opt-in: ``pytest -m llama_server``).

llama-server is built from the llama.cpp sources inside the installed
llama-cpp-python's sdist by bench/build_llama_tools.sh (about 10 minutes the first
time, cached). Users of the llama-server dialect hit its own /props, /tokenize,
streaming, stop strings and grammar parameter, which llama-cpp-python's server (the
default run's stand-in) does not have: those are tested here, and the remote engine's
shared tests run again on it.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwenchat.chatml import render_segments
from qwenchat.config import Sampling
from qwenchat.engine.llama import default_threads
from qwenchat.engine.remote import RemoteEngine
from qwenchat.schema import Schema
from tests.integration.test_engine import (  # noqa: F401 - collected again, on llama-server
    GREEDY,
    test_answers_a_simple_question,
    test_chinese_streams_without_mojibake,
    test_max_tokens_ends_with_length,
)
from tests.integration.test_remote_model import (  # noqa: F401 - collected again
    N_CTX,
    Server,
    test_cancel_from_another_thread_stops_within_a_token,
    test_streamed_deltas_make_the_reply,
)

pytestmark = [pytest.mark.model, pytest.mark.llama_server]

REPO = Path(__file__).resolve().parents[2]


def llama_server_binary() -> Path:
    built = subprocess.run(
        ["bash", str(REPO / "bench" / "build_llama_tools.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        pytest.fail(f"building llama-server failed:\n{built.stderr[-2000:]}")
    return Path(built.stdout.strip().splitlines()[-1]) / "llama-server"


@pytest.fixture(scope="module")
def server(test_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    threads = str(default_threads())
    command = [
        *(str(llama_server_binary()), "-m", str(test_model_path)),
        *("--host", "127.0.0.1", "--port", "{port}", "-c", str(N_CTX)),
        *("-t", threads, "-tb", threads),
    ]
    log = tmp_path_factory.mktemp("llama-server") / "log"
    running = Server(test_model_path, log, command=command, ready="/health")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def engine(server: Server) -> RemoteEngine:
    return RemoteEngine(server.url)


def test_it_is_seen_as_llama_server_with_its_props_and_tokenizer(
    engine: RemoteEngine, server: Server
) -> None:
    info = engine.info()
    assert engine.n_ctx == N_CTX
    assert "llama-server" in info.summary or "llama.cpp" in info.summary, info.summary
    prompt = render_segments([{"role": "user", "content": "Hello there"}])
    with urllib.request.urlopen(server.url + "/props", timeout=5) as response:
        props = json.load(response)
    assert props["default_generation_settings"]["n_ctx"] == N_CTX
    assert 5 < engine.count_tokens(prompt) < 40  # the server's own /tokenize


def test_a_stop_string_ends_the_reply(engine: RemoteEngine) -> None:
    prompt = render_segments([{"role": "user", "content": "Count from 1 to 10 with commas."}])
    generation = engine.generate(prompt, Sampling(temperature=0, max_tokens=60), stop=["5"])
    text = "".join(generation)
    assert generation.result is not None and generation.result.finish_reason == "stop"
    assert text.endswith("5") and "6" not in text


def test_its_grammar_parameter_makes_a_schema_reply_valid(engine: RemoteEngine) -> None:
    schema = Schema.parse("name, age int")
    prompt = render_segments([{"role": "user", "content": "Invent a person."}])
    constraint = schema.constraint
    generation = engine.generate(
        prompt, Sampling(temperature=0, max_tokens=60), constraint=constraint
    )
    data = json.loads("".join(generation))
    assert isinstance(data["name"], str) and isinstance(data["age"], int)
    assert generation.result is not None and generation.result.notice is None
