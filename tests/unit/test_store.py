"""The session store: schema and migrations, message trees, checkpoints, damage, search, export."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qwenchat.chatml import (
    AssistantMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from qwenchat.errors import InputError
from qwenchat.store import (
    Session,
    SessionStore,
    StoredMessage,
    StoreError,
    StoreInputError,
    default_store_path,
    schema,
)
from qwenchat.store.store import CHECKPOINT_INTERVAL

ALL_KINDS = [
    SystemMessage(content="You are terse. 你好 👋"),
    UserMessage(content="What is 2**10? 日本語のテキスト 🎉 and a literal <|im_end|>"),
    AssistantMessage(
        content="",
        tool_calls=[
            ToolCall(name="calculator", arguments={"expression": "2**10", "note": "雪 ❄"}),
            ToolCall(name="python", arguments='{"code": "print(2**10)"}'),
        ],
    ),
    ToolMessage(content="1024", name="calculator", tool_call_id="call_0"),
    ToolMessage(
        content="1024\n", name="python", tool_call_id="call_1", status="ok", duration_s=0.25
    ),
    AssistantMessage(content="2¹⁰ = **1024** ✅"),
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def store(path: Path) -> Iterator[SessionStore]:
    with SessionStore(path) as store:
        yield store


def one_line(what: object) -> str:
    text = "" if what is None else str(what)
    assert text and "\n" not in text
    return text


def add_all(store: SessionStore, session_id: int, *contents: str) -> list[StoredMessage]:
    """Alternate user and assistant messages down the head branch."""
    roles = ("user", "assistant")
    return [
        store.add_message(session_id, {"role": roles[i % 2], "content": text})
        for i, text in enumerate(contents)
    ]


def ids(messages: list[StoredMessage]) -> list[int]:
    return [m.id for m in messages]


def ids_of(sessions: list[Session]) -> list[int]:
    return [s.id for s in sessions]


def assert_index_intact(store: SessionStore) -> None:
    """FTS5 checks that its index matches the messages table (raises if not)."""
    with sqlite3.connect(store.path) as db:
        db.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")


def pragma(path: Path, name: str) -> Any:
    with sqlite3.connect(path) as db:
        return db.execute(f"PRAGMA {name}").fetchone()[0]


# Opening, migrations, damage, locks


@pytest.mark.parametrize("start", ["no file", "empty file", "no folder"])
def test_a_new_store_is_created_at_the_latest_schema(tmp_path: Path, start: str) -> None:
    path = tmp_path / "sub" / "sessions.db" if start == "no folder" else tmp_path / "s.db"
    if start == "empty file":
        path.touch()
    with SessionStore(path) as store:
        assert store.notice is None
        assert store.list_sessions() == []
    assert pragma(path, "user_version") == len(schema.MIGRATIONS) >= 1
    assert pragma(path, "journal_mode") == "wal"


def test_an_older_database_is_migrated_and_keeps_its_data(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SessionStore(path) as store:
        session = store.create_session(name="old", title="Before the upgrade")
        before = add_all(store, session.id, "hello", "hi")
    latest = len(schema.MIGRATIONS)
    step = ("ALTER TABLE sessions ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",)
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, step))
    with SessionStore(path) as store:
        assert store.get_session("old").title == "Before the upgrade"
        assert store.history(session.id) == before
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT pinned FROM sessions").fetchone()[0] == 0
    assert pragma(path, "user_version") == len(schema.MIGRATIONS) == latest + 1


def test_a_version_1_store_gains_tool_outcomes_and_keeps_its_tool_messages(path: Path) -> None:
    with sqlite3.connect(path) as db:  # a store as the first qwenchat wrote it
        for statement in schema.MIGRATIONS[0]:
            db.execute(statement)
        db.execute("PRAGMA user_version = 1")
        db.execute(
            "INSERT INTO sessions (name, created, updated) VALUES ('old', '2026-11-01', "
            "'2026-11-01')"
        )
        db.execute(
            "INSERT INTO messages (session_id, role, content, name, tool_call_id, created) "
            "VALUES (1, 'tool', '42', 'calculator', 'call_1', '2026-11-01')"
        )
        db.execute("UPDATE sessions SET head_id = 1")
    with SessionStore(path) as store:
        [old] = store.history(store.get_session("old").id)
        assert old.to_message() == ToolMessage(
            content="42", name="calculator", tool_call_id="call_1"
        )  # no status recorded: None, not a guess
        store.add_message(old.session_id, ToolMessage(content="x", status="denied"))
        assert store.history(old.session_id)[-1].to_message().status == "denied"
    assert pragma(path, "user_version") == len(schema.MIGRATIONS) == 3


def test_a_failing_migration_leaves_the_database_at_its_version(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SessionStore(path).close()
    latest = len(schema.MIGRATIONS)
    broken = ("CREATE TABLE half_done (x)", "NOT SQL AT ALL")
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    with pytest.raises(
        StoreError, match=rf"cannot upgrade .* to schema version {latest + 1}"
    ) as info:
        SessionStore(path)
    one_line(info.value)
    assert pragma(path, "user_version") == latest
    with sqlite3.connect(path) as db:
        assert (
            db.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchall() == []
        )


def test_a_database_from_a_newer_qwenchat_is_refused_and_left_alone(path: Path) -> None:
    SessionStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema version 99, newer") as info:
        SessionStore(path)
    one_line(info.value)
    assert pragma(path, "user_version") == 99
    assert list(path.parent.glob("*.corrupt-*")) == []


def test_a_file_that_is_not_a_database_is_moved_aside_with_its_wal(path: Path) -> None:
    junk, wal_junk = b"these are my notes, not a database\n" * 300, b"not a WAL either"
    path.write_bytes(junk)
    path.with_name(path.name + "-wal").write_bytes(wal_junk)
    with SessionStore(path) as store:
        [aside] = path.parent.glob("sessions.db.corrupt-2*[0-9]")
        assert str(aside) in one_line(store.notice) and "not a database" in store.notice
        assert aside.read_bytes() == junk
        assert aside.with_name(aside.name + "-wal").read_bytes() == wal_junk
        assert store.create_session(name="fresh").id == 1
    # Damaged again, within the same second or not: the first file aside is kept.
    path.write_bytes(junk + b"again")
    path.with_name(path.name + "-wal").unlink(missing_ok=True)
    with SessionStore(path) as store:
        assert store.notice is not None
        asides = sorted(path.parent.glob("sessions.db.corrupt-*[0-9]"))
        assert len(asides) == 2
        assert {p.read_bytes() for p in asides} == {junk, junk + b"again"}


def test_a_database_failing_its_integrity_check_is_moved_aside(path: Path) -> None:
    with SessionStore(path) as store:
        session = store.create_session(title="doomed")
        add_all(store, session.id, *(f"message {i} " * 30 for i in range(50)))
    damaged = bytearray(path.read_bytes())
    page = pragma(path, "page_size")
    damaged[page : page + 16] = b"\xff" * 16  # the header of page 2
    path.write_bytes(damaged)
    with SessionStore(path) as store:
        assert "integrity check" in one_line(store.notice)
        assert store.list_sessions() == []
    [aside] = path.parent.glob("sessions.db.corrupt-*[0-9]")
    assert aside.read_bytes() == bytes(damaged)


@pytest.mark.parametrize("when", ["opening", "writing"])
def test_a_locked_store_is_a_one_line_error(tmp_path: Path, when: str) -> None:
    path = tmp_path / "s.db"
    if when == "opening":
        path.touch()  # new: opening must write the schema
    else:
        SessionStore(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError) as info, SessionStore(path, timeout=0.1) as store:
            store.create_session()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "is locked" in one_line(info.value) and str(path) in str(info.value)
    assert not isinstance(info.value, InputError)


def test_the_default_path_is_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QWENCHAT_DATA_DIR", str(tmp_path))
    assert default_store_path() == tmp_path / "sessions.db"


# Sessions and messages


def test_every_message_kind_survives_a_round_trip(path: Path) -> None:
    with SessionStore(path) as store:
        session = store.create_session(name="kinds")
        stored = [store.add_message(session.id, m) for m in ALL_KINDS[:-1]]
        stored.append(
            store.add_message(session.id, ALL_KINDS[-1], prompt_tokens=321, completion_tokens=12)
        )
    with SessionStore(path) as store:
        history = store.history(session.id)
    assert history == stored
    assert [m.to_message() for m in history] == ALL_KINDS
    assert [m.parent_id for m in history] == [None, *ids(history)[:-1]]
    assert (history[-1].prompt_tokens, history[-1].completion_tokens) == (321, 12)
    assert all(m.complete for m in history)


def test_openai_style_dicts_are_validated(store: SessionStore) -> None:
    session = store.create_session()
    call = {"id": "x", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
    stored = store.add_message(
        session.id, {"role": "assistant", "content": None, "tool_calls": [call]}
    )
    assert stored.to_message() == AssistantMessage(
        tool_calls=[ToolCall(name="f", arguments={"a": 1})]
    )


def test_sessions_are_created_found_listed_renamed_and_deleted(store: SessionStore) -> None:
    work = store.create_session(
        name="work",
        title="Work",
        persona="coder",
        system_prompt="Be brief.",
        model="qwen2.5-coder-1.5b",
        sampling={"temperature": 0.2, "seed": 7},
    )
    other = store.create_session(title="Other")
    assert (
        store.get_session("work") == store.get_session(work.id) == store.get_session(str(work.id))
    )
    assert store.get_session(work.id).sampling == {"temperature": 0.2, "seed": 7}
    assert store.find_session("work") == work and store.find_session("nope") is None
    assert ids_of(store.list_sessions()) == [other.id, work.id]
    add_all(store, work.id, "bump")
    assert ids_of(store.list_sessions()) == [work.id, other.id]

    renamed = store.rename("work", "Work, renamed")
    assert renamed.title == "Work, renamed" and renamed.updated > work.updated

    message = store.history(work.id)[0]
    store.delete_session("work")
    assert ids_of(store.list_sessions()) == [other.id]
    with pytest.raises(StoreInputError, match="no message"):
        store.get_message(message.id)
    assert_index_intact(store)


def test_session_errors_are_one_line_input_errors(store: SessionStore) -> None:
    store.create_session(name="taken")
    with pytest.raises(StoreInputError) as info:
        store.get_session("nope")
    assert one_line(info.value) == "no session 'nope'; `qwenchat sessions list` shows them"
    assert info.value.exit_code == 2 and isinstance(info.value, StoreError)
    for bad in ("taken", "42", " "):
        with pytest.raises(StoreInputError) as info:
            store.create_session(name=bad)
        one_line(info.value)
    with pytest.raises(StoreInputError, match="no session 99"):
        store.history(99)


def test_the_store_can_be_used_from_another_thread(store: SessionStore) -> None:
    session = store.create_session()
    worker = threading.Thread(target=add_all, args=(store, session.id, "from a worker"))
    worker.start()
    worker.join()
    assert [m.content for m in store.history(session.id)] == ["from a worker"]


# Branches


def test_retry_keeps_the_old_reply_as_a_sibling(store: SessionStore) -> None:
    session = store.create_session()
    u1, a1, u2, a2 = add_all(store, session.id, "u1", "a1", "u2", "a2")
    assert store.retry(session.id) == u2.id
    assert ids(store.history(session.id)) == [u1.id, a1.id, u2.id]

    again = store.begin_reply(session.id).finish(AssistantMessage(content="a2, again"))
    assert again.parent_id == u2.id
    assert ids(store.history(session.id)) == [u1.id, a1.id, u2.id, again.id]
    assert ids(store.branches(again.id)) == ids(store.branches(a2.id)) == [a2.id, again.id]

    store.set_head(session.id, a2.id)
    assert ids(store.history(session.id)) == [u1.id, a1.id, u2.id, a2.id]


def test_retry_redoes_a_whole_tool_turn(store: SessionStore) -> None:
    session = store.create_session()
    stored = [store.add_message(session.id, m) for m in ALL_KINDS]
    assert store.retry(session.id) == stored[1].id  # the user message, not the tool result
    with pytest.raises(StoreInputError, match="no user message"):
        store.retry(store.create_session().id)


def test_edit_adds_a_sibling_and_keeps_the_old_branch(store: SessionStore) -> None:
    session = store.create_session()
    u1, a1, u2, a2 = add_all(store, session.id, "u1", "a1", "u2", "a2")
    edited = store.edit(u2.id, "u2, edited")
    assert (edited.role, edited.content, edited.parent_id) == ("user", "u2, edited", a1.id)
    assert ids(store.history(session.id)) == [u1.id, a1.id, edited.id]
    assert ids(store.branches(u2.id)) == [u2.id, edited.id]
    assert store.get_message(u2.id).content == "u2"

    store.set_head(session.id, a2.id)
    assert ids(store.history(session.id)) == [u1.id, a1.id, u2.id, a2.id]


def test_delete_message_reparents_its_children_and_moves_the_head(store: SessionStore) -> None:
    session = store.create_session()
    u1, a1, u2, a2 = add_all(store, session.id, "u1", "a1", "u2", "a2")
    store.delete_message(a1.id)
    assert store.get_message(u2.id).parent_id == u1.id
    assert ids(store.history(session.id)) == [u1.id, u2.id, a2.id]

    store.delete_message(a2.id)  # the head: its parent takes over
    assert store.get_session(session.id).head_id == u2.id
    store.delete_message(u1.id)  # a root: its child becomes one
    assert store.get_message(u2.id).parent_id is None
    assert ids(store.history(session.id)) == [u2.id]


def test_parents_and_heads_stay_inside_their_session(store: SessionStore) -> None:
    first, second = store.create_session(), store.create_session()
    [theirs] = add_all(store, first.id, "first's")
    [mine] = add_all(store, second.id, "second's")
    with pytest.raises(StoreInputError, match=f"message {theirs.id} is not in session"):
        store.add_message(second.id, UserMessage(content="x"), parent_id=theirs.id)
    with pytest.raises(StoreInputError, match=f"message {theirs.id} is not in session"):
        store.set_head(second.id, theirs.id)
    assert ids(store.history(second.id)) == [mine.id]

    root = store.add_message(second.id, UserMessage(content="new root"), parent_id=None)
    assert ids(store.history(second.id)) == [root.id]


# Streaming checkpoints


def test_checkpoints_write_at_most_once_per_interval(store: SessionStore, path: Path) -> None:
    session = store.create_session()
    [question] = add_all(store, session.id, "count to three")
    clock = FakeClock()
    checkpoint = store.begin_reply(session.id, clock=clock)

    with SessionStore(path) as reader:  # another connection sees only committed writes

        def saved() -> StoredMessage:
            return reader.get_message(checkpoint.message_id)

        assert (saved().content, saved().complete, saved().parent_id) == ("", False, question.id)
        assert reader.get_session(session.id).head_id == checkpoint.message_id
        for now, text, expected in [
            (0.5, "one", ""),
            (CHECKPOINT_INTERVAL, "one two", "one two"),
            (1.9, "one two thr", "one two"),
            (2.0, "one two three", "one two three"),
            (2.1, "one two three.", "one two three"),
        ]:
            clock.now = now
            checkpoint.update(text)
            assert saved().content == expected, now

        final = checkpoint.finish(
            AssistantMessage(
                content="one two three.", tool_calls=[ToolCall(name="f", arguments={})]
            ),
            prompt_tokens=20,
            completion_tokens=5,
        )
        assert saved() == final
    assert final.complete and final.tool_calls == [ToolCall(name="f", arguments={})]
    assert (final.prompt_tokens, final.completion_tokens) == (20, 5)
    assert store.search("three.")[0].message_id == final.id


CHILD = """
import sys, time
from pathlib import Path
from qwenchat.store import SessionStore

