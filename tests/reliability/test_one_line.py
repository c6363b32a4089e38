"""Bad input gets one clear line, not a traceback: exit 2 for bad input, 1 for a
failure, and the process (or the session) survives what tools and servers do.

Every case here printed a Python traceback, ended qwenchat without a word, or hung.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qwenchat.agent import run_tool
from qwenchat.chatml import render_segments
from qwenchat.config import Sampling
from qwenchat.errors import QwenchatError
from qwenchat.store import SessionStore, StoreError, StoreInputError
from qwenchat.store.export import parse_document
from qwenchat.toolcall import ToolCallParser
from qwenchat.tools import load_tools
from tests.sandbox_layers import skip_unless_usable
from tests.unit.test_cli import run_cli
from tests.unit.test_remote_engine import FakeServer, connect, server, text_event  # noqa: F401


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "QWENCHAT_CONFIG_DIR": str(tmp_path / "cfg"),
        "QWENCHAT_DATA_DIR": str(tmp_path / "data"),
    }


def one_line(result: Any, code: int) -> str:
    """The one stderr line of a run that exited with ``code``."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("qwenchat: "), result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    return lines[0]


# --- flags -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--max-tokens", "0", "--max-tokens 0"),
        ("--max-tokens", "-1", "--max-tokens -1"),
        ("--temperature", "-1", "--temperature -1"),
        ("--temperature", "nan", "--temperature nan"),
        ("--temperature", "inf", "--temperature inf"),
        ("--n-ctx", "10", "--n-ctx 10"),
        ("--threads", "-5", "--threads -5"),
        ("--max-tokens", "many", "'--max-tokens'"),
        ("--gpu-layers", "²", "--gpu-layers"),
    ],
)
def test_a_bad_flag_value_is_one_line_before_any_work(
    env: dict[str, str], flag: str, value: str, says: str
) -> None:
    # A server nobody listens on: the value must be refused before it is needed.
    result = run_cli("ask", "--engine", "http://127.0.0.1:9", flag, value, "hi", env=env)
    assert says in one_line(result, 2)


@pytest.mark.parametrize("ref", ["12345678901234567890123", "²", "٣", "0"])
def test_sessions_show_with_an_odd_id_is_one_line(env: dict[str, str], ref: str) -> None:
    assert "no session" in one_line(run_cli("sessions", "show", ref, env=env), 2)


# --- sessions import ---------------------------------------------------------------------


