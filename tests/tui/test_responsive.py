"""While the model writes, the UI answers: the input, the sidebar and scrolling work,
and the view follows the reply only until the user scrolls up. The input's cursor stops
blinking until the reply ends."""

from __future__ import annotations

import pytest

from qwenchat.config import Sampling, Settings
from qwenchat.store import SessionStore
from qwenchat.tui.widgets.prompt_input import PromptInput
from qwenchat.tui.widgets.sidebar import SessionSidebar
from tests.fakes import ScriptedEngine
from tests.tui.conftest import SIZE, make_app, ready, replies, send, tracked, wait_for

pytestmark = pytest.mark.asyncio

LONG = "".join(f"Line {i} of a long answer.\n\n" for i in range(1000))  # ~80 s to write


async def test_input_sidebar_and_scrolling_respond_while_the_model_writes(
    store: SessionStore,
) -> None:
    engine = ScriptedEngine([LONG], delay=0.001, n_ctx=2 * len(LONG))
    settings = Settings(sampling=Sampling(max_tokens=len(LONG)))  # the fake's token: a character
    app = make_app(store, engine=engine, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Write a lot.", wait=False)
        conversation = app.conversation
        await wait_for(pilot, lambda: conversation.max_scroll_y > 20, "the reply to fill the view")
        assert app.stream is not None  # still writing
        # The view follows the reply to its end.
        await wait_for(pilot, lambda: conversation.scroll_y >= conversation.max_scroll_y - 1)
        # The input's cursor holds still meanwhile (a blink would repaint the box).
        box = app.query_one(PromptInput)
        assert not box.cursor_blink

        box.focus()
        await pilot.press(*"next question")
        assert box.text == "next question"
        await pilot.press("ctrl+b")
        assert app.query_one(SessionSidebar).display
        await pilot.press("ctrl+b")
        assert not app.query_one(SessionSidebar).display

        # Scrolled up, the view stays where the user put it while text keeps coming.
        conversation.scroll_to(y=0, animate=False, immediate=True)
        await pilot.pause(0.1)
        grown = conversation.max_scroll_y
        await wait_for(pilot, lambda: conversation.max_scroll_y > grown + 5, "more text")
        assert app.stream is not None and conversation.scroll_y == 0
        await pilot.press("escape")
        await wait_for(pilot, lambda: tracked(app).replies_ended == 1, "the reply to stop")
        assert LONG.startswith(replies(app)[0].text) and len(replies(app)[0].text) > 100
        assert box.text == "next question"  # what was typed meanwhile is still there
        assert box.cursor_blink
