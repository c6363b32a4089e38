"""ChatState, the TUI's conversation plumbing, without Textual (scripted engine, real store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenchat.config import Settings
from qwenchat.opening import Role, choose_role
from qwenchat.prompts import get_prompt
from qwenchat.store import SessionStore
from qwenchat.tir import TIR_PROMPT
from qwenchat.tools import ToolRegistry
from qwenchat.tui.state import TITLE_CHARS, ChatState
from tests.fakes import ScriptedEngine


@pytest.fixture
def state(tmp_path: Path) -> ChatState:
    return ChatState(Settings(), SessionStore(tmp_path / "s.db"), lambda tool, args: "deny")


def test_a_conversation_waits_for_the_model_and_is_saved_from_its_first_message(
    state: ChatState,
) -> None:
    state.open_new(Role(state.settings, system="Be brief."))
    assert state.chat is None and state.messages == []  # the Chat will hold the system prompt
    state.set_engine(ScriptedEngine(["Hi."]))
    assert state.chat is not None and state.session is None
    assert [m.content for m in state.messages] == ["Be brief."]
    first = "  A question\nthat is long " + "x" * 100
    state.ensure_session(first)
    state.chat.send(first)
    assert state.session is not None
    assert state.session.title == " ".join(first.split())[:TITLE_CHARS]
    assert state.store is not None
    stored = state.store.history(state.session.id)
    assert [m.role for m in stored] == ["system", "user", "assistant"]


def test_a_stored_session_reopens_with_its_persona_and_history(state: ChatState) -> None:
    state.set_engine(ScriptedEngine(["Aye."]))
    state.open_new(choose_role(state.settings, persona="captain"))
    greeting = state.messages[1].content
    state.ensure_session("Ahoy")
    assert state.chat is not None
    state.chat.send("Ahoy")
    saved = state.session
    state.open_new(Role(state.settings))
    assert state.role.persona is None and state.session is None
    assert saved is not None
    state.open_session(saved, warn=print)
    assert state.role.persona == "captain"
    assert [m.content for m in state.messages][1:] == [greeting, "Ahoy", "Aye."]


def test_tir_on_a_fresh_conversation_brings_its_prompt_and_tools_follow_the_probe(
    state: ChatState,
) -> None:
    state.set_engine(ScriptedEngine([]))
    state.open_new()
    state.set_tools(True)
    assert state.chat is not None and state.chat.tools is None  # not probed yet
    state.probed(code_ok=False, registry=ToolRegistry([]))
    assert state.chat.tools is None  # no registry tools, no sandbox: no python tool
    state.set_tir(True)
    assert state.chat.tir
    assert state.messages[0].content == get_prompt(TIR_PROMPT).text


def test_sessions_are_found_by_title_or_text(state: ChatState) -> None:
    assert state.store is not None
    one = state.store.create_session(title="Rust lifetimes")
    two = state.store.create_session(title="Dinner")
    state.store.add_message(two.id, {"role": "user", "content": "a recipe for risotto"})
    assert {s.id for s in state.sessions()} == {one.id, two.id}
    assert [s.id for s in state.sessions("rust")] == [one.id]
    assert [s.id for s in state.sessions("risotto")] == [two.id]
