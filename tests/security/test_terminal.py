"""A terminal that cannot be hijacked: what models, tools, the sandbox and servers write
reaches stdout, stderr and the TUI with its control characters inert, while the stored
text stays exact. Judged on the bytes qwenchat writes (and, for the TUI, the text of
every strip it would draw)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qwenchat.safetext import inert_json, shown, shown_json
from qwenchat.store import SessionStore
from tests.sandbox_layers import skip_unless_usable
from tests.tui.conftest import SIZE, make_app, ready, send
from tests.unit.test_cli import run_cli
from tests.unit.test_remote_engine import FakeServer, server, text_event  # noqa: F401

# OSC 52 (write the clipboard), clear the screen, a C1 CSI, a lone CR, a bell.
HOSTILE = "\x1b]52;c;aGkgdGhlcmU=\x07\x1b[2J\x9b31mred\rover\x07"
# What must never be written: C0 but LF and TAB (and CR, checked apart), DEL, C1.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def inert(text: str) -> bool:
    return _CONTROL.search(text) is None


# --- the mapping ---------------------------------------------------------------------


@given(st.text())
def test_shown_text_holds_no_control_character_but_newline_and_tab(text: str) -> None:
    out = shown(text)
    assert inert(out)
    assert out.count("\n") == text.count("\n")  # lines stay lines (CR LF is one LF)


@given(
    st.recursive(
        st.none() | st.booleans() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_shown_json_is_the_same_data_and_inert(value: object) -> None:
    text = shown_json(value)
    assert inert(text) and "\u2028" not in text
    assert json.loads(text) == value


def test_every_control_character_becomes_visible() -> None:
    assert shown(HOSTILE) == "␛]52;c;aGkgdGhlcmU=␇␛[2J\\x9b31mred␍over␇"
    assert shown("a\r\nb\tc\n") == "a\nb\tc\n"
    assert inert_json('{"a": "\x9b"}') == '{"a": "\\u009b"}'


# --- ask, over a scripted server ----------------------------------------------------


def _scripted(server: FakeServer, replies: list[str]) -> None:  # noqa: F811
    pending = iter(replies)
    server.routes[("POST", "/v1/completions")] = lambda h, _b: h.send_sse(
        [text_event(next(pending)), text_event("", "stop")]
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "QWENCHAT_CONFIG_DIR": str(tmp_path / "cfg"),
        "QWENCHAT_DATA_DIR": str(tmp_path / "data"),
    }


def test_a_models_escape_sequences_are_inert_in_ask(
    server: FakeServer,  # noqa: F811
    env: dict[str, str],
) -> None:
    _scripted(server, [f"Sure.{HOSTILE} Done."])
    result = run_cli("ask", "--engine", server.url, "hi", env=env)
    assert result.returncode == 0, result.stderr
    assert inert(result.stdout) and "\r" not in result.stdout
    assert "␛]52;c;aGkgdGhlcmU=␇" in result.stdout  # visible, not obeyed


def test_ask_json_is_exact_data_and_inert(server: FakeServer, env: dict[str, str]) -> None:  # noqa: F811
    _scripted(server, [HOSTILE])
    result = run_cli("ask", "--json", "--engine", server.url, "hi", env=env)
    assert result.returncode == 0, result.stderr
    assert inert(result.stdout)
    assert json.loads(result.stdout)["text"] == HOSTILE.strip()


def test_sandbox_output_in_a_tir_reply_is_inert_in_ask_and_its_progress_lines(
    server: FakeServer,  # noqa: F811
    env: dict[str, str],
) -> None:
    skip_unless_usable("bubblewrap")
    code = f"```python\nprint({HOSTILE!r})\n```\n```output\n"
    _scripted(server, [code, "The answer is \\boxed{1}."])
    result = run_cli("ask", "--tir", "--yes", "--engine", server.url, "go", env=env)
    assert result.returncode == 0, result.stderr
    assert inert(result.stdout) and inert(result.stderr)
    assert "␛]52" in result.stdout


def test_tools_run_python_output_is_inert(env: dict[str, str]) -> None:
    skip_unless_usable("bubblewrap")
    arguments = json.dumps({"code": f"print({HOSTILE!r})"})
    result = run_cli("tools", "run", "python", arguments, "--yes", env=env)
    assert inert(result.stdout) and "␛]52" in result.stdout


# --- sessions: exact in the store and in a file, inert on a terminal ---------------


@pytest.fixture
def hostile_session(env: dict[str, str]) -> Iterator[dict[str, str]]:
    with SessionStore(Path(env["QWENCHAT_DATA_DIR"]) / "sessions.db") as store:
        session = store.create_session(title="evil\x1b]0;title\x07")
        store.add_message(session.id, {"role": "user", "content": f"hello{HOSTILE}"})
        store.add_message(session.id, {"role": "assistant", "content": f"reply{HOSTILE}"})
    yield env


def _on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run qwenchat with its stdout on a pseudo-terminal; return what it wrote."""
    leader, follower = os.openpty()
    done = subprocess.run(
        [sys.executable, "-c", "from qwenchat.cli import main; main()", *args],
        stdout=follower,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
        timeout=60,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert done.returncode == 0, done.stderr
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_sessions_show_and_list_are_inert(hostile_session: dict[str, str]) -> None:
    shown_md = run_cli("sessions", "show", "1", env=hostile_session)
    listed = run_cli("sessions", "list", env=hostile_session)
    assert shown_md.returncode == listed.returncode == 0
    assert inert(shown_md.stdout) and "␛]52" in shown_md.stdout
    assert inert(listed.stdout) and "evil␛]0;title␇" in listed.stdout


def test_an_export_is_exact_to_a_file_and_inert_on_a_terminal(
    hostile_session: dict[str, str],
) -> None:
    to_file = run_cli("sessions", "export", "1", "--format", "json", env=hostile_session)
    exported = json.loads(to_file.stdout)
    assert any(HOSTILE in m["content"] for m in exported["messages"])  # the exact text
    on_terminal = _on_a_terminal(["sessions", "export", "1"], hostile_session)
    assert inert(on_terminal.replace("\r", "")) and "␛]52" in on_terminal


# --- the TUI ---------------------------------------------------------------------------


def _drawn_text(app: object) -> str:
    """The text of every strip every widget on the screen would draw now."""
    screen = app.screen  # type: ignore[attr-defined]
    texts = []
    for widget in screen.walk_children(with_self=True):
        if not widget.display or not widget.region:
            continue
        for strip in widget.render_lines(widget.region.reset_offset):
            texts.append("".join(segment.text for segment in strip))
    return "\n".join(texts)


@pytest.mark.asyncio
async def test_the_tui_draws_what_the_model_and_tools_wrote_inert(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "s.db") as store:
        app = make_app(
            store, [f"# Title{HOSTILE}\nsome `code{HOSTILE}` and [a link](http://x/{HOSTILE})"]
        )
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await send(pilot, f"my message{HOSTILE}")
            app.notify(f"a warning quoting a tool: {HOSTILE}", severity="warning")
            await app.conversation.add_note(f"a note: {HOSTILE}")
            app.status.set(model=f"model{HOSTILE}", persona=f"persona{HOSTILE}")
            await pilot.pause(0.3)
            drawn = _drawn_text(app)
            assert "Title" in drawn and "my message" in drawn and "a note" in drawn
            assert inert(drawn) and "\r" not in drawn
            # The store keeps the exact text.
            assert HOSTILE in store.history(app.state.session.id)[1].content


@pytest.mark.asyncio
async def test_the_tui_draws_tool_calls_approval_and_session_titles_inert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qwenchat.tui.screens.approval import ApprovalScreen
    from tests.tui.conftest import SHOUT_TOOL, call, wait_for

    monkeypatch.setenv("QWENCHAT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("QWENCHAT_DATA_DIR", str(tmp_path / "data"))
    tools = tmp_path / "config" / "tools"
    tools.mkdir(parents=True)
    (tools / "shout.py").write_text(SHOUT_TOOL, encoding="utf-8")
    with SessionStore(tmp_path / "s.db") as store:
        store.create_session(title=f"old{HOSTILE}")  # listed in the sidebar
        app = make_app(
            store, [call("shout", text=f"hi{HOSTILE}"), f"It said HI{HOSTILE}"], tools=True
        )
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await pilot.press("ctrl+b")  # the sessions sidebar
            await send(pilot, "shout", wait=False)
            await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), "approval")
            asking = _drawn_text(app)
            assert "shout" in asking and inert(asking) and "\r" not in asking
            await pilot.press("y")
            await wait_for(pilot, lambda: app.tracked.replies_ended, "the reply")
            await pilot.pause(0.3)
            drawn = _drawn_text(app)
            assert "✓ shout" in drawn and "old" in drawn and "It said HI" in drawn
            assert inert(drawn) and "\r" not in drawn


