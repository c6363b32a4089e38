"""The session store: conversations as message trees in one SQLite file.

Every write is its own committed transaction, so the file is consistent whenever
the process dies. A streamed reply is stored as it grows (:class:`ReplyCheckpoint`)
and loses at most the last second of text to a crash. One connection serves all
threads, one call at a time.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from qwenchat.chatml import (
    AssistantMessage,
    Attachment,
    Message,
    MessageLike,
    ToolMessage,
    UserMessage,
    to_message,
)
from qwenchat.paths import data_dir
from qwenchat.store.db import StoreInputError, open_db, sqlite_errors, transaction
from qwenchat.store.export import parse_document, to_json, to_markdown
from qwenchat.store.records import SearchHit, Session, StoredMessage

CHECKPOINT_INTERVAL = 1.0  # seconds of streamed text a crash may lose
_SNIPPET_WIDTH = 80
_TRIGRAM = 3  # the FTS index matches substrings of at least this many characters
_IDS_PER_QUERY = 500  # well under SQLite's limit on a statement's parameters

_PATH_TO_HEAD = """
    WITH RECURSIVE path (id, depth) AS (
        SELECT head_id, 0 FROM sessions WHERE id = ? AND head_id IS NOT NULL
        UNION ALL
        SELECT m.parent_id, path.depth + 1 FROM messages AS m JOIN path ON m.id = path.id
        WHERE m.parent_id IS NOT NULL
    )
    SELECT m.* FROM path JOIN messages AS m ON m.id = path.id ORDER BY path.depth DESC
"""


class _Head(Enum):
    """The default parent: the session's current head."""

    HEAD = "head"


_HEAD = _Head.HEAD


def default_store_path() -> Path:
    return data_dir() / "sessions.db"