store = SessionStore(Path(sys.argv[1]))
checkpoint = store.begin_reply(store.create_session().id)
print("streaming", flush=True)
text = ""
while True:
    text += f"{time.time():.3f};"
    checkpoint.update(text)
    time.sleep(0.01)
"""


def test_a_reply_killed_mid_stream_keeps_all_but_the_last_second(path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "streaming\n"
        time.sleep(2.2)
        killed_at = time.time()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL

    assert pragma(path, "quick_check") == "ok"
    with SessionStore(path) as store:
        assert store.notice is None
        [reply] = store.history(1)
    assert reply.role == "assistant" and not reply.complete
    stamps = [float(stamp) for stamp in reply.content.split(";") if stamp]
    assert stamps == sorted(stamps) and len(stamps) > 50
    assert killed_at - stamps[-1] < CHECKPOINT_INTERVAL + 0.5


# Search


PANCAKES = "How do I make Pancakes?"
MIX = "Mix flour, eggs & milk (1:2 ratio)."
MATH = "数学问题：求解方程 x² + 2x = 0"  # noqa: RUF001 (Chinese punctuation)
CODE = 'In C++ use std::vector<int>; he said "hello" -- then: NEAR(x y) OR NOT AND * ^'


@pytest.fixture
def searchable(store: SessionStore) -> SessionStore:
    add_all(store, store.create_session(name="cooking", title="Cooking").id, PANCAKES, MIX)
    add_all(store, store.create_session(title="Code").id, MATH, CODE)
    return store


@pytest.mark.parametrize(
    ("query", "contents"),
    [
        ("pancakes", [PANCAKES]),
        ("PANCAKES make", [PANCAKES]),
        ("flour pancakes", []),
        ("求解方程", [MATH]),
        ("方程", [MATH]),  # under three characters: a scan
        ("x²", [MATH]),
        ("C++", [CODE]),
        ("std::vector<int>;", [CODE]),
        ('"hello"', [CODE]),
        ("NEAR(x", [CODE]),
        ("(1:2", [MIX]),
        ("& milk", [MIX]),
        ("(", [CODE, MIX]),
    ],
)
def test_search_matches_every_word_literally(
    searchable: SessionStore, query: str, contents: list[str]
) -> None:
    assert [hit.snippet for hit in searchable.search(query)] == contents


@pytest.mark.parametrize(
    "query", ['"', '""', "'", "*", "^", "-", "OR", "NOT AND", "a:b", "\\", "%", "_", "(", ")", "  "]
)
def test_punctuation_and_operators_never_break_a_search(
    searchable: SessionStore, query: str
) -> None:
    hits = searchable.search(query)
    assert all(w.lower() in hit.snippet.lower() for hit in hits for w in query.split())
    assert len(hits) < 4  # LIKE's wildcards, % and _, are literal too


def test_search_hits_say_where_they_are(searchable: SessionStore) -> None:
    [hit] = searchable.search("pancakes")
    assert (hit.session_name, hit.session_title, hit.role) == ("cooking", "Cooking", "user")
    assert searchable.get_message(hit.message_id).content == PANCAKES


def test_search_is_limited_newest_first_with_a_snippet_around_the_match(
    store: SessionStore,
) -> None:
    session = store.create_session()
    added = add_all(store, session.id, *(f"repeat {i}" for i in range(30)))
    assert [h.message_id for h in store.search("repeat", limit=5)] == ids(added)[::-1][:5]

    add_all(store, session.id, "lorem " * 100 + "needle" + " ipsum" * 100)
    [hit] = store.search("needle")
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert "needle" in hit.snippet and len(hit.snippet) <= 82


def test_the_index_follows_edits_and_deletes(store: SessionStore) -> None:
    session = store.create_session()
    [question] = add_all(store, session.id, "a question about zebras")
    clock = FakeClock()
    checkpoint = store.begin_reply(session.id, clock=clock)
    clock.now = CHECKPOINT_INTERVAL
    checkpoint.update("giraffes, partly")
    assert [h.message_id for h in store.search("giraffes")] == [checkpoint.message_id]
    checkpoint.finish(AssistantMessage(content="okapis after all"))
    assert store.search("giraffes") == [] and len(store.search("okapis")) == 1
    store.delete_message(question.id)
    assert store.search("zebras") == []
    assert_index_intact(store)


# Export and import


def build_tree(store: SessionStore) -> int:
    """A session with branches, tool calls, CJK, emoji and an interrupted reply."""
    session = store.create_session(
        name="trip",
        title="Trip ✈",
        persona="planner",
        system_prompt="Plan trips.",
        model="qwen2.5-1.5b",
        sampling={"temperature": 0.3},
    )
    for message in ALL_KINDS:
        store.add_message(session.id, message, prompt_tokens=3, completion_tokens=4)
    add_all(store, session.id, "Kyoto or 京都?", "Both: ```same``` city 🏯")
    store.retry(session.id)
    store.begin_reply(session.id)
    store.edit(store.history(session.id)[-2].id, "Osaka?")  # the user message
    store.begin_reply(session.id)
    return session.id


def test_markdown_export_reads_well(store: SessionStore) -> None:
    session_id = build_tree(store)
    text = store.export_session(session_id, "md")
    assert text.startswith("# Trip ✈\n\n- **Session:** 1\n- **Name:** trip\n- **Persona:** planner")
    assert '- **Sampling:** {"temperature": 0.3}\n' in text
    assert "## System prompt\n\nPlan trips.\n\n## System\n\nYou are terse. 你好 👋\n" in text
    assert '```json\n{\n  "name": "calculator",\n  "arguments": {\n' in text
    assert '"note": "雪 ❄"' in text
    assert "## Tool `python`\n\n```\n1024\n\n```\n" in text
    assert "## User\n\nOsaka?\n\n## Assistant (interrupted)\n" in text
    assert "Kyoto" not in text  # another branch


def test_markdown_fences_outlast_the_backticks_inside(store: SessionStore) -> None:
    session = store.create_session()
    store.add_message(session.id, ToolMessage(content="```\nprint(1)\n```", name="python"))
    assert "````\n```\nprint(1)\n```\n````" in store.export_session(session.id, "md")


def test_markdown_export_marks_a_tool_call_that_failed(store: SessionStore) -> None:
    session = store.create_session()
    for status in ("ok", "denied", None):
        store.add_message(session.id, ToolMessage(content="r", name="rm", status=status))
    text = store.export_session(session.id, "md")
    assert text.count("## Tool `rm`\n") == 2 and "## Tool `rm` (denied)\n" in text


def normalized(text: str) -> dict[str, Any]:
    """A JSON export with ids replaced by positions, to compare trees across stores."""
    doc = json.loads(text)
    position = {m["id"]: i for i, m in enumerate(doc["messages"])}
    for message in doc["messages"]:
        message["id"] = position[message["id"]]
        message["parent_id"] = position.get(message["parent_id"])
    doc["session"]["id"] = None
    doc["session"]["head_id"] = position[doc["session"]["head_id"]]
    return doc


def test_json_export_and_import_round_trip_the_whole_tree(store: SessionStore, path: Path) -> None:
    session_id = build_tree(store)
    exported = store.export_session("trip", "json")
    doc = json.loads(exported)
    assert (doc["format"], doc["version"]) == ("qwenchat-session", 1)
    assert len(doc["messages"]) == len(ALL_KINDS) + 5

    with SessionStore(path.with_name("other.db")) as other:
        add_all(other, other.create_session().id, "so that ids differ")
        imported = other.import_session(exported)
        assert imported.id != session_id and imported.head_id != store.get_session("trip").head_id
        assert normalized(other.export_session(imported.id, "json")) == normalized(exported)
        assert [m.to_message() for m in other.history(imported.id)] == [
            m.to_message() for m in store.history(session_id)
        ]
        assert other.export_session(imported.id, "md") == store.export_session(
            session_id, "md"
        ).replace("**Session:** 1", f"**Session:** {imported.id}")
        with pytest.raises(StoreInputError, match="a session named 'trip' already exists"):
            other.import_session(exported)


def test_export_rejects_an_unknown_format(store: SessionStore) -> None:
    with pytest.raises(StoreInputError, match="unknown export format 'pdf'"):
        store.export_session(store.create_session().id, "pdf")  # type: ignore[arg-type]


def mutate(doc: dict[str, Any], change: str) -> dict[str, Any]:
    if change == "parent later":
        doc["messages"].reverse()
    elif change == "duplicate id":
        doc["messages"][1]["id"] = doc["messages"][0]["id"]
    elif change == "unknown head":
        doc["session"]["head_id"] = 999
    elif change == "bad role":
        doc["messages"][0]["role"] = "narrator"
    return doc


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not a JSON file"),
        ("[]", "not a qwenchat session export"),
        ('{"format": "llm-session"}', "not a qwenchat session export"),
        ('{"format": "qwenchat-session", "version": 2}', "version 2 is not supported"),
        ('{"format": "qwenchat-session", "version": 1}', "bad session export: 'session'"),
        ("parent later", r"parent .* is not among the messages before it"),
        ("duplicate id", r"message id .* appears twice"),
        ("unknown head", "the head message 999 is not in the file"),
        ("bad role", "bad session export: 'messages.0.role'"),
    ],
)
def test_bad_imports_are_one_line_input_errors(
    store: SessionStore, text: str, message: str
) -> None:
    if not text.startswith(("{", "[")):
        session = store.create_session()
        add_all(store, session.id, "one", "two")
        doc = json.loads(store.export_session(session.id, "json"))
        text = json.dumps(mutate(doc, text))
    with pytest.raises(StoreInputError, match=message) as info:
        store.import_session(text)
    assert isinstance(info.value, InputError) and info.value.exit_code == 2
    one_line(info.value)
    assert len(store.list_sessions()) <= 1  # nothing half-imported


def test_attachments_are_kept_with_their_message_and_each_text_once(path: Path) -> None:
    from qwenchat.chatml import Attachment, UserMessage

    doc = Attachment(name="notes.md", text="The launch is on May 3.")
    pdf = Attachment(name="plan.pdf", text="Phase one: design.", kind="pdf")
    with SessionStore(path) as store:
        session = store.create_session(name="files")
        store.add_message(session.id, UserMessage(content="When?", attachments=[doc, pdf]))
        store.add_message(session.id, {"role": "assistant", "content": "May 3."})
        store.add_message(session.id, UserMessage(content="And again?", attachments=[doc]))
        first, _, last = store.history(session.id)
        assert first.to_message() == UserMessage(content="When?", attachments=[doc, pdf])
        assert last.attachments == [doc]
        exported = store.export_session(session.id, "json")
        copy = store.import_session(exported.replace('"name": "files"', '"name": "copy"'))
        assert store.history(copy.id)[0].attachments == [doc, pdf]
    with sqlite3.connect(path) as db:  # the same text is stored once for all messages
        assert db.execute("SELECT COUNT(*) FROM fragments").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM attachments").fetchone()[0] == 6  # 3 + 3 copied


def test_deleting_a_session_deletes_its_messages_and_attachments(path: Path) -> None:
    """The store's connection enforces foreign keys (ON DELETE CASCADE)."""
    from qwenchat.chatml import Attachment, UserMessage

    with SessionStore(path) as store:
        session = store.create_session(name="gone")
        note = Attachment(name="n.md", text="x")
        store.add_message(session.id, UserMessage(content="hi", attachments=[note]))
        store.delete_session(session.id)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM attachments").fetchone()[0] == 0
