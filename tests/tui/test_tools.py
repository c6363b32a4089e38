"""Tool calls in the TUI: panels with results, approval of tools not marked safe, and
tool-integrated reasoning (the model's Python run in the sandbox)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qwenchat.chatml import ToolMessage
from qwenchat.config import Settings, TirSettings
from qwenchat.store import SessionStore
from qwenchat.tui.app import QwenchatApp
from qwenchat.tui.screens.approval import ApprovalScreen
from tests.fakes import ScriptedEngine
from tests.sandbox_layers import skip_unless_usable
from tests.tui.conftest import (
    SHOUT_TOOL,
    SIZE,
    call,
    command,
    make_app,
    panels,
    ready,
    replies,
    send,
    settled_parts,
    tracked,
    wait_for,
    wait_reply_end,
)

pytestmark = pytest.mark.asyncio


@pytest.fixture
def shout_tool() -> None:
    """A user tool not marked safe, in the (private) config dir's tools dir."""
    tools = Path(os.environ["QWENCHAT_CONFIG_DIR"]) / "tools"
    tools.mkdir(parents=True)
    (tools / "shout.py").write_text(SHOUT_TOOL, encoding="utf-8")


def tool_results(app: QwenchatApp) -> list[ToolMessage]:
    return [m for m in app.state.chat.messages if isinstance(m, ToolMessage)]


