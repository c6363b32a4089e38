"""The TUI on the real test model: in a real terminal (tmux) and through Textual's Pilot."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from qwenchat.config import load_settings
from qwenchat.store import SessionStore
from qwenchat.tui.app import Launch, QwenchatApp
from qwenchat.tui.widgets.messages import AssistantBubble, ToolCallPanel
from tests.sandbox_layers import skip_unless_usable
from tests.terminal import Tmux
from tests.tui.conftest import settled_parts

pytestmark = pytest.mark.model

PRODUCT = str(987654321 * 123456789)


@pytest.fixture
def tui_env(
    test_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """A greedy config, the test model, and a data dir (sessions) private to the test."""
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "config.toml").write_text("[sampling]\ntemperature = 0\n", encoding="utf-8")
    env = {
        "QWENCHAT_CONFIG_DIR": str(config),
        "QWENCHAT_DATA_DIR": str(tmp_path / "data"),
        "QWENCHAT_MODEL": str(test_model_path),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_qwenchat_in_a_real_terminal_answers_and_shows_the_status_bar(
    tui_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**os.environ, **tui_env}
    command = [sys.executable, "-c", "from qwenchat.cli import main; main()"]
    with Tmux(command, env=env, width=120, height=36) as term:
        term.wait_for("ctx ", timeout=60)  # the status bar shows the context once loaded
        term.type("What is the capital of France? Answer in one word.")
        term.keys("Enter")
        # The reply's footer says it has ended; the status bar's figures follow it by a
        # refresh, so wait for both.
        screen = term.wait_for(
            lambda s: "tok/s ·" in s and "writing" not in s and "reading" not in s, timeout=120
        )
        assert "What is the capital of France?" in screen
        assert "Paris" in screen  # observed at temperature 0
        status = [line for line in screen.splitlines() if "qwen2.5-coder-0.5b-instruct Q4" in line]
        assert status and "Q4_K_M" in status[0] and "CPU" in status[0]
        assert "tok/s" in status[0] and "sandbox" in status[0]
        term.keys("C-q")
        deadline = time.monotonic() + 10
        while "ctx " in term.screen() and time.monotonic() < deadline:
            time.sleep(0.1)
    with SessionStore(Path(tui_env["QWENCHAT_DATA_DIR"]) / "sessions.db") as store:
        (session,) = store.list_sessions()
        history = store.history(session.id)
    assert session.title == "What is the capital of France? Answer in one word."
    assert [m.role for m in history] == ["user", "assistant"]
    assert "Paris" in history[-1].content


def test_pilot_tir_on_the_real_model_runs_the_code_and_shows_the_answer(
    tui_env: dict[str, str], tmp_path: Path
) -> None:
    skip_unless_usable("bubblewrap")

    async def run() -> None:
        app = QwenchatApp(Launch(settings=load_settings(), tir=True))
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + 60
            while (
                app.state.chat is None or app.state.code_ok is None
            ) and time.monotonic() < deadline:
                await pilot.pause(0.1)
            assert app.state.chat is not None and app.state.chat.tir
            await pilot.click("#input")
            app.query_one("#input").insert("What is 987654321 * 123456789?")  # type: ignore[attr-defined]
            await pilot.press("enter")
            deadline = time.monotonic() + 240
            while app.stream is not None or app.state.chat.messages[-1].role != "assistant":
                assert time.monotonic() < deadline, "the reply did not end"
                await pilot.pause(0.2)
            await pilot.pause(0.3)
            # One reply, whole: the code and output blocks are in its text, not in panels.
            (bubble,) = app.query(AssistantBubble)
            assert not app.query(ToolCallPanel)
            assert f"```output\n{PRODUCT}\n```" in bubble.text  # the sandbox's output went in
            assert bubble.text == app.state.chat.messages[-1].content
            (code, output, *_) = bubble.reply.code_blocks
            assert (code.language, output.language, output.code) == ("python", "output", PRODUCT)
            # As drawn, once settled into lines: the output block shows the product.
            drawn = {part.language: text for part, text in await settled_parts(pilot, bubble.reply)}
            assert drawn["output"].split("\n") == [" output", f" {PRODUCT}"]
            footer = str(bubble.footer.render())
            assert "1 tool run in" in footer
            assert f"answer: {PRODUCT}" in footer  # observed at temperature 0

    asyncio.run(run())


def test_a_long_prompt_shows_its_reading_in_a_real_terminal_and_esc_stops_it(
    tui_env: dict[str, str], tmp_path: Path
) -> None:
    """A file of about 6,000 tokens put in with /file: the status bar counts the tokens
    read, Esc stops within a batch, and the question stays in the session."""
    long_file = tmp_path / "log.txt"
    long_file.write_text(
        "\n".join(
            f"{i:05d} the sensor on gate {i % 17} read {i * 37 % 1000} units" for i in range(300)
        )
    )
    env = {**os.environ, **tui_env, "QWENCHAT_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-c", "from qwenchat.cli import main; main()"]
    with Tmux(command, env=env, width=140, height=36) as term:
        term.wait_for("ctx ", timeout=60)
        term.type(f"/file {long_file}")
        term.keys("Enter")
        term.wait_for("sent with your next message", timeout=30)
        term.type("Which gate read the most?")
        term.keys("Enter")
        screen = term.wait_for(lambda s: "reading " in s and " tokens" in s, timeout=120)
        [status] = [line for line in screen.splitlines() if "reading " in line]
        assert "Esc stops" in status
        started = time.monotonic()
        term.keys("Escape")
        term.wait_for(lambda s: "reading " not in s and "writing" not in s, timeout=60)
        assert time.monotonic() - started < 30  # within a batch of 512 tokens, not the rest
        term.keys("C-q")
    with SessionStore(Path(tui_env["QWENCHAT_DATA_DIR"]) / "sessions.db") as store:
        (session,) = store.list_sessions()
        history = store.history(session.id)
    assert history[0].content == "Which gate read the most?"
    assert history[0].attachments[0].name == str(long_file)
