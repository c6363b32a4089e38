"""Failures keep the app running: an engine that raises, a model that does not load, a
broken persona file, a bad theme in the config."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qwenchat.chatml import Segment
from qwenchat.config import Sampling, Settings
from qwenchat.engine.base import EngineInfo
from qwenchat.engine.driver import Decode, Piece
from qwenchat.errors import GenerationError, ModelError
from qwenchat.store import SessionStore
from qwenchat.tui.screens.help import HelpScreen
from qwenchat.tui.screens.picker import PickerScreen
from qwenchat.tui.widgets.prompt_input import PromptInput
from tests.fakes import ScriptedEngine
from tests.tui.conftest import (
    SIZE,
    command,
    make_app,
    notes,
    ready,
    replies,
    send,
    tracked,
    users,
    wait_for,
)

pytestmark = pytest.mark.asyncio


class FailingEngine(ScriptedEngine):
    """Raises ``error`` on its first generate call (``after``: on its first token after
    writing that many characters), then replies as scripted."""

    def __init__(self, error: Exception, replies: list[str], after: int | None = None) -> None:
        super().__init__(replies)
        self.error: Exception | None = error
        self.after = after

    def decode(self, prompt: list[Segment], sampling: Sampling, **kwargs: Any) -> Decode:
        error, self.error = self.error, None
        if error is None:
            return super().decode(prompt, sampling, **kwargs)
        if self.after is None:
            raise error
        return _Failing(self.replies.pop(0)[: self.after], error)


class _Failing(Decode):
    def __init__(self, text: str, error: Exception) -> None:
        super().__init__(prompt_tokens=0)
        self.text, self.error = text, error

    def pieces(self) -> Iterator[Piece]:
        yield from (Piece(char) for char in self.text)
        raise self.error


def error_notes(app) -> list[str]:
    return [str(n.render()) for n in notes(app) if n.has_class("-error")]


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (ModelError("the model file is damaged"), "the model file is damaged"),
        (RuntimeError("boom"), "RuntimeError: boom"),
    ],
)
async def test_an_engine_error_is_shown_and_the_next_message_works(
    store: SessionStore, error: Exception, shown: str
) -> None:
    app = make_app(store, engine=FailingEngine(error, ["Working again."]))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "First try")
        assert error_notes(app) == [f"✗ {shown}"]
        assert shown in app.tracked.messages("error")
        assert replies(app) == []  # the empty bubble is gone
        assert app.stream is None and app.status.info.state == ""
        assert app.is_running

        await send(pilot, "Second try")
        assert users(app) == ["First try", "Second try"]
        assert [r.text for r in replies(app)] == ["Working again."]
        history = store.history(app.state.session.id)
        assert (history[-1].role, history[-1].content) == ("assistant", "Working again.")


async def test_an_error_mid_reply_keeps_the_text_so_far(store: SessionStore) -> None:
    engine = FailingEngine(
        GenerationError("llama.cpp failed"), ["Half of it and more", "Whole."], after=10
    )
    app = make_app(store, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Go")
        assert [r.text for r in replies(app)] == ["Half of it"]
        assert error_notes(app) == ["✗ llama.cpp failed"]
        await send(pilot, "Again")
        assert [r.text for r in replies(app)] == ["Half of it", "Whole."]
        history = store.history(app.state.session.id)
        # The cut-off reply is kept, in its place, marked incomplete.
        assert [(m.role, m.content, m.complete) for m in history] == [
            ("user", "Go", True),
            ("assistant", "Half of it", False),
            ("user", "Again", True),
            ("assistant", "Whole.", True),
        ]


async def test_a_model_that_does_not_load_leaves_the_app_usable(store: SessionStore) -> None:
    app = make_app(store, model="/nonexistent.gguf")  # no engine: the app loads the model
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: error_notes(app), "the error")
        [note] = error_notes(app)
        assert "/nonexistent.gguf" in note and "/model picks another" in note
        assert app.tracked.messages("error")
        assert app.state.engine is None and app.state.chat is None
        assert app.status.info.state == ""

        box = app.query_one(PromptInput)
        await pilot.press(*"hello")
        assert box.text == "hello"
        await pilot.press("enter")
        await pilot.pause()
        assert any("no model is loaded" in m for m in app.tracked.messages("warning"))
        assert box.text == "hello" and users(app) == []
        assert store.list_sessions() == []

        await command(pilot, "/help")
        assert isinstance(app.screen, HelpScreen)


BROKEN_PERSONA = "---\nname: [unclosed\n---\nYou are broken.\n"


def write_broken_persona() -> Path:
    personas = Path(os.environ["QWENCHAT_CONFIG_DIR"]) / "personas"
    personas.mkdir(parents=True)
    path = personas / "broken.md"
    path.write_text(BROKEN_PERSONA, encoding="utf-8")
    return path


async def test_a_broken_persona_file_is_reported_and_the_others_offered(
    store: SessionStore,
) -> None:
    path = write_broken_persona()
    app = make_app(store, ["Still fine."])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "/persona")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen), "the picker")
        assert any(str(path) in m for m in app.tracked.messages("warning"))
        await pilot.press("escape")
        await send(pilot, "Hello")
        assert replies(app)[-1].text == "Still fine."


async def test_a_broken_persona_at_launch_is_reported(store: SessionStore) -> None:
    path = write_broken_persona()
    app = make_app(store, ["Still fine."], persona="broken")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: error_notes(app), "the error")
        assert str(path) in error_notes(app)[0]
        assert app.state.role.persona is None
        await send(pilot, "Hello")
        assert replies(app)[-1].text == "Still fine."


async def test_an_unknown_persona_at_launch_is_reported(store: SessionStore) -> None:
    app = make_app(store, ["unused"], persona="nobody")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: error_notes(app), "the error")
        assert "no persona named 'nobody'" in error_notes(app)[0]


async def test_an_unknown_session_id_at_launch_is_reported(store: SessionStore) -> None:
    app = make_app(store, ["Fine."], session="42")  # digits: an id, and there is no session 42
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: error_notes(app), "the error")
        assert "no session '42'; `qwenchat sessions list` shows them" in error_notes(app)[0]
        await send(pilot, "Hello")
        assert replies(app)[-1].text == "Fine."
        assert [s.title for s in store.list_sessions()] == ["Hello"]


async def test_an_unknown_theme_in_the_config_warns(store: SessionStore) -> None:
    settings = Settings.model_validate({"ui": {"theme": "no-such-theme"}})
    app = make_app(store, ["unused"], settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert any("no theme named 'no-such-theme'" in m for m in app.tracked.messages("warning"))
        assert app.theme == "textual-dark"


async def test_a_crash_of_the_last_run_is_a_warning_the_tui_shows(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What crashlog.arm found at start-up; on stderr too, but the TUI's screen hides it.
    notice = "the last qwenchat run crashed in native code (Segmentation fault)"
    monkeypatch.setattr("qwenchat.tui.app.previous_crash", lambda: notice)
    app = make_app(store, ["Hi."])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert notice in tracked(app).messages("warning")


class GuardedEngine(ScriptedEngine):
    """Describes itself as LlamaEngine.info does after the AMX guard."""

    def info(self) -> EngineInfo:
        return super().info().model_copy(update={"runs_on": "CPU (AMX off)", "quant": "Q4_K_M"})


async def test_a_model_loaded_by_the_amx_guard_says_so_in_the_status_bar(
    store: SessionStore,
) -> None:
    app = make_app(store, engine=GuardedEngine(["Hi."]))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: app.status.info.offload, "the model's status")
        assert app.status.info.offload == "CPU (AMX off)"
        assert "CPU (AMX off)" in str(app.status.render())
        assert app.status.info.quant == "Q4_K_M"