# --- ask's own lines: the approval question and the progress lines ---------------------


def test_the_approval_question_shows_the_models_arguments_inert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from qwenchat.cli import common
    from qwenchat.tools.registry import tool_from_function

    class Tty(io.StringIO):
        def readline(self, *_: object) -> str:
            return "y\n"

    tty = Tty()
    monkeypatch.setattr(common, "open", lambda *_a, **_k: tty, raising=False)
    approve = common.terminal_approver()
    assert approve is not None

    def echo(text: str) -> str:
        """Echo."""
        return text

    assert approve(tool_from_function(echo), {"text": HOSTILE + "\u2028"}) == "once"
    asked = tty.getvalue()
    assert "run echo" in asked and inert(asked) and "\u2028" not in asked


def test_the_progress_lines_show_calls_and_results_inert(capsys: pytest.CaptureFixture) -> None:
    from qwenchat.agent import ToolCallFinished, ToolCallRecord, ToolCallStarted
    from qwenchat.cli.ask import _progress

    _progress(ToolCallStarted(id="1", name="python", arguments={"code": HOSTILE}))
    record = ToolCallRecord(id="1", name="python", arguments={}, status="ok", result=HOSTILE)
    _progress(ToolCallFinished(record=record))
    lines = capsys.readouterr().err
    assert "→ python" in lines and "← python [ok" in lines
    assert inert(lines) and "␛]52" in lines


