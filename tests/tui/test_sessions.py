"""The sessions sidebar: listing, opening, new, rename, delete and search."""

from __future__ import annotations

import pytest
from textual.widgets import Input, OptionList, TextArea

from qwenchat.chatml import AssistantMessage, UserMessage
from qwenchat.store import Session, SessionStore
from qwenchat.tui.screens.picker import PickerScreen
from qwenchat.tui.screens.text_edit import TextEditScreen
from qwenchat.tui.widgets.prompt_input import PromptInput
from qwenchat.tui.widgets.sidebar import SessionList, SessionSidebar
from tests.tui.conftest import SIZE, command, make_app, ready, replies, send, users, wait_for

pytestmark = pytest.mark.asyncio


def add_session(store: SessionStore, title: str, question: str, answer: str) -> Session:
    session = store.create_session(title=title)
    store.add_message(session.id, UserMessage(content=question))
    store.add_message(session.id, AssistantMessage(content=answer))
    return store.get_session(session.id)


@pytest.fixture
def two_sessions(store: SessionStore) -> tuple[Session, Session]:
    alpha = add_session(store, "Alpha trip", "Where is Alpha Centauri?", "About 4.37 light years.")
    bravo = add_session(store, "Bravo recipe", "How do I bake bread?", "Flour, water, yeast.")
    return alpha, bravo


def listed(app) -> list[int]:
    options = app.query_one(SessionList)
    return [int(options.get_option_at_index(i).id) for i in range(options.option_count)]


async def highlight(pilot, session_id: int) -> SessionList:
    options = pilot.app.query_one(SessionList)
    options.focus()
    options.highlighted = listed(pilot.app).index(session_id)
    await pilot.pause()
    return options


async def test_the_sidebar_lists_the_sessions_newest_first(
    store: SessionStore, two_sessions: tuple[Session, Session]
) -> None:
    alpha, bravo = two_sessions
    app = make_app(store, ["unused"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        sidebar = app.query_one(SessionSidebar)
        assert not sidebar.display
        await pilot.press("ctrl+b")
        assert sidebar.display
        assert app.query_one(SessionList).has_focus
        assert listed(app) == [bravo.id, alpha.id]
        prompt = str(app.query_one(SessionList).get_option_at_index(0).prompt)
        assert "Bravo recipe" in prompt and f"{bravo.updated:%Y-%m-%d %H:%M}" in prompt

        await pilot.press("ctrl+b")
        assert not sidebar.display
        assert app.query_one(PromptInput).has_focus
        await command(pilot, "/sidebar")
        assert sidebar.display


async def test_picking_a_session_opens_it(
    store: SessionStore, two_sessions: tuple[Session, Session]
) -> None:
    alpha, _ = two_sessions
    app = make_app(store, ["It is the closest star system."])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+b")
        await highlight(pilot, alpha.id)
        await pilot.press("enter")
        await wait_for(pilot, lambda: users(app) == ["Where is Alpha Centauri?"], "the history")
        assert [r.text for r in replies(app)] == ["About 4.37 light years."]
        assert app.state.session is not None and app.state.session.id == alpha.id
        assert app.query_one(PromptInput).has_focus

        await send(pilot, "Tell me more")
        assert [m.content for m in store.history(alpha.id)][-2:] == [
            "Tell me more",
            "It is the closest star system.",
        ]
        assert "About 4.37 light years." in app.state.engine.prompts[-1]
        assert len(store.list_sessions()) == 2


async def test_a_new_session(store: SessionStore, two_sessions: tuple[Session, Session]) -> None:
    alpha, _ = two_sessions
    app = make_app(store, ["Fresh start."])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+b")
        await highlight(pilot, alpha.id)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(users(app)) == 1, "the history")

        await pilot.press("ctrl+n")
        await pilot.pause()
        assert users(app) == [] and replies(app) == []
        assert app.state.session is None
        assert app.query_one(PromptInput).has_focus
        await send(pilot, "A new topic")
        assert app.state.session is not None and app.state.session.id not in (
            s.id for s in two_sessions
        )
        assert store.list_sessions()[0].title == "A new topic"
        assert listed(app)[0] == app.state.session.id


async def test_rename_a_session(store: SessionStore, two_sessions: tuple[Session, Session]) -> None:
    alpha, bravo = two_sessions
    app = make_app(store, ["unused"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+b")
        await highlight(pilot, alpha.id)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, TextEditScreen), "the editor")
        editor = app.screen.query_one(TextArea)
        assert editor.text == "Alpha trip"
        editor.text = "Stars  and\nplanets"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: store.get_session(alpha.id).title == "Stars and planets")
        assert store.get_session(bravo.id).title == "Bravo recipe"
        labels = [str(o.prompt) for o in app.query_one(SessionList).options]
        assert any("Stars and planets" in label for label in labels)

        # /rename renames the session in use.
        await send(pilot, "Hello there", wait=False)
        await wait_for(pilot, lambda: app.state.session is not None and app.stream is None)
        await command(pilot, "/rename")
        await wait_for(pilot, lambda: isinstance(app.screen, TextEditScreen), "the editor")
        app.screen.query_one(TextArea).text = "Greetings"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: store.get_session(app.state.session.id).title == "Greetings")


async def test_delete_a_session_after_confirming(
    store: SessionStore, two_sessions: tuple[Session, Session]
) -> None:
    alpha, bravo = two_sessions
    app = make_app(store, ["unused"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+b")
        await highlight(pilot, alpha.id)

        await pilot.press("d")  # Esc keeps it
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen), "the confirmation")
        await pilot.press("escape")
        await pilot.pause()
        assert {s.id for s in store.list_sessions()} == {alpha.id, bravo.id}

        await highlight(pilot, alpha.id)
        await pilot.press("d")  # "keep" is the default answer
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen), "the confirmation")
        assert app.screen.query_one(OptionList).highlighted == 0
        await pilot.press("enter")
        await pilot.pause()
        assert {s.id for s in store.list_sessions()} == {alpha.id, bravo.id}

        await highlight(pilot, alpha.id)
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen), "the confirmation")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: len(store.list_sessions()) == 1, "the deletion")
        assert [s.id for s in store.list_sessions()] == [bravo.id]
        assert listed(app) == [bravo.id]
        assert "session deleted" in app.tracked.messages()


async def test_deleting_the_open_session_starts_a_new_one(
    store: SessionStore, two_sessions: tuple[Session, Session]
) -> None:
    alpha, bravo = two_sessions
    app = make_app(store, ["unused"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+b")
        await highlight(pilot, bravo.id)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(users(app)) == 1, "the history")
        await command(pilot, "/delete")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen), "the confirmation")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.state.session is None, "a new conversation")
        assert users(app) == [] and replies(app) == []
        assert [s.id for s in store.list_sessions()] == [alpha.id]


async def test_search_filters_the_list(
    store: SessionStore, two_sessions: tuple[Session, Session]
) -> None:
    alpha, bravo = two_sessions
    app = make_app(store, ["unused"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+b")
        search = app.query_one("#session-search", Input)
        search.focus()
        await pilot.press(*"alpha")
        await wait_for(pilot, lambda: listed(app) == [alpha.id], "the title filter")
        search.value = "yeast"  # only in a message of Bravo's
        await wait_for(pilot, lambda: listed(app) == [bravo.id], "the message filter")
        search.value = "nothing matches this"
        await wait_for(pilot, lambda: listed(app) == [], "the empty list")
        search.value = ""
        await wait_for(pilot, lambda: listed(app) == [bravo.id, alpha.id], "the whole list")
