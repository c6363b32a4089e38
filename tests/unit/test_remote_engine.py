"""The remote engine against a stand-in server on 127.0.0.1 (no model, no server extra)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from qwenchat.chat import Chat
from qwenchat.chatml import Segment, render_segments
from qwenchat.config import Sampling, Settings
from qwenchat.engine.remote import RemoteEngine, estimate_tokens
from qwenchat.errors import EngineConnectionError, InputError, QwenchatError
from qwenchat.server_url import normalize_url

SPECIAL = {"<|im_start|>": 151644, "<|im_end|>": 151645, "<tool_call>": 151657}
GREEDY = Sampling(temperature=0.0, max_tokens=50)


def fake_tokens(text: str) -> list[int]:
    """The stand-in's tokenizer: a special marker is one token, any other character one."""
    ids: list[int] = []
    i = 0
    while i < len(text):
        marker = next((m for m in SPECIAL if text.startswith(m, i)), None)
        if marker:
            ids.append(SPECIAL[marker])
            i += len(marker)
        else:
            ids.append(ord(text[i]))
            i += 1
    return ids


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Route = Callable[["Handler", Any], None]


@dataclass
class FakeServer:
    """An OpenAI-compatible stand-in: llama-cpp-python's server by default; tests replace
    routes (``(method, path) -> handler``) to be another server or to misbehave."""

    url: str = ""
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.routes[("GET", "/v1/models")] = lambda h, _b: h.send_json(
            200, {"object": "list", "data": [{"id": "/m/qwen-test.gguf", "owned_by": "me"}]}
        )
        self.routes[("POST", "/extras/tokenize")] = lambda h, b: h.send_json(
            200, {"tokens": fake_tokens(b["input"])}
        )
        self.reply(["Hello", ",", " world"])

    def reply(self, chunks: list[str], finish: str = "stop", **options: Any) -> None:
        """Stream these texts from /v1/completions, then the finish chunk and [DONE]."""
        self.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_sse(
            [*(text_event(c) for c in chunks), text_event("", finish)], **options
        )

    def completions(self) -> list[Any]:
        return [r.body for r in self.requests if r.path == "/v1/completions"]


def text_event(text: str, finish: str | None = None) -> str:
    choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
    return json.dumps({"object": "text_completion", "choices": [choice]})