def test_a_session_name_with_control_characters_is_refused_in_one_line(
    env: dict[str, str],
) -> None:
    result = run_cli(
        "ask", "--engine", "http://127.0.0.1:9", "--session", "n\x1b]0;x\x07", "hi", env=env
    )
    assert result.returncode == 2 and "printable" in result.stderr
    assert inert(result.stderr) and len(result.stderr.splitlines()) == 1


def test_a_stored_name_with_control_characters_is_listed_inert(env: dict[str, str]) -> None:
    import sqlite3

    path = Path(env["QWENCHAT_DATA_DIR"]) / "sessions.db"
    with SessionStore(path) as store:
        store.create_session(name="plain")
    with sqlite3.connect(path) as db:  # as an older qwenchat, which took any name, stored it
        db.execute("UPDATE sessions SET name = ?", (f"n{HOSTILE}",))
    listed = run_cli("sessions", "list", env=env)
    assert listed.returncode == 0 and inert(listed.stdout) and "n␛]52" in listed.stdout


def test_tools_run_shows_a_tools_result_and_error_inert(
    env: dict[str, str], tmp_path: Path
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "hostile.py").write_text(
        "def echo(text: str) -> str:\n"
        '    """Echo a text.\n\n    Args:\n        text: the text.\n    """\n'
        "    return text\n\n\n"
        "def fail(text: str) -> str:\n"
        '    """Fail with a text.\n\n    Args:\n        text: the text.\n    """\n'
        "    raise ValueError(text)\n"
    )
    arguments = json.dumps({"text": HOSTILE})
    echoed = run_cli("tools", "run", "echo", arguments, "--yes", "--tools-dir", str(tools), env=env)
    failed = run_cli("tools", "run", "fail", arguments, "--yes", "--tools-dir", str(tools), env=env)
    assert echoed.returncode == 0 and "␛]52" in echoed.stdout
    assert failed.returncode == 1 and "␛]52" in failed.stderr
    for result in (echoed, failed):
        assert inert(result.stdout) and inert(result.stderr) and "\r" not in result.stdout
