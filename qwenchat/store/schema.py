"""The session store's schema, as an ordered list of migrations.

``MIGRATIONS[n]`` takes a database from ``PRAGMA user_version`` *n* to *n + 1*; its
statements run in one transaction. To change the schema, append a step (a tuple of
SQL statements) and never edit one that has shipped.

Messages form a tree: ``parent_id`` points at the message a message follows, so an
edit or a retry adds a sibling and keeps the old branch. ``sessions.head_id`` is the
leaf of the branch in use. Timestamps are ISO 8601 text in UTC, so they sort as text.
Message content is indexed for search by an FTS5 table with the trigram tokenizer
(substring matches, also for Chinese and Japanese, which have no spaces between words),
kept in sync with ``messages`` by triggers.
"""

from __future__ import annotations

_V1 = (
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids are shown to users
        name TEXT UNIQUE,                      -- given by the user, as in `ask --session NAME`
        title TEXT,
        persona TEXT,
        system_prompt TEXT,
        model TEXT,
        sampling TEXT,                         -- a JSON object
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        head_id INTEGER REFERENCES messages (id) ON DELETE SET NULL
    )
    """,
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        parent_id INTEGER,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
        content TEXT NOT NULL,
        tool_calls TEXT,                       -- a JSON list of {"name", "arguments"}
        tool_call_id TEXT,
        name TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        created TEXT NOT NULL,
        complete INTEGER NOT NULL DEFAULT 1 CHECK (complete IN (0, 1)),
        -- A parent belongs to the same session.
        FOREIGN KEY (session_id, parent_id) REFERENCES messages (session_id, id)
    )
    """,
    "CREATE UNIQUE INDEX messages_by_session ON messages (session_id, id)",
    "CREATE INDEX messages_by_parent ON messages (session_id, parent_id)",
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, content = 'messages', content_rowid = 'id', tokenize = 'trigram'
    )
    """,
    """
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
    END
    """,
    """
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
    END
    """,
    """
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
    END
    """,
)

# How each tool call went, so that a session opened again shows its failed calls as such.
_V2 = (
    "ALTER TABLE messages ADD COLUMN tool_status TEXT",  # a tool message's status
    "ALTER TABLE messages ADD COLUMN duration_s REAL",
)

# Files put into user messages: each text once (by its sha256), however many messages
# attach it, as llm's fragments are; an attachment names a fragment, in order.
_V3 = (
    """
    CREATE TABLE fragments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sha256 TEXT NOT NULL UNIQUE,
        text TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE attachments (
        message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        fragment_id INTEGER NOT NULL REFERENCES fragments (id),
        PRIMARY KEY (message_id, position)
    )
    """,
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3)
