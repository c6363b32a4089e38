"""The session store: conversations saved in SQLite, as trees of messages.

:class:`SessionStore` keeps sessions (name, title, persona, system prompt, model,
sampling) and their messages in ``<data dir>/sessions.db``. Editing or retrying
adds a branch beside the old one; :meth:`~SessionStore.history` follows the branch
in use. Replies are stored while they stream (:class:`ReplyCheckpoint`), content is
searchable, and a session exports to Markdown or JSON and imports from JSON.
"""

from qwenchat.store.db import StoreError, StoreInputError
from qwenchat.store.records import MessageNode, SearchHit, Session, StoredMessage
from qwenchat.store.store import (
    ReplyCheckpoint,
    SessionStore,
    check_session_name,
    default_store_path,
    is_session_id,
)

__all__ = [
    "MessageNode",
    "ReplyCheckpoint",
    "SearchHit",
    "Session",
    "SessionStore",
    "StoreError",
    "StoreInputError",
    "StoredMessage",
    "check_session_name",
    "default_store_path",
    "is_session_id",
]
