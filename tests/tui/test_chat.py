"""Chatting in the TUI: sending, the input's keys, stopping, retrying and editing, long
replies, and stored conversations shown again."""

from __future__ import annotations

import pytest
from textual import events
from textual.widgets import TextArea

from qwenchat.chatml import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage
from qwenchat.config import Sampling, Settings
from qwenchat.store import SessionStore
from qwenchat.tui.screens.text_edit import TextEditScreen
from qwenchat.tui.widgets.prompt_input import PromptInput
from tests.fakes import ScriptedEngine
from tests.tui.conftest import (
    SIZE,
    command,
    footer_text,
    make_app,
    panels,
    ready,
    replies,
    send,
    settled_parts,
    users,
    wait_for,
    wait_reply_end,
)

pytestmark = pytest.mark.asyncio


async def test_enter_sends_and_the_reply_streams_in(store: SessionStore) -> None:
    answer = "Hello! **Bold** words and a [link](https://example.com)."
    app = make_app(store, [answer, "Second."])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        box = app.query_one(PromptInput)
        assert box.has_focus
        await pilot.press(*"Hi", "space", *"there")  # typed key by key
        assert box.text == "Hi there"
        ended = app.tracked.replies_ended
        await pilot.press("enter")
        await wait_reply_end(pilot, ended)

        assert users(app) == ["Hi there"]
        [reply] = replies(app)
        assert reply.text == answer
        assert box.text == ""
        figures = footer_text(reply)
        assert f"{len(answer)} tokens" in figures
        assert "tok/s" in figures and "first token" in figures

        [session] = store.list_sessions()
        assert session.title == "Hi there"
        assert app.state.session is not None and app.state.session.id == session.id
        stored = [(m.role, m.content) for m in store.history(session.id)]
        assert stored == [("user", "Hi there"), ("assistant", answer)]

        info = app.status.info
        assert info.state == ""
        assert info.tokens_per_s is not None and info.tokens_per_s > 0
        assert 0 < info.context_used < info.n_ctx == 4096
        status = str(app.status.render())
        assert "tok/s" in status and f"{info.context_used:,}/4,096" in status

        # The second message goes to the same session; the title stays the first message's.
        await send(pilot, "And again")
        assert users(app) == ["Hi there", "And again"]
        assert [r.text for r in replies(app)][-1] == "Second."
        [session] = store.list_sessions()
        assert session.title == "Hi there"
        assert len(store.history(session.id)) == 4