class Handler(BaseHTTPRequestHandler):
    server_version = "fake"
    fake: FakeServer  # set on a subclass per server

    def log_message(self, *_args: Any) -> None:
        pass

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.fake.requests.append(Request(method, self.path, dict(self.headers), body))
        route = self.fake.routes.get((method, self.path))
        try:
            if route is None:
                self.send_json(404, {"detail": "Not Found"})
            else:
                route(self, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up: after a stop string, a cancel

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def send_json(self, status: int, data: Any) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def send_sse(
        self,
        events: list[str],
        *,
        delay: float = 0.0,
        done: bool = True,
        stall_after: int | None = None,
        raw_lines: list[str] = (),  # type: ignore[assignment]
        content_type: str = "text/event-stream",
    ) -> None:
        """Stream ``events`` as ``data:`` lines (HTTP/1.0: the end is the connection's).
        ``stall_after``: send that many events, then wait for ``release``."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        for line in raw_lines:
            self.wfile.write(line.encode())
        for i, event in enumerate(events):
            if stall_after is not None and i == stall_after:
                self.wfile.flush()
                self.fake.release.wait(10)
                return
            self.wfile.write(f"data: {event}\n\n".encode())
            self.wfile.flush()
            if delay:
                time.sleep(delay)
        if done:
            self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    handler = type("BoundHandler", (Handler,), {"fake": fake})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    fake.release.set()
    httpd.shutdown()
    httpd.server_close()


def connect(server: FakeServer, **kwargs: Any) -> RemoteEngine:
    return RemoteEngine(server.url, connect_timeout=2.0, **{"timeout": 5.0, **kwargs})


def prompt(text: str = "Hi") -> list[Segment]:
    return render_segments([{"role": "user", "content": text}])


def run(engine: RemoteEngine, sampling: Sampling = GREEDY, **kwargs: Any):  # type: ignore[no-untyped-def]
    gen = engine.generate(prompt(), sampling, **kwargs)
    deltas = list(gen)
    assert gen.result is not None
    return deltas, gen.result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Connecting


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000"),
        ("localhost:11434", "http://localhost:11434"),
        ("https://gpu.example.com/proxy/v1", "https://gpu.example.com/proxy"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
    ],
)
def test_urls_are_normalized(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize("url", ["", "ftp://host", "http://", "http://host:port", "http://h/?q=1"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        normalize_url(url)


def test_connects_to_llama_cpp_python_server(server: FakeServer) -> None:
    engine = connect(server)
    assert engine.remote_model == "/m/qwen-test.gguf"
    assert engine.model_name == "qwen-test"  # a GGUF path's stem, as the local engine's
    assert engine.server == "llama-cpp-python's server"
    assert engine.n_ctx == 4096 and "assumed" in engine.n_ctx_source
    info = engine.info()
    assert info.describe() == (
        f"model qwen-test on llama-cpp-python's server at {server.url},"
        " n_ctx 4096 (assumed: set engine.n_ctx)"
    )
    assert (info.runs_on, info.path, info.n_ctx) == (f"remote {server.url}", None, 4096)
    assert connect(server, n_ctx=2048).n_ctx == 2048


def test_connection_refused_is_one_clear_line() -> None:
    port = free_port()
    with pytest.raises(EngineConnectionError) as caught:
        RemoteEngine(f"http://127.0.0.1:{port}/v1")
    assert str(caught.value) == (
        f"cannot reach http://127.0.0.1:{port} (connection refused):"
        " is the server running? (--engine URL)"
    )
    assert caught.value.exit_code == 1


def test_unknown_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*_args: Any, **_kwargs: Any) -> Any:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    with pytest.raises(EngineConnectionError, match=r"unknown host 'gpu-box'.*check the URL"):
        RemoteEngine("http://gpu-box:8000")


def test_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    def silent(*_args: Any, **_kwargs: Any) -> Any:
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", silent)
    with pytest.raises(EngineConnectionError, match=r"cannot reach .* \(no answer in 2 s\)"):
        RemoteEngine("http://10.1.2.3:8000", connect_timeout=2)


def test_not_an_openai_server(server: FakeServer) -> None:
    del server.routes[("GET", "/v1/models")]
    with pytest.raises(EngineConnectionError) as caught:
        connect(server)
    assert "/v1/models was not found (HTTP 404: Not Found)" in str(caught.value)


def test_missing_api_key_says_which_variable(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QWENCHAT_TEST_KEY", raising=False)
    server.routes[("GET", "/v1/models")] = lambda h, _b: h.send_json(
        401, {"detail": "Invalid API Key"}
    )
    with pytest.raises(EngineConnectionError) as caught:
        connect(server, api_key_env="QWENCHAT_TEST_KEY")
    assert str(caught.value) == (
        f"{server.url}/v1/models refused the request (HTTP 401: Invalid API Key):"
        " put the server's API key in $QWENCHAT_TEST_KEY"
    )
    monkeypatch.setenv("QWENCHAT_TEST_KEY", "wrong")
    with pytest.raises(EngineConnectionError, match=r"check the API key in \$QWENCHAT_TEST_KEY"):
        connect(server, api_key_env="QWENCHAT_TEST_KEY")


def test_api_key_is_sent_from_the_environment(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QWENCHAT_TEST_KEY", "sekrit")
    run(connect(server, api_key_env="QWENCHAT_TEST_KEY"))
    assert server.requests and all(
        r.headers.get("Authorization") == "Bearer sekrit" for r in server.requests
    )
    monkeypatch.delenv("QWENCHAT_TEST_KEY")
    server.requests.clear()
    run(connect(server, api_key_env="QWENCHAT_TEST_KEY"))
    assert all("Authorization" not in r.headers for r in server.requests)


def test_a_model_the_server_does_not_serve_falls_back_with_a_warning(server: FakeServer) -> None:
    warnings: list[str] = []
    engine = connect(server, model="qwen2.5-7b", warn=warnings.append)
    assert engine.remote_model == "/m/qwen-test.gguf"
    assert warnings == [
        f"{server.url} does not serve model 'qwen2.5-7b' (it serves /m/qwen-test.gguf):"
        " using '/m/qwen-test.gguf'"
    ]


# Streaming


def test_streams_the_rendered_prompt_and_the_sampling(server: FakeServer) -> None:
    engine = connect(server)
    sampling = Sampling(temperature=0.3, top_p=0.9, top_k=40, repeat_penalty=1.1, seed=5)
    gen = engine.generate(prompt("Hi"), sampling, stop=["```output"])
    deltas = list(gen)
    assert deltas == ["Hello", ",", " world"]
    assert gen.result is not None
    assert gen.result.text == "Hello, world" and gen.result.finish_reason == "stop"
    (body,) = server.completions()
    text = "".join(s.text for s in prompt("Hi"))
    assert body == {
        "model": "/m/qwen-test.gguf",
        "prompt": text,
        "max_tokens": 1024,
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "min_p": 0.0,
        "repeat_penalty": 1.1,
        "seed": 5,
        "stream": True,
        "stream_options": {"include_usage": True},
    }  # no "stop": the engine watches for stop strings itself


def test_max_tokens_is_capped_by_the_room_left(server: FakeServer) -> None:
    engine = connect(server, n_ctx=300)
    n_prompt = engine.count_tokens(prompt())
    run(engine, Sampling(max_tokens=1000))
    assert server.completions()[0]["max_tokens"] == 300 - n_prompt


def test_a_prompt_over_the_window_is_an_input_error(server: FakeServer) -> None:
    engine = connect(server, n_ctx=256)
    with pytest.raises(InputError, match=r"the prompt is \d+ tokens but the context window is 256"):
        list(engine.generate(prompt("x" * 300), GREEDY))
    assert server.completions() == []


def test_length_finish(server: FakeServer) -> None:
    server.reply(["a", "b"], finish="length")
    _, result = run(connect(server))
    assert result.finish_reason == "length" and result.text == "ab"


def test_sse_comments_events_and_crlf_are_understood(server: FakeServer) -> None:
    lines = [": ping - 2024-01-01\r\n", "event: message\r\n", "\r\n"]
    server.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_sse(
        [text_event("ok"), text_event("", "stop")], raw_lines=lines
    )
    deltas, result = run(connect(server))
    assert deltas == ["ok"] and result.finish_reason == "stop"


def test_a_server_that_ignores_stream_still_answers(server: FakeServer) -> None:
    whole = {
        "choices": [{"text": "all at once", "finish_reason": "length"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3},
    }
    server.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_json(200, whole)
    deltas, result = run(connect(server))
    assert deltas == ["all at once"] and result.finish_reason == "length"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (7, 3)


def test_stop_string_across_chunks_ends_the_reply_with_it(server: FakeServer) -> None:
    server.reply(["Let me run it.\n``", "`out", "put", "\nnot this", " nor this"])
    deltas, result = run(connect(server), stop=["```output"])
    # As the local engine: the text ends with the chunk (token) that completes it.
    assert deltas == ["Let me run it.\n``", "`out", "put"]
    assert result.text == "Let me run it.\n```output"
    assert result.finish_reason == "stop" and result.stop_sequence == "```output"


def test_end_of_turn_text_is_cut(server: FakeServer) -> None:
    server.reply(["Done.", "<|im_end|>\n<|im_start|>user"])
    deltas, result = run(connect(server))
    assert deltas == ["Done."] and result.text == "Done." and result.finish_reason == "stop"


def test_usage_from_the_servers_usage_chunk(server: FakeServer) -> None:
    usage = {
        "prompt_tokens": 12,
        "completion_tokens": 3,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 8},
    }
    server.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_sse(
        [
            text_event("a"),
            text_event("b"),
            text_event("c", "stop"),
            json.dumps({"choices": [], "usage": usage}),
        ]
    )
    _, result = run(connect(server))
    assert result.usage.model_dump() == {
        "prompt_tokens": 12,
        "cached_tokens": 8,
        "completion_tokens": 3,
    }


def test_usage_counted_with_the_servers_tokenizer_when_it_sends_none(server: FakeServer) -> None:
    server.reply(["Hello", ", world"])
    engine = connect(server)
    _, result = run(engine)
    assert result.usage.prompt_tokens == len(fake_tokens("".join(s.text for s in prompt())))
    assert result.usage.completion_tokens == len("Hello, world")
    assert result.usage.cached_tokens == 0
    # The fitting pass already counted this prompt: one tokenize call for it in all.
    texts = [r.body["input"] for r in server.requests if r.path == "/extras/tokenize"]
    assert texts.count("".join(s.text for s in prompt())) == 1


def test_timings_come_from_the_chunks(server: FakeServer) -> None:
    server.reply(["a", "b", "c", "d", "e"], delay=0.05)
    _, result = run(connect(server))
    timings = result.timings
    assert 0 < timings.ttft_s < timings.total_s
    assert 5 < timings.decode_tokens_per_s < 40  # 4 gaps of about 50 ms


def test_banned_tokens_become_logit_bias(server: FakeServer) -> None:
    _, _ = run(connect(server), banned=["<tool_call>"])
    assert server.completions()[0]["logit_bias"] == {"151657": -100}


def test_cancel_from_another_thread_while_the_server_stalls(server: FakeServer) -> None:
    server.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_sse(
        [text_event("one"), text_event(" two"), text_event(" three")], stall_after=2
    )
    gen = connect(server).generate(prompt(), GREEDY)
    deltas = []
    started = time.perf_counter()
    for delta in gen:
        deltas.append(delta)
        if len(deltas) == 2:  # the next read blocks: only closing the socket ends it
            threading.Timer(0.2, gen.cancel).start()
    assert time.perf_counter() - started < 3
    assert deltas == ["one", " two"]
    assert gen.result is not None
    assert gen.result.finish_reason == "cancelled" and gen.result.text == "one two"


def test_cancel_before_the_start_asks_the_server_nothing(server: FakeServer) -> None:
    gen = connect(server).generate(prompt(), GREEDY)
    gen.cancel()
    assert list(gen) == []
    assert gen.result is not None and gen.result.finish_reason == "cancelled"
    assert server.completions() == []


# Failures


def test_read_timeout_before_the_first_byte(server: FakeServer) -> None:
    server.routes[("POST", "/v1/completions")] = lambda _h, _b: server.release.wait(10)
    with pytest.raises(EngineConnectionError) as caught:
        run(connect(server, timeout=0.3))
    assert str(caught.value) == (
        f"{server.url} sent nothing for 0.3 s: the server is busy or stuck;"
        " raise engine.timeout to wait longer"
    )


def test_read_timeout_mid_reply(server: FakeServer) -> None:
    server.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_sse(
        [text_event("one"), text_event("two")], stall_after=1
    )
    with pytest.raises(EngineConnectionError, match=r"sent nothing for 0.3 s mid-reply"):
        run(connect(server, timeout=0.3))


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            404,
            {"error": {"message": "The model `x` does not exist.", "code": 404}},
            "/v1/completions was not found (HTTP 404: The model `x` does not exist.)",
        ),
        (
            500,
            {"error": {"message": "Requested tokens (5000) exceed context window\n\n  File x"}},
            "/v1/completions failed (HTTP 500: Requested tokens (5000) exceed context window)",
        ),
        (503, "<html>busy</html>", "/v1/completions failed (HTTP 503: <html>busy</html>)"),
        (301, "", "/v1/completions redirects elsewhere (HTTP 301): give the URL it redirects"),
    ],
)
def test_http_errors_are_one_line(
    server: FakeServer, status: int, body: Any, expected: str
) -> None:
    def fail(h: Handler, _b: Any) -> None:
        raw = (body if isinstance(body, str) else json.dumps(body)).encode()
        h.send_response(status)
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)

    server.routes[("POST", "/v1/completions")] = fail
    with pytest.raises(EngineConnectionError) as caught:
        run(connect(server))
    message = str(caught.value)
    assert expected in message and "\n" not in message


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['data: {"choices": [{"text": "hi"\n\n'], "malformed stream (not JSON"),
        (["<html>\n"], "malformed stream (a line that is not server-sent events)"),
        (['data: {"choices": [{"text": 5}]}\n\n'], "malformed stream (text that is not a string)"),
    ],
)
def test_malformed_streams(server: FakeServer, lines: list[str], expected: str) -> None:
    server.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_sse(
        [], raw_lines=lines, done=False
    )
    with pytest.raises(EngineConnectionError) as caught:
        run(connect(server))
    assert expected in str(caught.value)


def test_an_error_event_mid_stream(server: FakeServer) -> None:
    server.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_sse(
        [text_event("par"), json.dumps({"error": {"message": "out of memory"}})]
    )
    with pytest.raises(EngineConnectionError, match=r"failed mid-reply: out of memory$"):
        run(connect(server))


def test_a_stream_cut_short(server: FakeServer) -> None:
    server.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_sse(
        [text_event("par")], done=False
    )
    with pytest.raises(EngineConnectionError, match=r"broke off the reply mid-stream: is the"):
        run(connect(server))


def test_a_failure_mid_reply_leaves_the_chat_usable(server: FakeServer) -> None:
    chat = Chat(settings=Settings(), engine=connect(server), temperature=0)
    server.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_sse(
        [text_event("half a")], done=False
    )
    with pytest.raises(EngineConnectionError):
        chat.send("First question")
    server.reply(["Fine", " again"])
    reply = chat.send("Second question")
    assert reply.text == "Fine again"
    assert [m.role for m in chat.messages] == ["user", "user", "assistant"]
    assert "First question" in server.completions()[-1]["prompt"]


# Other servers


def test_vllm(server: FakeServer) -> None:
    server.routes[("GET", "/v1/models")] = lambda h, _b: h.send_json(
        200,
        {"data": [{"id": "Qwen/Qwen2.5-72B-Instruct", "owned_by": "vllm", "max_model_len": 32768}]},
    )
    server.routes[("POST", "/tokenize")] = lambda h, b: h.send_json(
        200 if "prompt" in b else 400, {"tokens": fake_tokens(b.get("prompt", "")), "count": 0}
    )
    engine = connect(server)
    assert (engine.server, engine.model_name, engine.n_ctx) == (
        "vLLM",
        "Qwen/Qwen2.5-72B-Instruct",
        32768,
    )
    assert (
        connect(server, n_ctx=8192)
        .info()
        .summary.endswith("n_ctx 8192 (engine.n_ctx; the server's is 32768)")
    )
    assert connect(server, n_ctx=65536).n_ctx == 32768
    run(engine, Sampling(top_k=0, repeat_penalty=1.2), banned=["<tool_call>"])
    body = server.completions()[0]
    assert body["top_k"] == -1 and body["repetition_penalty"] == 1.2
    assert "repeat_penalty" not in body and body["logit_bias"] == {"151657": -100}
    tokenize = next(r.body for r in server.requests if r.path == "/tokenize")
    assert tokenize["model"] == "Qwen/Qwen2.5-72B-Instruct" and not tokenize["add_special_tokens"]


def test_llama_server(server: FakeServer) -> None:
    server.routes[("GET", "/v1/models")] = lambda h, _b: h.send_json(
        200, {"data": [{"id": "qwen2.5-32b.gguf", "owned_by": "llamacpp"}]}
    )
    server.routes[("GET", "/props")] = lambda h, _b: h.send_json(
        200, {"default_generation_settings": {"n_ctx": 16384}, "total_slots": 1}
    )
    server.routes[("POST", "/tokenize")] = lambda h, b: h.send_json(
        200, {"tokens": fake_tokens(b["content"])}
    )
    server.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_sse(
        [
            text_event("Hi"),
            json.dumps(
                {
                    "choices": [{"text": "", "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 20, "completion_tokens": 1},
                    "timings": {"cache_n": 17},
                }
            ),
        ]
    )
    engine = connect(server)
    assert (engine.server, engine.model_name, engine.n_ctx) == (
        "llama-server",
        "qwen2.5-32b",
        16384,
    )
    assert engine.count_tokens(prompt()) == len(fake_tokens("".join(s.text for s in prompt())))
    _, result = run(engine)
    assert result.usage.model_dump() == {
        "prompt_tokens": 20,
        "cached_tokens": 17,
        "completion_tokens": 1,
    }
    assert "repetition_penalty" not in server.completions()[0]


def test_ollama_uses_its_raw_generate_endpoint(server: FakeServer) -> None:
    server.routes[("GET", "/v1/models")] = lambda h, _b: h.send_json(
        200, {"data": [{"id": "qwen2.5:7b", "owned_by": "library"}]}
    )
    server.routes[("GET", "/api/version")] = lambda h, _b: h.send_json(200, {"version": "0.9"})
    lines = [
        json.dumps({"response": "Bon", "done": False}),
        json.dumps({"response": "jour", "done": False}),
        json.dumps(
            {
                "response": "",
                "done": True,
                "done_reason": "stop",
                "prompt_eval_count": 30,
                "eval_count": 2,
            }
        ),
    ]
    server.routes[("POST", "/api/generate")] = lambda h, _b: h.send_sse(
        [],
        raw_lines=[line + "\n" for line in lines],
        done=False,
        content_type="application/x-ndjson",
    )
    engine = connect(server, model="qwen2.5:7b")
    assert engine.ollama and engine.server == "Ollama" and engine.n_ctx == 4096
    text = "".join(s.text for s in prompt())
    assert engine.count_tokens(prompt()) == estimate_tokens(text)
    deltas, result = run(engine, Sampling(temperature=0, seed=3, max_tokens=64))
    assert deltas == ["Bon", "jour"] and result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (30, 2)
    body = next(r.body for r in server.requests if r.path == "/api/generate")
    assert body["raw"] is True and body["prompt"] == text and body["model"] == "qwen2.5:7b"
    assert body["options"]["num_ctx"] == 4096 and body["options"]["num_predict"] == 64
    assert body["options"]["seed"] == 3
    assert server.completions() == []


def test_a_server_without_a_tokenizer_gets_estimates(server: FakeServer) -> None:
    server.routes[("GET", "/v1/models")] = lambda h, _b: h.send_json(
        200, {"data": [{"id": "some-model", "owned_by": "someone"}]}
    )
    del server.routes[("POST", "/extras/tokenize")]
    engine = connect(server)
    assert engine.server == "an OpenAI-compatible server"
    text = "".join(s.text for s in prompt())
    assert engine.count_tokens(prompt()) == estimate_tokens(text)
    server.reply(["a", "b", "c"])
    _, result = run(engine, banned=["<tool_call>"])
    assert result.usage.completion_tokens == 3  # one per chunk
    body = server.completions()[0]
    assert "logit_bias" not in body
    assert body["repeat_penalty"] == body["repetition_penalty"] == 1.05


# Wiring: config, load_engine, the CLI's helpers


def test_load_engine_connects_when_a_url_is_configured(server: FakeServer) -> None:
    from qwenchat.config import EngineSettings
    from qwenchat.engine.load import load_engine

    settings = Settings(engine=EngineSettings(url=server.url + "/v1", n_ctx=1024))
    engine = load_engine(None, settings)
    assert isinstance(engine, RemoteEngine)
    assert engine.url == server.url and engine.n_ctx == 1024


def test_engine_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from qwenchat.cli.common import settings_with

    monkeypatch.setenv("QWENCHAT_CONFIG_DIR", str(tmp_path))
    (tmp_path / "config.toml").write_text('[engine]\nurl = "gpu-box:8000"\n')
    assert settings_with().engine.url == "http://gpu-box:8000"
    assert settings_with(engine_url="https://h/v1").engine.url == "https://h"
    assert settings_with(engine_url="local").engine.url is None
    with pytest.raises(InputError, match="--engine: expected an http"):
        settings_with(engine_url="ftp://h")


def test_a_bad_url_in_the_config_names_the_key(tmp_path: Any) -> None:
    from qwenchat.config import load_settings
    from qwenchat.errors import ConfigError

    path = tmp_path / "config.toml"
    path.write_text('[engine]\nurl = "ftp://gpu-box"\n')
    with pytest.raises(ConfigError, match=r"key 'engine.url': .*expected an http:// or https://"):
        load_settings(path)


@pytest.mark.parametrize(
    ("kind", "field"), [("llama-cpp-python", "grammar"), ("vllm", "guided_grammar")]
)
def test_a_constraint_goes_to_the_server_as_its_grammar(
    server: FakeServer, kind: str, field: str
) -> None:
    from qwenchat.engine.base import Constraint

    engine = connect(server)
    engine.kind = kind  # type: ignore[assignment]
    gen = engine.generate(prompt(), GREEDY, constraint=Constraint(gbnf='root ::= "x"'))
    list(gen)
    assert server.completions()[0][field] == 'root ::= "x"'
    assert gen.result is not None and gen.result.notice is None


def test_a_server_without_grammars_generates_unconstrained_and_says_so(
    server: FakeServer,
) -> None:
    from qwenchat.engine.base import Constraint

    engine = connect(server)
    engine.kind = "openai"
    gen = engine.generate(prompt(), GREEDY, constraint=Constraint(gbnf='root ::= "x"'))
    assert "".join(gen) == "Hello, world"
    assert "grammar" not in server.completions()[0]
    assert gen.result is not None and "generated unconstrained" in (gen.result.notice or "")
    # A constraint that only steers (the prose opening of an answer) goes unsaid.
    hint = Constraint(gbnf='root ::= "x"', hint=True)
    gen = engine.generate(prompt(), GREEDY, constraint=hint)
    assert "".join(gen) == "Hello, world" and gen.result is not None
    assert gen.result.notice is None


def test_a_batch_of_replies_is_requested_all_at_once(server: FakeServer) -> None:
    """Each request waits until all three are in: requested one by one, they would not be."""
    together = threading.Barrier(3, timeout=5)

    def reply(handler: Handler, body: Any) -> None:
        together.wait()
        handler.send_sse([text_event(f"seed {body['seed']}"), text_event("", "stop")])

    server.routes[("POST", "/v1/completions")] = reply
    samplings = [GREEDY.model_copy(update={"seed": s}) for s in (1, 2, 3)]
    generations = connect(server).generate_batch(prompt(), samplings)
    assert ["".join(g) for g in generations] == ["seed 1", "seed 2", "seed 3"]
    assert all(g.result is not None and g.result.finish_reason == "stop" for g in generations)


def test_a_reply_of_a_batch_fails_where_it_is_read(server: FakeServer) -> None:
    server.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_json(500, {"error": "x"})
    [generation] = connect(server).generate_batch(prompt(), [GREEDY, GREEDY])[:1]
    with pytest.raises(QwenchatError):
        list(generation)