def _export(**message: Any) -> str:
    node = {"id": 1, "parent_id": None, "role": "user", "content": "hi", **message}
    node.setdefault("created", "2026-01-01T00:00:00Z")
    session = {
        "id": 1, "title": "t", "created": "2026-01-01T00:00:00Z",
        "updated": "2026-01-01T00:00:00Z", "head_id": 1,
    }  # fmt: skip
    return json.dumps(
        {"format": "qwenchat-session", "version": 1, "session": session, "messages": [node]}
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (_export(content="a\ud800b"), "UTF-16"),
        (_export(prompt_tokens=10**30), "prompt_tokens"),
        (_export(duration_s=1e400), "duration_s"),
        (
            '{"format": "qwenchat-session", "version": 1, "x": '
            + "[" * 100_000
            + "]" * 100_000
            + "}",
            "nested",
        ),
        ("\x00\x01garbage", "not a JSON file"),
        (_export(created="9999-12-31T23:00:00-05:00"), "out of range"),
    ],
    ids=["surrogate", "huge-count", "inf-duration", "deep-nesting", "garbage", "far-future"],
)
def test_a_bad_import_is_one_line_and_imports_nothing(
    env: dict[str, str], tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    assert says in one_line(run_cli("sessions", "import", str(path), env=env), 2)
    with SessionStore(Path(env["QWENCHAT_DATA_DIR"]) / "sessions.db") as store:
        assert store.list_sessions() == []


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_as_an_export_are_a_store_input_error_or_a_document(data: bytes) -> None:
    text = data.decode("utf-8", errors="surrogateescape")
    with contextlib.suppress(StoreInputError):
        parse_document(text)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(_json)
def test_any_json_as_an_export_is_a_store_input_error_or_a_document(value: Any) -> None:
    for doc in (
        value,
        {"format": "qwenchat-session", "version": 1, "session": value, "messages": value},
    ):
        with contextlib.suppress(StoreInputError):
            parse_document(json.dumps(doc))


_moment = st.builds(
    lambda moment, offset: moment.replace(tzinfo=timezone(timedelta(minutes=offset))).isoformat(),
    st.sampled_from([datetime.min, datetime.max]) | st.datetimes(),  # the edges, in any zone
    st.integers(-23 * 60, 23 * 60),
)
_count = st.none() | st.integers(min_value=0) | st.integers() | st.floats()
_node = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "user", "assistant"]),
        "content": st.text(max_size=20),
        "created": _moment,
        "prompt_tokens": _count,
        "duration_s": _count,
    }
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    session=st.fixed_dictionaries(
        {
            "id": st.integers(min_value=0, max_value=9),
            "name": st.none() | st.text(max_size=10),
            "created": _moment,
            "updated": _moment,
        }
    ),
    nodes=st.lists(_node, max_size=4),
)
def test_any_well_shaped_export_imports_or_is_a_store_input_error(
    tmp_path: Path, session: dict[str, Any], nodes: list[dict[str, Any]]
) -> None:
    """Past the format check (a chain of messages, so that the tree holds): times in any
    zone, counts of any size and type."""
    messages = [{"id": i, "parent_id": i - 1 if i else None, **n} for i, n in enumerate(nodes)]
    session["head_id"] = len(nodes) - 1 if nodes else None
    doc = {"format": "qwenchat-session", "version": 1, "session": session, "messages": messages}
    with SessionStore(tmp_path / "fuzz.db") as store, contextlib.suppress(StoreInputError):
        imported = store.import_session(json.dumps(doc))
        assert len(store.history(imported.id)) == len(nodes)


# --- stdin ------------------------------------------------------------------------------


def _run_with_stdin(data: bytes, env: dict[str, str], url: str) -> subprocess.CompletedProcess:
    qwenchat = [sys.executable, "-c", "from qwenchat.cli import main; main()"]
    return subprocess.run(
        [*qwenchat, "ask", "--engine", url, "summarise"],
        input=data,
        capture_output=True,
        env={**os.environ, **env},
        timeout=60,
    )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.binary(max_size=300)
    | st.text(max_size=300).map(str.encode)
    | _json.map(json.dumps).map(str.encode)
    | st.sampled_from([b"\xff\xfe", b"a\x00b", b"\xed\xa0\x80", "é".encode("latin-1")])
)
def test_any_stdin_is_a_reply_or_one_line_never_a_traceback(
    server: FakeServer,  # noqa: F811
    env: dict[str, str],
    data: bytes,
) -> None:
    server.reply(["A summary."])
    done = _run_with_stdin(data, env, server.url)
    stderr = done.stderr.decode(errors="replace")
    assert "Traceback" not in stderr, stderr
    if done.returncode == 0:
        assert done.stdout.decode() == "A summary.\n"
    else:
        assert done.returncode == 2 and stderr.startswith("qwenchat: stdin is ")
        assert len(stderr.splitlines()) == 1


# --- what servers send -------------------------------------------------------------------


def _finish(usage: str) -> str:
    return '{"choices": [{"text": "", "finish_reason": "stop"}], "usage": ' + usage + "}"


def _generate(server: FakeServer) -> str:  # noqa: F811
    engine = connect(server)
    generation = engine.generate(render_segments([{"role": "user", "content": "hi"}]), Sampling())
    return "".join(generation)


@pytest.mark.parametrize(
    "events",
    [
        [text_event("ok"), _finish('{"prompt_tokens": "12", "completion_tokens": [1]}')],
        [text_event("ok"), _finish('{"prompt_tokens": 1e400, "completion_tokens": -3}')],
        ["[" * 50_000 + "]" * 50_000],
        ['{"choices": [{"text": "", "finish_reason": {"a": 1}}]}'],
    ],
    ids=["usage-types", "usage-values", "deep-nesting", "finish-object"],
)
def test_garbage_from_a_server_is_an_error_or_a_reply_never_a_crash(
    server: FakeServer,  # noqa: F811
    events: list[str],
) -> None:
    server.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_sse(events)
    with contextlib.suppress(QwenchatError):
        _generate(server)