async def test_the_session_title_is_the_first_message_on_one_line(store: SessionStore) -> None:
    app = make_app(store, ["ok"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        long = "  What is\nthe   meaning of " + "very " * 20 + "life?  "
        await send(pilot, long)
        [session] = store.list_sessions()
        assert session.title == " ".join(long.split())[:60]
        assert users(app) == [long.strip()]


async def test_ctrl_j_starts_a_new_line_and_a_paste_goes_in_as_is(store: SessionStore) -> None:
    engine = ScriptedEngine(["one", "two"])
    app = make_app(store, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        box = app.query_one(PromptInput)
        await pilot.press("a", "ctrl+j", "b")
        assert box.text == "a\nb"
        assert users(app) == [] and engine.prompts == []

        ended = app.tracked.replies_ended
        await pilot.press("enter")
        await wait_reply_end(pilot, ended)
        assert users(app) == ["a\nb"]
        assert isinstance(app.state.chat.messages[-2], UserMessage)
        assert app.state.chat.messages[-2].content == "a\nb"

        pasted = "line one\n  indented line\n\nline four"
        app.post_message(events.Paste(pasted))  # as the terminal's driver does
        await pilot.pause()
        assert box.text == pasted
        assert users(app) == ["a\nb"]  # a paste does not send
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(users(app)) == 2, "the pasted message")
        assert users(app)[-1] == pasted


async def test_an_empty_message_is_not_sent(store: SessionStore) -> None:
    engine = ScriptedEngine(["never"])
    app = make_app(store, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("space", "ctrl+j", "enter")
        await pilot.pause()
        assert users(app) == [] and engine.prompts == []
        assert store.list_sessions() == []


async def test_esc_stops_a_reply_and_keeps_what_was_written(store: SessionStore) -> None:
    long = "word " * 400
    engine = ScriptedEngine([long, "Fresh answer."], delay=0.005)
    app = make_app(store, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        ended = app.tracked.replies_ended
        await send(pilot, "Talk a lot", wait=False)
        await wait_for(pilot, lambda: app.stream is not None, "the reply to start")
        assert "writing" in app.status.info.state
        await wait_for(
            pilot,
            lambda: len(replies(app)) == 1 and len(replies(app)[0].text) >= 20,
            "some text of the reply",
        )
        await pilot.press("escape")
        await wait_reply_end(pilot, ended)

        [bubble] = replies(app)
        shown = bubble.text
        assert 20 <= len(shown) < len(long)
        assert long.startswith(shown)
        assert bubble.has_class("-stopped")
        assert "stopped" in footer_text(bubble)
        assert app.stream is None and app.status.info.state == ""

        kept = app.state.chat.messages[-1]
        assert isinstance(kept, AssistantMessage) and kept.content == shown.strip()
        [session] = store.list_sessions()
        last = store.history(session.id)[-1]
        assert (last.role, last.content) == ("assistant", shown.strip())

        engine.delay = 0.0
        await send(pilot, "Something else")
        assert users(app) == ["Talk a lot", "Something else"]
        assert replies(app)[-1].text == "Fresh answer."
        assert not replies(app)[-1].has_class("-stopped")
        assert [m.content for m in store.history(session.id)][-2:] == [
            "Something else",
            "Fresh answer.",
        ]


async def test_a_message_sent_while_a_reply_runs_waits(store: SessionStore) -> None:
    engine = ScriptedEngine(["slow " * 200], delay=0.005)
    app = make_app(store, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        ended = app.tracked.replies_ended
        await send(pilot, "first", wait=False)
        await wait_for(pilot, lambda: app.stream is not None, "the reply to start")
        await send(pilot, "second", wait=False)
        assert users(app) == ["first"]
        assert app.query_one(PromptInput).text == "second"  # kept for later
        assert any("still writing" in m for m in app.tracked.messages("warning"))
        await pilot.press("escape")
        await wait_reply_end(pilot, ended)


async def test_retry_answers_again_and_keeps_the_old_answer(store: SessionStore) -> None:
    app = make_app(store, ["First answer.", "Second answer.", "Third answer."])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Question?")
        ended = app.tracked.replies_ended
        await pilot.press("ctrl+r")
        await wait_reply_end(pilot, ended)
        assert users(app) == ["Question?"]
        assert [r.text for r in replies(app)] == ["Second answer."]

        [session] = store.list_sessions()
        history = store.history(session.id)
        assert [m.content for m in history] == ["Question?", "Second answer."]
        siblings = store.branches(history[-1].id)
        assert [m.content for m in siblings] == ["First answer.", "Second answer."]

        ended = app.tracked.replies_ended
        await command(pilot, "/retry")
        await wait_reply_end(pilot, ended)
        assert [r.text for r in replies(app)] == ["Third answer."]
        assert app.query_one(PromptInput).text == ""
        history = store.history(session.id)
        assert [m.content for m in store.branches(history[-1].id)] == [
            "First answer.",
            "Second answer.",
            "Third answer.",
        ]
        assert [m.content for m in app.state.chat.messages] == ["Question?", "Third answer."]


async def test_retry_with_nothing_to_retry_warns(store: SessionStore) -> None:
    app = make_app(store, ["unused"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert any("no reply to retry" in m for m in app.tracked.messages("warning"))
        assert replies(app) == []


async def test_edit_the_last_message_and_get_a_new_answer(store: SessionStore) -> None:
    engine = ScriptedEngine(["Paris.", "Berlin.", "Rome."])
    app = make_app(store, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Capital of France?")
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, TextEditScreen), "the editor")
        editor = app.screen.query_one(TextArea)
        assert editor.text == "Capital of France?"
        editor.text = "Capital of Germany?"
        ended = app.tracked.replies_ended
        await pilot.press("ctrl+s")
        await wait_reply_end(pilot, ended)

        assert not isinstance(app.screen, TextEditScreen)
        assert users(app) == ["Capital of Germany?"]
        assert [r.text for r in replies(app)] == ["Berlin."]
        assert "Capital of Germany?" in engine.prompts[-1]
        assert "Capital of France?" not in engine.prompts[-1]
        [session] = store.list_sessions()
        history = store.history(session.id)
        assert [m.content for m in history] == ["Capital of Germany?", "Berlin."]
        old, new = store.branches(history[0].id)
        assert (old.content, new.content) == ("Capital of France?", "Capital of Germany?")

        # /edit does the same; Esc in the editor changes nothing.
        await command(pilot, "/edit")
        await wait_for(pilot, lambda: isinstance(app.screen, TextEditScreen), "the editor")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, TextEditScreen)
        assert users(app) == ["Capital of Germany?"]
        await command(pilot, "/edit")
        await wait_for(pilot, lambda: isinstance(app.screen, TextEditScreen), "the editor")
        app.screen.query_one(TextArea).text = "Capital of Italy?"
        ended = app.tracked.replies_ended
        await pilot.press("ctrl+s")
        await wait_reply_end(pilot, ended)
        assert users(app) == ["Capital of Italy?"]
        assert [r.text for r in replies(app)] == ["Rome."]


async def test_edit_with_no_message_warns(store: SessionStore) -> None:
    app = make_app(store, ["unused"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("f2")
        await pilot.pause()
        assert not isinstance(app.screen, TextEditScreen)
        assert any("no message of yours" in m for m in app.tracked.messages("warning"))


LONG_CODE = "\n".join(
    f"def f{i}(x):\n    return x * {i}  # line {2 * i}" for i in range(60)
)  # 120 lines
LONG_REPLY = (
    "Here is the plan, with *emphasis* and `inline code`:\n\n"
    "1. Read the input.\n"
    "2. Transform it:\n"
    "   - trim\n"
    "   - split\n"
    "3. Print it.\n\n"
    f"```python\n{LONG_CODE}\n```\n\n"
    "And a table of the results:\n\n"
    "| name | value |\n"
    "| ---- | ----- |\n"
    "| one  | 1     |\n"
    "| two  | 2     |\n\n"
    "That is all."
)


async def test_a_long_reply_ends_up_whole_in_its_widgets(store: SessionStore) -> None:
    settings = Settings(sampling=Sampling(max_tokens=4000))  # the default 1024 would cut it
    app = make_app(store, [LONG_REPLY], settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Show me")
        [bubble] = replies(app)
        view = bubble.reply
        assert view.text == LONG_REPLY
        [block] = view.code_blocks
        assert block.closed and block.language == "python"
        assert block.code == LONG_CODE
        assert len(block.code.split("\n")) == 120
        # Settled, the reply's parts are in order: a part per block of prose or item of a
        # top-level list (its nested list stays with its item), the code.
        parts = await settled_parts(pilot, view)
        kinds = [part.kind for part, _ in parts]
        assert kinds == ["prose"] * 4 + ["code"] + ["prose"] * 3
        assert [part.text for part, _ in parts[1:4]] == [
            "1. Read the input.\n",
            "2. Transform it:\n   - trim\n   - split\n",
            "3. Print it.\n\n",
        ]
        assert parts[4][0].text == LONG_CODE
        assert len(view.children) == 1  # one widget for all of them
        text = "\n".join(lines for _, lines in parts)
        assert "1. Read the input." in text and "• split" in text
        assert "│ two " in text and text.rstrip().endswith("That is all.")


async def test_a_reply_that_ends_inside_a_code_block_keeps_it(store: SessionStore) -> None:
    text = "Start:\n```python\nprint('unfinished')\nx = 1"
    app = make_app(store, [text])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Go")
        view = replies(app)[0].reply
        assert view.text == text
        [block] = view.code_blocks
        assert block.code == "print('unfinished')\nx = 1"


async def test_a_stored_session_with_a_tool_call_shows_its_panel(store: SessionStore) -> None:
    session = store.create_session(name="calc", title="Some arithmetic")
    for message in [
        SystemMessage(content="You are a calculator."),
        UserMessage(content="What is 6 times 7?"),
        AssistantMessage(
            content="",
            tool_calls=[ToolCall(name="calculator", arguments={"expression": "6 * 7"})],
        ),
        ToolMessage(content="42", name="calculator", tool_call_id="call_1"),
        AssistantMessage(content="It is **42**."),
    ]:
        store.add_message(session.id, message)
    # By its id, as `qwenchat chat --session 1` (the next test opens one by name).
    app = make_app(store, ["Glad to help."], session=str(session.id))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: len(replies(app)) == 1, "the history")
        assert users(app) == ["What is 6 times 7?"]
        [panel] = panels(app)
        assert panel.tool_name == "calculator"
        assert not panel.pending
        assert "calculator" in str(panel.title) and "6 * 7" in str(panel.title)
        [result] = panel.query(".result")
        assert str(result.render()) == "42"
        assert [r.text for r in replies(app)] == ["It is **42**."]
        assert app.state.session is not None and app.state.session.id == session.id

        # The conversation goes on in the same session.
        await send(pilot, "Thanks")
        assert [m.content for m in store.history(session.id)][-2:] == ["Thanks", "Glad to help."]
        assert "You are a calculator." in app.state.engine.prompts[-1]


async def test_stored_calls_get_their_own_results_in_order(store: SessionStore) -> None:
    session = store.create_session(name="two-calls")
    for message in [
        UserMessage(content="Add and divide"),
        AssistantMessage(
            content="Let me work these out.",
            tool_calls=[
                ToolCall(name="calculator", arguments={"expression": "1 + 1"}),
                ToolCall(name="calculator", arguments={"expression": "1 / 0"}),
            ],
        ),
        # As an older store kept it (no status), and as the agent keeps it now.
        ToolMessage(content="2", name="calculator", tool_call_id="call_1"),
        ToolMessage(
            content="Error: division by zero",
            name="calculator",
            tool_call_id="call_2",
            status="error",
            duration_s=0.125,
        ),
        AssistantMessage(content="2, and the other has no answer."),
    ]:
        store.add_message(session.id, message)
    app = make_app(store, ["unused"], session="two-calls")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: len(replies(app)) == 2, "the history")
        kinds = [type(w).__name__ for w in app.conversation.children]
        assert kinds == [
            "UserBubble",
            "AssistantBubble",
            "ToolCallPanel",
            "ToolCallPanel",
            "AssistantBubble",
        ]
        first, second = panels(app)
        assert "1 + 1" in str(first.title) and "1 / 0" in str(second.title)
        assert str(first.query_one(".result").render()) == "2"
        assert str(second.query_one(".result").render()) == "Error: division by zero"
        assert [p.call_id for p in (first, second)] == ["call_1", "call_2"]
        assert str(first.title).startswith("✓") and not first.has_class("-error")
        assert str(second.title).startswith("✗") and second.has_class("-error")
        assert str(second.title).endswith("· error, 0.12 s")


async def test_a_long_prompt_shows_how_far_it_is_read_and_esc_stops_the_reading(
    store: SessionStore,
) -> None:
    engine = ScriptedEngine(["Never written.", "Read and answered."], reading=(6, 0.15))
    app = make_app(store, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        ended = app.tracked.replies_ended
        await send(pilot, "A long document", wait=False)
        await wait_for(pilot, lambda: "reading" in app.status.info.state, "the reading status")
        assert "/3,072 tokens" in app.status.info.state and "Esc stops" in app.status.info.state
        await pilot.press("escape")
        await wait_reply_end(pilot, ended)
        assert app.stream is None and app.status.info.state == ""
        assert all("Never written" not in r.text for r in replies(app))
        # The question is kept, in the chat and the session, and the next one goes on.
        [session] = store.list_sessions()
        assert [m.content for m in store.history(session.id)][:1] == ["A long document"]
        engine.reading = (2, 0.0)
        await send(pilot, "Again")
        assert replies(app)[-1].text == "Read and answered."