class SessionStore:
    """Sessions and their message trees in the SQLite file at ``path``.

    A damaged file is moved aside and replaced; :attr:`notice` then says so in one
    line (else it is None). ``timeout`` is how long a write waits for another
    process's before :class:`~qwenchat.store.db.StoreError` says the store is locked.
    """

    def __init__(self, path: Path, *, timeout: float = 5.0) -> None:
        self.path = path
        self._db, self.notice = open_db(path, timeout)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Sessions

    def create_session(
        self,
        name: str | None = None,
        title: str | None = None,
        persona: str | None = None,
        system_prompt: str | None = None,
        model: str | None = None,
        sampling: dict[str, Any] | None = None,
    ) -> Session:
        check_session_name(name)
        now = _now()
        columns = {
            "name": name,
            "title": title,
            "persona": persona,
            "system_prompt": system_prompt,
            "model": model,
            "sampling": _json_or_none(sampling),
            "created": now,
            "updated": now,
        }
        with self._tx(write=True) as db:
            return _session(_resolve(db, _insert_session(db, columns)))

    def get_session(self, ref: int | str) -> Session:
        """A session by id or by name (a string of digits is an id: names never are)."""
        with self._tx() as db:
            return _session(_resolve(db, ref))

    def find_session(self, name: str) -> Session | None:
        with self._tx() as db:
            row = db.execute("SELECT * FROM sessions WHERE name = ?", (name,)).fetchone()
        return None if row is None else _session(row)

    def list_sessions(self) -> list[Session]:
        """All sessions, the most recently updated first."""
        with self._tx() as db:
            rows = db.execute("SELECT * FROM sessions ORDER BY updated DESC, id DESC").fetchall()
        return [_session(row) for row in rows]

    def rename(self, ref: int | str, title: str) -> Session:
        with self._tx(write=True) as db:
            session_id = _resolve(db, ref)["id"]
            db.execute(
                "UPDATE sessions SET title = ?, updated = ? WHERE id = ?",
                (title, _now(), session_id),
            )
            return _session(_resolve(db, session_id))

    def delete_session(self, ref: int | str) -> None:
        """Delete a session and all its messages."""
        with self._tx(write=True) as db:
            db.execute("DELETE FROM sessions WHERE id = ?", (_resolve(db, ref)["id"],))

    # Messages

    def add_message(
        self,
        session_id: int,
        message: MessageLike,
        *,
        parent_id: int | _Head | None = _HEAD,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> StoredMessage:
        """Append a message under ``parent_id`` (the head by default); it becomes the head."""
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        with self._tx(write=True) as db:
            return _message_by_id(db, _add(db, session_id, to_message(message), parent_id, usage))

    def get_message(self, message_id: int) -> StoredMessage:
        with self._tx() as db:
            return _message_by_id(db, message_id)

    def history(self, session_id: int) -> list[StoredMessage]:
        """The branch in use: the messages from the root down to the head."""
        with self._tx() as db:
            return _path(db, session_id)

    def begin_reply(
        self,
        session_id: int,
        *,
        parent_id: int | _Head | None = _HEAD,
        clock: Callable[[], float] = time.monotonic,
    ) -> ReplyCheckpoint:
        """Store an empty, incomplete assistant reply now; it becomes the head.

        ``clock`` (seconds) paces the checkpoints; tests pass a fake one.
        """
        with self._tx(write=True) as db:
            reply_id = _add(db, session_id, AssistantMessage(), parent_id, {"complete": False})
        return ReplyCheckpoint(self, reply_id, clock)

    def retry(self, session_id: int) -> int:
        """Go back to the last user message, to answer it again; returns its id.

        The head moves there, so :meth:`history` is the prompt for the new reply and
        :meth:`begin_reply` adds it as a sibling of the old one, which is kept. A
        turn's tool calls and results are redone with it.
        """
        with self._tx(write=True) as db:
            path = _path(db, session_id)
            user = next((m for m in reversed(path) if m.role == "user"), None)
            if user is None:
                raise StoreInputError(f"session {session_id} has no user message to answer again")
            _move_head(db, session_id, user.id)
            return user.id

    def edit(self, message_id: int, content: str) -> StoredMessage:
        """Add a copy of a message with new content beside it; the copy becomes the head.

        The old message and everything after it stay as another branch.
        """
        with self._tx(write=True) as db:
            old = _message_by_id(db, message_id)
            new = old.to_message().model_copy(update={"content": content})
            return _message_by_id(db, _add(db, old.session_id, new, old.parent_id, {}))

    def delete_message(self, message_id: int) -> None:
        """Delete one message; its children move up to its parent, and so may the head."""
        with self._tx(write=True) as db:
            old = _message_by_id(db, message_id)
            db.execute(
                "UPDATE messages SET parent_id = ? WHERE session_id = ? AND parent_id = ?",
                (old.parent_id, old.session_id, old.id),
            )
            db.execute(
                "UPDATE sessions SET head_id = ?, updated = ? WHERE id = ? AND head_id = ?",
                (old.parent_id, _now(), old.session_id, old.id),
            )
            db.execute("DELETE FROM messages WHERE id = ?", (old.id,))

    def branches(self, message_id: int) -> list[StoredMessage]:
        """The message and its siblings (the alternatives at its place), oldest first."""
        with self._tx() as db:
            old = _message_by_id(db, message_id)
            rows = db.execute(
                "SELECT * FROM messages WHERE session_id = ? AND parent_id IS ? ORDER BY id",
                (old.session_id, old.parent_id),
            ).fetchall()
            return _messages(db, rows)

    def set_head(self, session_id: int, message_id: int) -> None:
        """Make ``message_id`` the end of the branch in use."""
        with self._tx(write=True) as db:
            if _message_by_id(db, message_id).session_id != _resolve(db, session_id)["id"]:
                raise StoreInputError(f"message {message_id} is not in session {session_id}")
            _move_head(db, session_id, message_id)

    # Search, export, import

    def search(self, text: str, limit: int = 20) -> list[SearchHit]:
        """Messages containing every word of ``text`` (case-insensitive), newest first.

        Words are matched as literal substrings: punctuation and FTS5 operators in
        ``text`` have no special meaning. Words under three characters cannot use
        the index and are matched by a scan.
        """
        words = text.split()
        if not words:
            return []
        where, params = _search_filters(words)
        sql = (
            "SELECT m.*, s.name AS session_name, s.title AS session_title"
            " FROM messages AS m JOIN sessions AS s ON s.id = m.session_id"
            f" WHERE {' AND '.join(where)} ORDER BY m.id DESC LIMIT ?"
        )
        with self._tx() as db:
            rows = db.execute(sql, (*params, limit)).fetchall()
        return [_hit(row, words) for row in rows]

    def export_session(self, ref: int | str, fmt: Literal["md", "json"]) -> str:
        """Markdown of the branch in use, or JSON of the whole tree (see :meth:`import_session`)."""
        if fmt not in ("md", "json"):
            raise StoreInputError(f"unknown export format {fmt!r}; use md or json")
        with self._tx() as db:
            session = _session(_resolve(db, ref))
            if fmt == "md":
                return to_markdown(session, _path(db, session.id))
            rows = db.execute(
                "SELECT * FROM messages WHERE session_id = ? ORDER BY id", (session.id,)
            ).fetchall()
            return to_json(session, _messages(db, rows))

    def import_session(self, text: str) -> Session:
        """Load a JSON export as a new session: new ids, the same tree, head and times."""
        doc = parse_document(text)
        check_session_name(doc.session.name)
        columns = doc.session.model_dump(exclude={"id", "head_id", "created", "updated"})
        columns |= {"created": _iso(doc.session.created), "updated": _iso(doc.session.updated)}
        columns["sampling"] = _json_or_none(doc.session.sampling)
        with self._tx(write=True) as db:
            session_id = _insert_session(db, columns)
            new_ids: dict[int, int] = {}
            for node in doc.messages:
                parent = None if node.parent_id is None else new_ids[node.parent_id]
                row = {"session_id": session_id, "parent_id": parent, "created": _iso(node.created)}
                row |= _message_columns(node.to_message())
                row |= node.model_dump(include={"prompt_tokens", "completion_tokens", "complete"})
                new_ids[node.id] = _insert(db, "messages", row)
                _attach(db, new_ids[node.id], node.attachments)
            head = doc.session.head_id
            db.execute(
                "UPDATE sessions SET head_id = ? WHERE id = ?",
                (None if head is None else new_ids[head], session_id),
            )
            return _session(_resolve(db, session_id))

    # Checkpoints write through these.

    def _save_reply_text(self, message_id: int, text: str) -> None:
        with self._tx(write=True) as db:
            db.execute("UPDATE messages SET content = ? WHERE id = ?", (text, message_id))

    def _finish_reply(
        self, message_id: int, message: AssistantMessage, usage: dict[str, int | None]
    ) -> StoredMessage:
        row = {**_message_columns(message), **usage, "complete": True}
        assignments = ", ".join(f"{column} = ?" for column in row)
        with self._tx(write=True) as db:
            db.execute(
                f"UPDATE messages SET {assignments} WHERE id = ?", (*row.values(), message_id)
            )
            stored = _message_by_id(db, message_id)
            db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (_now(), stored.session_id))
            return stored

    @contextmanager
    def _tx(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A transaction of its own (a consistent read, or a committed write)."""
        with self._lock, sqlite_errors(self.path), transaction(self._db, write) as db:
            yield db


class ReplyCheckpoint:
    """An assistant reply being streamed, stored as it grows.

    :meth:`SessionStore.begin_reply` stores it at once, incomplete. :meth:`update`
    takes the whole text so far and stores it at most once per
    :data:`CHECKPOINT_INTERVAL`; :meth:`finish` stores the final message, complete.
    """

    def __init__(self, store: SessionStore, message_id: int, clock: Callable[[], float]) -> None:
        self.message_id = message_id
        self._store = store
        self._clock = clock
        self._saved_at = clock()

    def update(self, text: str) -> None:
        now = self._clock()
        if now - self._saved_at >= CHECKPOINT_INTERVAL:
            self.save(text)

    def save(self, text: str) -> None:
        """Store ``text`` now (the reply stays incomplete)."""
        self._store._save_reply_text(self.message_id, text)
        self._saved_at = self._clock()

    def finish(
        self,
        message: AssistantMessage,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> StoredMessage:
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        return self._store._finish_reply(self.message_id, message, usage)


def _now() -> str:
    return _iso(datetime.now(timezone.utc))


def _iso(moment: datetime) -> str:
    # Fixed width in UTC, so that text order is time order.
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _insert(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
    columns, marks = ", ".join(row), ", ".join("?" for _ in row)
    cursor = db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", (*row.values(),))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def is_session_id(ref: str) -> bool:
    """Whether ``ref`` reads as a session id: ASCII digits that fit SQLite's integers
    (``str.isdigit`` also takes ``²``, which ``int`` refuses)."""
    return ref.isascii() and ref.isdigit() and int(ref) < 2**63


def check_session_name(name: str | None) -> None:
    """Raise :class:`StoreInputError` for a name a session cannot have."""
    # A name of digits would read as an id in get_session().
    if name is None:
        return
    if not name.strip() or is_session_id(name):
        raise StoreInputError(f"bad session name {name!r}: use some text, not only digits")
    if not name.isprintable():  # a name is typed and shown: no control characters
        raise StoreInputError(f"bad session name {name!r}: use printable characters only")


def _insert_session(db: sqlite3.Connection, columns: dict[str, Any]) -> int:
    try:
        return _insert(db, "sessions", columns)
    except sqlite3.IntegrityError:  # the only constraint: a unique name
        raise StoreInputError(
            f"a session named {columns['name']!r} already exists;"
            " choose another name or delete that session"
        ) from None


def _resolve(db: sqlite3.Connection, ref: int | str) -> sqlite3.Row:
    row = None
    if isinstance(ref, str):
        row = db.execute("SELECT * FROM sessions WHERE name = ?", (ref,)).fetchone()
    if row is None and (isinstance(ref, int) or is_session_id(ref)):
        row = db.execute("SELECT * FROM sessions WHERE id = ?", (int(ref),)).fetchone()
    if row is None:
        raise StoreInputError(f"no session {ref!r}; `qwenchat sessions list` shows them")
    return row


def _session(row: sqlite3.Row) -> Session:
    data = dict(row)
    data["sampling"] = None if data["sampling"] is None else json.loads(data["sampling"])
    return Session.model_validate(data)


def _messages(db: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[StoredMessage]:
    """Stored messages from their rows, each user message with its attachments."""
    attached = _attachments(db, [row["id"] for row in rows if row["role"] == "user"])
    found = []
    for row in rows:
        data = dict(row)
        data["tool_calls"] = json.loads(data["tool_calls"] or "[]")
        data["attachments"] = attached.get(row["id"], [])
        found.append(StoredMessage.model_validate(data))
    return found


def _attachments(db: sqlite3.Connection, ids: list[int]) -> dict[int, list[Attachment]]:
    found: dict[int, list[Attachment]] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        rows = db.execute(
            "SELECT a.message_id, a.name, a.kind, f.text FROM attachments a"
            " JOIN fragments f ON f.id = a.fragment_id"
            f" WHERE a.message_id IN ({','.join('?' * len(chunk))})"
            " ORDER BY a.message_id, a.position",
            chunk,
        )
        for message_id, name, kind, text in rows:
            found.setdefault(message_id, []).append(Attachment(name=name, kind=kind, text=text))
    return found


def _attach(db: sqlite3.Connection, message_id: int, attachments: list[Attachment]) -> None:
    """Store a message's attachments, each text once however many messages attach it."""
    for position, attachment in enumerate(attachments):
        digest = hashlib.sha256(attachment.text.encode()).hexdigest()
        db.execute(
            "INSERT OR IGNORE INTO fragments (sha256, text) VALUES (?, ?)",
            (digest, attachment.text),
        )
        [fragment_id] = db.execute(
            "SELECT id FROM fragments WHERE sha256 = ?", (digest,)
        ).fetchone()
        db.execute(
            "INSERT INTO attachments (message_id, position, name, kind, fragment_id)"
            " VALUES (?, ?, ?, ?, ?)",
            (message_id, position, attachment.name, attachment.kind, fragment_id),
        )


def _message_by_id(db: sqlite3.Connection, message_id: int) -> StoredMessage:
    row = db.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
    if row is None:
        raise StoreInputError(f"no message {message_id}; it may have been deleted")
    return _messages(db, [row])[0]


def _message_columns(message: Message) -> dict[str, Any]:
    calls = message.tool_calls if isinstance(message, AssistantMessage) else []
    tool = message if isinstance(message, ToolMessage) else None
    return {
        "role": message.role,
        "content": message.content,
        "tool_calls": _json_or_none([call.model_dump() for call in calls] or None),
        "tool_call_id": tool.tool_call_id if tool else None,
        "name": tool.name if tool else None,
        "tool_status": tool.status if tool else None,
        "duration_s": tool.duration_s if tool else None,
    }


def _add(
    db: sqlite3.Connection,
    session_id: int,
    message: Message,
    parent_id: int | _Head | None,
    extra: dict[str, Any],
) -> int:
    """Insert a message and make it the head."""
    head = _resolve(db, session_id)["head_id"]
    parent = head if parent_id is _HEAD else parent_id
    row = {"session_id": session_id, "parent_id": parent, "created": _now()}
    try:
        message_id = _insert(db, "messages", row | _message_columns(message) | extra)
    except sqlite3.IntegrityError:  # the parent is in another session, or nowhere
        raise StoreInputError(f"message {parent} is not in session {session_id}") from None
    if isinstance(message, UserMessage):
        _attach(db, message_id, message.attachments)
    _move_head(db, session_id, message_id)
    return message_id


def _move_head(db: sqlite3.Connection, session_id: int, message_id: int) -> None:
    db.execute(
        "UPDATE sessions SET head_id = ?, updated = ? WHERE id = ?",
        (message_id, _now(), session_id),
    )


def _path(db: sqlite3.Connection, session_id: int) -> list[StoredMessage]:
    _resolve(db, session_id)
    return _messages(db, db.execute(_PATH_TO_HEAD, (session_id,)).fetchall())


def _search_filters(words: list[str]) -> tuple[list[str], list[str]]:
    where: list[str] = []
    params: list[str] = []
    indexed = [w for w in words if len(w) >= _TRIGRAM]
    if indexed:
        # Each word a quoted FTS5 string (quotes doubled): a literal, never syntax.
        where.append("m.id IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)")
        params.append(" ".join('"' + w.replace('"', '""') + '"' for w in indexed))
    for word in words:
        if len(word) < _TRIGRAM:
            where.append("m.content LIKE ? ESCAPE '\\'")
            params.append("%" + re.sub(r"([\\%_])", r"\\\1", word) + "%")
    return where, params


def _hit(row: sqlite3.Row, words: list[str]) -> SearchHit:
    content: str = row["content"]
    found = (re.search(re.escape(w), content, re.IGNORECASE) for w in words)
    at = min((match.start() for match in found if match), default=0)
    # Some context before the match; the whole of a short message.
    start = max(0, min(at - _SNIPPET_WIDTH // 4, len(content) - _SNIPPET_WIDTH))
    end = start + _SNIPPET_WIDTH
    snippet = " ".join(content[start:end].split())
    snippet = ("…" if start else "") + snippet + ("…" if end < len(content) else "")
    return SearchHit(
        session_id=row["session_id"],
        session_name=row["session_name"],
        session_title=row["session_title"],
        message_id=row["id"],
        role=row["role"],
        snippet=snippet,
        created=row["created"],
    )
