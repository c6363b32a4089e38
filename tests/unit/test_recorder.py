"""Chats saved to the session store as they happen (scripted engine, real SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenchat.agent import TextDelta
from qwenchat.chat import Chat
from qwenchat.config import Settings
from qwenchat.opening import Role, continue_session
from qwenchat.store import SessionStore, StoreInputError
from qwenchat.tools import ToolRegistry
from qwenchat.tools.builtin import builtin_tools
from tests.fakes import ScriptedEngine


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "sessions.db")


def resumed_chat(store: SessionStore, replies: list[str], **kwargs) -> tuple[Chat, ScriptedEngine]:  # type: ignore[no-untyped-def]
    history, recorder = continue_session(
        store, "demo", Role(Settings(), system="Be brief."), warn=print
    )
    engine = ScriptedEngine(replies)
    chat = Chat(
        settings=Settings(), engine=engine, system="Be brief.", history=history,
        recorder=recorder, **kwargs,
    )  # fmt: skip
    return chat, engine


def stored(store: SessionStore) -> list[tuple[str, str]]:
    session = store.get_session("demo")
    return [(m.role, m.content) for m in store.history(session.id)]


def test_every_message_is_saved_and_a_new_process_resumes_it(store: SessionStore) -> None:
    chat, _ = resumed_chat(store, ["Hello, Ada.", "Ada."])
    chat.send("My name is Ada.")
    assert stored(store) == [(m.role, m.content) for m in chat.messages]
    # A second chat (as a second `ask --session demo`) starts from the saved history.
    again, engine = resumed_chat(store, ["Your name is Ada."])
    assert [(m.role, m.content) for m in again.messages] == stored(store)
    again.send("What is my name?")
    assert "My name is Ada." in engine.prompts[0] and "Hello, Ada." in engine.prompts[0]
    assert [role for role, _ in stored(store)] == [
        "system", "user", "assistant", "user", "assistant"
    ]  # fmt: skip


def test_a_streaming_reply_is_in_the_store_before_it_ends(store: SessionStore) -> None:
    chat, _ = resumed_chat(store, ["A long answer."])
    seen_incomplete = False
    for event in chat.stream("Question?").events():
        if isinstance(event, TextDelta):
            session = store.get_session("demo")
            last = store.history(session.id)[-1]
            seen_incomplete |= last.role == "assistant" and not last.complete
    assert seen_incomplete
    last = store.history(session.id)[-1]
    assert last.complete and last.content == "A long answer."


def test_tool_turns_and_dropped_repeats_match_the_chat(store: SessionStore) -> None:
    call = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "6*7"}}\n</tool_call>'
    # The model repeats its call after the result; the loop drops the repeat, then answers.
    chat, _ = resumed_chat(store, [call, call, "It is 42."], tools=ToolRegistry(builtin_tools()))
    reply = chat.send("What is 6 times 7?")
    assert reply.text == "It is 42."
    assert stored(store) == [(m.role, m.content) for m in chat.messages]
    session = store.get_session("demo")
    calls = [m for m in store.history(session.id) if m.tool_calls]
    assert len(calls) == 1 and calls[0].tool_calls[0].name == "calculator"


def test_a_cancelled_reply_keeps_its_partial_text(store: SessionStore) -> None:
    chat, _ = resumed_chat(store, ["one two three four"])
    stream = chat.stream("Count.")
    for event in stream.events():
        if isinstance(event, TextDelta) and event.text == "w":
            stream.cancel()
    assert stream.reply is not None and stream.reply.finish_reason == "cancelled"
    assert stored(store)[-1] == ("assistant", stream.reply.text)


def test_retry_keeps_the_old_answer_as_a_branch(store: SessionStore) -> None:
    chat, _ = resumed_chat(store, ["First try.", "Second try."])
    chat.send("Tell me a joke.")
    reply = chat.retry()
    assert "".join(reply) == "Second try."
    assert stored(store)[-2:] == [("user", "Tell me a joke."), ("assistant", "Second try.")]
    session = store.get_session("demo")
    last = store.history(session.id)[-1]
    assert [m.content for m in store.branches(last.id)] == ["First try.", "Second try."]


def test_edit_answers_the_new_text_and_keeps_the_old_turns(store: SessionStore) -> None:
    chat, engine = resumed_chat(store, ["A.", "B.", "C."])
    chat.send("one")
    chat.send("two")
    index = next(i for i, m in enumerate(chat.messages) if m.content == "one")
    "".join(chat.edit(index, "uno"))
    assert [c for _, c in stored(store)] == ["Be brief.", "uno", "C."]
    assert "two" not in engine.prompts[-1] and "uno" in engine.prompts[-1]
    session = store.get_session("demo")
    edited = store.history(session.id)[1]
    assert [m.content for m in store.branches(edited.id)] == ["one", "uno"]


def test_nothing_to_retry_or_edit_is_a_clear_error(store: SessionStore) -> None:
    from qwenchat.errors import InputError

    chat, _ = resumed_chat(store, [])
    with pytest.raises(InputError, match="no reply to retry"):
        chat.retry()
    with pytest.raises(InputError, match="not a user message"):
        chat.edit(0, "x")  # the system prompt


def test_delete_removes_a_call_with_its_results_in_chat_and_store(store: SessionStore) -> None:
    call = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "6*7"}}\n</tool_call>'
    chat, _ = resumed_chat(store, [call, "It is 42.", "Bye."], tools=ToolRegistry(builtin_tools()))
    chat.send("What is 6 times 7?")
    roles = [m.role for m in chat.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    chat.delete(2)  # the call: its result goes too
    assert [m.role for m in chat.messages] == ["system", "user", "assistant"]
    assert stored(store) == [(m.role, m.content) for m in chat.messages]
    chat.send("Thanks.")  # the conversation goes on from the shortened history
    assert stored(store) == [(m.role, m.content) for m in chat.messages]
    with pytest.raises(Exception, match="no message 9"):
        chat.delete(9)


def test_a_reply_that_fails_mid_stream_stays_in_place_and_the_chat_goes_on(
    store: SessionStore,
) -> None:
    chat, _ = resumed_chat(store, ["Half of it", "Whole."])
    stream = chat.stream("Go")
    events = stream.events()
    for _ in range(4):  # four characters of the reply streamed and checkpointed
        next(events)
    with pytest.raises(RuntimeError, match="decoder died"):
        events.throw(RuntimeError("decoder died"))
    assert [m.content for m in chat.messages[-2:]] == ["Go", "Half"]
    chat.send("Again")
    session = store.get_session("demo")
    history = store.history(session.id)
    assert [(m.role, m.content, m.complete) for m in history] == [
        ("system", "Be brief.", True),
        ("user", "Go", True),
        ("assistant", "Half", False),
        ("user", "Again", True),
        ("assistant", "Whole.", True),
    ]


def test_a_session_opens_by_its_id_and_an_unknown_id_is_one_line(store: SessionStore) -> None:
    chat, _ = resumed_chat(store, ["Hello."])
    chat.send("Hi")
    session_id = store.get_session("demo").id
    role = Role(Settings())
    history, _ = continue_session(store, str(session_id), role, warn=print)
    assert [m.content for m in history or []][-2:] == ["Hi", "Hello."]
    assert [s.id for s in store.list_sessions()] == [session_id]  # opened, not created
    with pytest.raises(StoreInputError, match=r"^no session '99'; `qwenchat sessions list`"):
        continue_session(store, "99", role, warn=print)


def test_a_new_session_is_made_with_its_first_message_and_not_before(
    store: SessionStore,
) -> None:
    chat, _ = resumed_chat(store, [])
    assert store.list_sessions() == []  # opening it made nothing
    with pytest.raises(Exception, match="no reply to retry"):
        chat.retry()
    assert store.list_sessions() == []  # a turn that cannot start leaves nothing


def test_the_question_is_stored_before_the_prompt_is_read(store: SessionStore) -> None:
    """A process killed while the model still reads a long prompt (or a server stalls
    before its first byte) must not lose the user's message."""
    at_prompt: list[list[tuple[str, str]]] = []

    class Watched(ScriptedEngine):
        def generate(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            at_prompt.append(stored(store))  # what a SIGKILL now would leave
            return super().generate(*args, **kwargs)

    history, recorder = continue_session(store, "demo", Role(Settings()), warn=print)
    engine = Watched(["Answer."])
    chat = Chat(settings=Settings(), engine=engine, history=history, recorder=recorder)
    chat.send("A question read for a long time?")
    assert ("user", "A question read for a long time?") in at_prompt[0]


def test_two_chats_on_one_session_at_once_branch_instead_of_chaining(
    store: SessionStore,
) -> None:
    """As two `ask --session demo` at once: each reply stays under its own question."""
    first, _ = resumed_chat(store, ["Hello."])
    first.send("Hi.")
    a, _ = resumed_chat(store, ["A's answer."])
    b, _ = resumed_chat(store, ["B's answer."])
    a_stream, b_stream = a.stream("A's question?"), b.stream("B's question?")
    a_events, b_events = a_stream.events(), b_stream.events()
    next(a_events)  # A has written its question and begun its reply
    for _ in b_events:  # B runs to the end meanwhile
        pass
    for _ in a_events:
        pass
    exported = json.loads(store.export_session("demo", "json"))["messages"]
    by_id = {m["id"]: m for m in exported}
    reply = {m["content"]: m for m in exported if m["role"] == "assistant"}
    a_question = by_id[reply["A's answer."]["parent_id"]]
    b_question = by_id[reply["B's answer."]["parent_id"]]
    assert (a_question["content"], b_question["content"]) == ("A's question?", "B's question?")
    # Both questions follow the same, first exchange: siblings, not a chain.
    assert a_question["parent_id"] == b_question["parent_id"] == reply["Hello."]["id"]