def test_a_tokenizer_that_answers_strings_falls_back_to_estimates(server: FakeServer) -> None:  # noqa: F811
    server.routes[("POST", "/extras/tokenize")] = lambda h, _b: h.send_json(
        200, {"tokens": ["a", "b"]}
    )
    engine = connect(server)
    assert engine.count_tokens(render_segments([{"role": "user", "content": "hi there"}])) > 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_json.map(json.dumps) | st.text(max_size=40), max_size=6))
def test_any_stream_is_an_error_or_a_reply(server: FakeServer, payloads: list[str]) -> None:  # noqa: F811
    server.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_sse(payloads)
    with contextlib.suppress(QwenchatError):
        _generate(server)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(max_size=30)
        | st.sampled_from(
            [
                "<tool_call>",
                "</tool_call>",
                '{"name": "calculator", "arguments": ',
                "```json\n",
                "}",
            ]
        ),
        max_size=12,
    )
)
def test_the_tool_call_parser_takes_any_stream(deltas: list[str]) -> None:
    parser = ToolCallParser(known_tools={"calculator"})
    for delta in deltas:
        parser.feed(delta)
    parser.finish()


# --- what tools do -----------------------------------------------------------------------

HOSTILE_TOOLS = '''
import os


class Unprintable:
    def __str__(self):
        raise RuntimeError("no")


def unprintable() -> object:
    """Return something that cannot be shown."""
    return Unprintable()


def generator_exit() -> str:
    """Raise GeneratorExit."""
    raise GeneratorExit


def interrupt() -> str:
    """Raise KeyboardInterrupt."""
    raise KeyboardInterrupt


def hard_exit() -> str:
    """End the process."""
    os._exit(0)
'''


@pytest.fixture
def hostile_tools(tmp_path: Path) -> Path:
    directory = tmp_path / "hostile"
    directory.mkdir()
    (directory / "hostile.py").write_text(HOSTILE_TOOLS)
    return directory


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("unprintable", "cannot be shown"),
        ("generator_exit", "GeneratorExit"),
        ("interrupt", "KeyboardInterrupt"),
        ("hard_exit", "os._exit(0)"),
    ],
)
def test_a_tool_that_misbehaves_is_an_error_result_and_the_process_lives_on(
    hostile_tools: Path, name: str, says: str
) -> None:
    registry = load_tools([hostile_tools]).registry
    record = run_tool(registry.get(name), {})  # type: ignore[arg-type]
    assert record.status == "error" and says in record.result
    assert run_tool(registry.get("calculator"), {"expression": "2+2"}).result == "4"  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["hard_exit", "interrupt"])
def test_tools_run_reports_them_in_one_line_with_exit_1(
    env: dict[str, str], hostile_tools: Path, name: str
) -> None:
    result = run_cli("tools", "run", name, "--tools-dir", str(hostile_tools), "--yes", env=env)
    one_line(result, 1)


def test_a_tool_file_that_loops_at_import_does_not_hang_tools_list(
    env: dict[str, str], tmp_path: Path
) -> None:
    directory = tmp_path / "loops"
    directory.mkdir()
    (directory / "forever.py").write_text("while True:\n    pass\n")
    result = run_cli("tools", "list", "--tools-dir", str(directory), env=env)
    assert result.returncode == 0 and "calculator" in result.stdout
    assert "did not finish importing" in result.stderr and "Traceback" not in result.stderr


def test_a_tool_file_that_loops_at_import_is_stopped_not_left_burning_a_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qwenchat.tools import loader

    monkeypatch.setattr(loader, "IMPORT_TIMEOUT_S", 0.5)
    (tmp_path / "spin.py").write_text("n = 0\nwhile True:\n    n += 1\n")
    problems = load_tools([tmp_path]).problems
    assert any("did not finish importing" in p for p in problems)
    spinning = [t for t in threading.enumerate() if t.name == "import:spin.py"]
    for thread in spinning:
        thread.join(2.0)
    assert not any(t.is_alive() for t in spinning)