async def test_a_calculator_call_shows_a_panel_then_the_answer(store: SessionStore) -> None:
    engine = ScriptedEngine([call("calculator", expression="6 * 7"), "It is 42."])
    app = make_app(store, engine=engine, tools=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.state.chat.tools is not None and "calculator" in app.state.chat.tools
        assert "tools" in str(app.status.render())
        await send(pilot, "What is 6 times 7?")

        [panel] = panels(app)
        assert panel.tool_name == "calculator" and not panel.pending
        title = str(panel.title)
        assert title.startswith("✓ calculator") and "6 * 7" in title and "· ok" in title
        assert not panel.has_class("-error")
        [result] = panel.query(".result")
        assert str(result.render()) == "42"
        assert [r.text for r in replies(app)] == ["It is 42."]  # the empty call turn is gone
        # The panel sits between the question and the answer.
        kinds = [type(w).__name__ for w in app.conversation.children]
        assert kinds == ["UserBubble", "ToolCallPanel", "AssistantBubble"]
        assert "# Tools" in engine.prompts[0] and '"name": "calculator"' in engine.prompts[0]
        assert [m.content for m in tool_results(app)] == ["42"]
        assert "2 rounds" in str(replies(app)[-1].footer.render())


async def test_ctrl_t_switches_the_tools_on_and_off(store: SessionStore) -> None:
    engine = ScriptedEngine([call("calculator", expression="2 ** 10"), "1024.", "Plain."])
    app = make_app(store, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.state.chat.tools is None
        await pilot.press("ctrl+t")
        assert app.state.tools_on and app.state.chat.tools is not None
        assert set(app.state.chat.tools.names()) >= {"calculator", "python"}  # bubblewrap or not
        assert app.status.info.tools and "tools" in str(app.status.render())
        await send(pilot, "2 to the 10th?")
        [panel] = panels(app)
        assert str(panel.query_one(".result").render()) == "1024"

        await command(pilot, "/tools")
        assert not app.state.tools_on and app.state.chat.tools is None
        assert not app.status.info.tools
        await send(pilot, "Hello")
        assert "# Tools" not in engine.prompts[-1]
        assert replies(app)[-1].text == "Plain."
        assert "tools on" in app.tracked.messages() and "tools off" in app.tracked.messages()


async def test_a_failing_call_shows_an_error_panel(store: SessionStore) -> None:
    engine = ScriptedEngine([call("calculator", expression="1 / 0"), "Cannot divide by zero."])
    app = make_app(store, engine=engine, tools=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "1/0?")
        [panel] = panels(app)
        assert panel.has_class("-error")
        assert str(panel.title).startswith("✗ calculator") and "error" in str(panel.title)
        assert "division by zero" in str(panel.query_one(".result").render())
        assert replies(app)[-1].text == "Cannot divide by zero."


async def answer_approval(pilot, key: str) -> ApprovalScreen:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the approval dialog")
    screen = app.screen
    await pilot.press(key)
    return screen


@pytest.mark.usefixtures("shout_tool")
async def test_approve_once_asks_again_next_time(store: SessionStore) -> None:
    engine = ScriptedEngine([call("shout", text="hi"), "Done.", call("shout", text="yo"), "Again."])
    app = make_app(store, engine=engine, tools=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.state.registry is not None and "shout" in app.state.registry
        ended = app.tracked.replies_ended
        await send(pilot, "Shout hi", wait=False)
        screen = await answer_approval(pilot, "y")
        assert screen.tool == "shout" and screen.arguments == {"text": "hi"}
        assert screen.sandbox == app.sandbox_line
        await wait_reply_end(pilot, ended)
        [panel] = panels(app)
        assert str(panel.query_one(".result").render()) == "HI!"
        assert replies(app)[-1].text == "Done."

        ended = app.tracked.replies_ended
        await send(pilot, "Shout yo", wait=False)
        await answer_approval(pilot, "y")  # asked again
        await wait_reply_end(pilot, ended)
        assert [m.content for m in tool_results(app)] == ["HI!", "YO!"]


@pytest.mark.usefixtures("shout_tool")
async def test_approve_always_does_not_ask_again(store: SessionStore) -> None:
    engine = ScriptedEngine([call("shout", text="a"), "One.", call("shout", text="b"), "Two."])
    app = make_app(store, engine=engine, tools=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        ended = app.tracked.replies_ended
        await send(pilot, "Shout a", wait=False)
        await answer_approval(pilot, "a")
        await wait_reply_end(pilot, ended)
        assert "shout" in app.state.chat.approval.allowed

        pushed: list[object] = []
        push_screen = app.push_screen
        app.push_screen = lambda screen, *args, **kwargs: (  # type: ignore[method-assign]
            pushed.append(screen),
            push_screen(screen, *args, **kwargs),
        )[1]
        await send(pilot, "Shout b")  # would time out if it asked
        assert not any(isinstance(s, ApprovalScreen) for s in pushed)
        assert [m.content for m in tool_results(app)] == ["A!", "B!"]
        assert replies(app)[-1].text == "Two."


@pytest.mark.usefixtures("shout_tool")
async def test_deny_tells_the_model(store: SessionStore) -> None:
    engine = ScriptedEngine([call("shout", text="no"), "Fine, I will not."])
    app = make_app(store, engine=engine, tools=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        ended = app.tracked.replies_ended
        await send(pilot, "Shout no", wait=False)
        await answer_approval(pilot, "n")
        await wait_reply_end(pilot, ended)
        [result] = tool_results(app)
        assert result.name == "shout" and "did not approve" in result.content
        assert "did not approve" in engine.prompts[-1]
        [panel] = panels(app)
        assert panel.has_class("-error") and "denied" in str(panel.title)
        assert replies(app)[-1].text == "Fine, I will not."


@pytest.mark.usefixtures("shout_tool")
async def test_the_approval_buttons_work_too(store: SessionStore) -> None:
    engine = ScriptedEngine([call("shout", text="click"), "Clicked."])
    app = make_app(store, engine=engine, tools=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        ended = app.tracked.replies_ended
        await send(pilot, "Shout", wait=False)
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the dialog")
        await pilot.click("#once")
        await wait_reply_end(pilot, ended)
        assert [m.content for m in tool_results(app)] == ["CLICK!"]


TIR_REPLY = "Let me compute.\n```python\nprint(6 * 7)\n```\n```output\n"
TIR_ANSWER = "So the answer is \\boxed{42}."


async def test_tir_runs_the_models_python(store: SessionStore) -> None:
    skip_unless_usable("bubblewrap")
    engine = ScriptedEngine([TIR_REPLY, TIR_ANSWER])
    app = make_app(store, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.state.code_ok
        await pilot.press("ctrl+g")
        assert app.state.tir_on and app.state.chat.tir
        assert "TIR" in str(app.status.render())
        await send(pilot, "What is 6 times 7?")

        # The code and its output stay blocks of one reply; the footer counts the run.
        assert panels(app) == []
        [bubble] = replies(app)
        assert bubble.text == TIR_REPLY + "42\n```\n" + TIR_ANSWER
        outputs = [b for b in bubble.reply.code_blocks if b.language == "output"]
        assert [b.code for b in outputs] == ["42"]
        # Drawn, settled: the output block shows its output (it came in one delta).
        drawn = {part.language: text for part, text in await settled_parts(pilot, bubble.reply)}
        assert drawn["output"].split("\n") == [" output", " 42"]
        figures = str(bubble.footer.render())
        assert "1 tool run in" in figures and "answer: 42" in figures
        assert app.state.chat.messages[-1].content.endswith(TIR_ANSWER)
        assert "\\boxed{}" in app.state.chat.messages[0].content  # TIR's own system prompt

        await command(pilot, "/tir")
        assert not app.state.tir_on and not app.state.chat.tir


async def test_tir_from_the_launch(store: SessionStore) -> None:
    skip_unless_usable("bubblewrap")
    engine = ScriptedEngine([TIR_REPLY, TIR_ANSWER])
    app = make_app(store, engine=engine, tir=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.state.tir_on and app.state.chat.tir
        await send(pilot, "What is 6 times 7?")
        assert "```output\n42\n```" in replies(app)[-1].text


async def test_a_voted_tir_reply_shows_the_agreement_and_its_samples(store: SessionStore) -> None:
    skip_unless_usable("bubblewrap")
    from qwenchat.tui.screens.samples import SamplesScreen

    engine = ScriptedEngine([TIR_REPLY, TIR_ANSWER, "It is \\boxed{41}.", TIR_REPLY, TIR_ANSWER])
    settings = Settings(tir=TirSettings(samples=3))
    app = make_app(store, engine=engine, settings=settings, tir=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "/samples")  # nothing voted yet: a note, no screen
        assert not isinstance(app.screen, SamplesScreen)
        assert any("not voted" in note for _, note in tracked(app).notes)
        await send(pilot, "What is 6 times 7?")
        [bubble] = replies(app)
        assert bubble.text == TIR_REPLY + "42\n```\n" + TIR_ANSWER  # the first of the majority
        figures = str(bubble.footer.render())
        assert "answer: 42" in figures and "2/3 samples agree" in figures
        notes = [note for _, note in tracked(app).notes]
        assert "sample 2/3: 41" in notes and "2/3 samples agree" in notes

        await command(pilot, "/samples")
        assert isinstance(app.screen, SamplesScreen)
        titles = [str(label.render()) for label in app.screen.query(".sample-title")]
        assert titles == [
            "Sample 1 · answer 42 · the reply",
            "Sample 2 · answer 41",
            "Sample 3 · answer 42",
        ]
        await pilot.press("escape")
        assert not isinstance(app.screen, SamplesScreen)


async def test_an_mcp_servers_tools_start_in_the_background_and_are_called(
    store: SessionStore,
) -> None:
    import json
    import sys

    server = Path(__file__).resolve().parents[1] / "mcp_server.py"
    config = Path(os.environ["QWENCHAT_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    entry = {"command": sys.executable, "args": [str(server)], "safe": ["add"], "timeout": 10}
    (config / "mcp.json").write_text(json.dumps({"mcpServers": {"test": entry}}))
    engine = ScriptedEngine([call("add", a=40, b=2), "It is 42."])
    app = make_app(store, engine=engine, tools=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(
            pilot, lambda: app.state.chat.tools and "add" in app.state.chat.tools, "MCP tools"
        )
        assert any("MCP: " in m for m in app.tracked.messages())
        await send(pilot, "What is 40 plus 2?")
        [panel] = panels(app)
        assert str(panel.query_one(".result").render()) == "42"
        assert replies(app)[-1].text == "It is 42."