@pytest.mark.parametrize(
    ("code", "says"), [("1/0", "ZeroDivisionError"), ("while True: pass", "TimeoutError")]
)
def test_tools_run_python_exits_1_when_the_code_fails(
    env: dict[str, str], code: str, says: str
) -> None:
    skip_unless_usable("bubblewrap")
    (Path(env["QWENCHAT_CONFIG_DIR"])).mkdir(parents=True)
    (Path(env["QWENCHAT_CONFIG_DIR"]) / "config.toml").write_text("[sandbox]\ntimeout = 1\n")
    result = run_cli("tools", "run", "python", json.dumps({"code": code}), "--yes", env=env)
    assert result.returncode == 1 and says in result.stderr and "Traceback" not in result.stderr


# --- files -------------------------------------------------------------------------------


def test_one_broken_persona_does_not_hide_the_others(env: dict[str, str]) -> None:
    personas = Path(env["QWENCHAT_CONFIG_DIR"]) / "personas"
    personas.mkdir(parents=True)
    (personas / "broken.md").write_text("---\nname: [unclosed\n---\nHello")
    result = run_cli("personas", "list", env=env)
    assert result.returncode == 0 and "socrates" in result.stdout
    assert "broken.md" in result.stderr and "Traceback" not in result.stderr


def test_a_read_only_store_can_be_read_and_says_what_it_cannot_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sessions.db"
    with SessionStore(path) as store:
        store.create_session(name="kept")
    # As a user without write access to the file or its directory (root ignores modes).
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: not mode & os.W_OK)
    with SessionStore(path) as store:
        assert store.notice is not None and "read-only" in store.notice
        assert [s.name for s in store.list_sessions()] == ["kept"]
        with pytest.raises(StoreError, match=r"readonly|read-only"):
            store.create_session(name="new")


@pytest.fixture
def as_nobody() -> Iterator[tuple[Path, Callable[..., subprocess.CompletedProcess[str]]]]:
    """A directory anyone may enter, and a runner of qwenchat as nobody with its data dir
    there (root ignores file modes, so only another user sees them)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run qwenchat as another user")
    top = Path(tempfile.mkdtemp(prefix="qwenchat-nobody-"))
    top.chmod(0o755)
    (top / "cache").mkdir(mode=0o777)
    (top / "cache").chmod(0o777)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    environment = {
        **os.environ,
        "HOME": str(top),
        "QWENCHAT_CONFIG_DIR": str(top / "cfg"),
        "QWENCHAT_DATA_DIR": str(top / "data"),
        "QWENCHAT_CACHE_DIR": str(top / "cache"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [*nobody, sys.executable, "-c", "from qwenchat.cli import main; main()"]
        return subprocess.run(
            [*command, *args], capture_output=True, text=True, env=environment, timeout=60
        )

    yield top, run
    shutil.rmtree(top)


def test_a_read_only_data_dir_lists_sessions_and_refuses_writes_in_one_line(
    as_nobody: tuple[Path, Callable[..., subprocess.CompletedProcess[str]]],
) -> None:
    top, run = as_nobody
    with SessionStore(top / "data" / "sessions.db") as store:
        store.create_session(name="kept")
    for path in (top / "data", *(top / "data").iterdir()):
        path.chmod(0o555 if path.is_dir() else 0o444)
    listed = run("sessions", "list")
    assert listed.returncode == 0, listed.stderr
    assert "kept" in listed.stdout and "Traceback" not in listed.stderr
    assert "read-only" in listed.stderr and len(listed.stderr.splitlines()) == 1
    renamed = run("sessions", "rename", "kept", "other")
    assert renamed.returncode == 1 and "Traceback" not in renamed.stderr, renamed.stderr
    assert renamed.stderr.splitlines()[-1].startswith("qwenchat: ")


def test_a_data_dir_nobody_may_enter_is_one_line(
    as_nobody: tuple[Path, Callable[..., subprocess.CompletedProcess[str]]],
) -> None:
    top, run = as_nobody
    (top / "data").mkdir(mode=0o700)
    assert "Permission denied" in one_line(run("sessions", "list"), 1)


def test_an_uncreatable_data_dir_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli("sessions", "list", env={**env, "QWENCHAT_DATA_DIR": str(blocker / "data")})
    assert "cannot create" in one_line(result, 1)
