"""Saving a chat to the session store as it happens.

A :class:`SessionRecorder` watches a turn's events and the conversation's message
list: every message is written once it is complete, and a reply that is still
streaming is checkpointed (at most once a second, by the store), so a crash loses
at most the last second of it. When the agent loop takes back messages (the repeat
guard drops a repeated call and its result), the recorder deletes them too.

Each message is stored under the one before it *in this chat*, not under whatever the
session's head is when it is written: two processes on one session at once each go on
from what they read, so their turns become sibling branches (the head is the one
written last), and no reply is stored after a question its model never saw.

A session the chat names but that does not exist yet is created with its first message,
so a turn that fails before it (a model that does not load, nothing to retry) leaves no
empty session behind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qwenchat.agent import Event, TextDelta
from qwenchat.chatml import AssistantMessage, Message

if TYPE_CHECKING:
    from qwenchat.store import ReplyCheckpoint, Session, SessionStore


class SessionRecorder:
    """Keeps session ``session_id`` in ``store`` equal to a chat's messages.

    ``stored_ids`` are the ids of the messages the chat started with (its history,
    loaded from this session), in order. With ``session_id`` None, ``create`` makes the
    session when the first message is written.
    """

    def __init__(
        self,
        store: SessionStore,
        session_id: int | None,
        stored_ids: list[int],
        *,
        create: Callable[[], Session] | None = None,
    ) -> None:
        self.store = store
        self._session_id = session_id
        self._create = create
        self._ids = list(stored_ids)
        self._reply: ReplyCheckpoint | None = None
        self._text = ""

    @property
    def session_id(self) -> int | None:
        """The session's id, or None while it is yet to be created."""
        return self._session_id

    def ensure_session(self) -> int:
        """The session's id, creating the session now if it is yet to be."""
        if self._session_id is None:
            assert self._create is not None, "a recorder needs a session or a way to make one"
            self._session_id = self._create().id
        return self._session_id

    def _parent(self) -> int | None:
        """What the next message follows: the chat's last stored one (None: a new root)."""
        return self._ids[-1] if self._ids else None

    def observe(self, event: Event, messages: list[Message]) -> None:
        """Call for every event of a turn, before it is shown."""
        self.sync(messages)
        if isinstance(event, TextDelta):
            if self._reply is None:
                session = self.ensure_session()
                self._reply = self.store.begin_reply(session, parent_id=self._parent())
                self._text = ""
            self._text += event.text
            self._reply.update(self._text)

    def abandon(self, messages: list[Message]) -> None:
        """The turn failed. A reply cut off mid-stream stays in the store as far as it
        got (incomplete) and becomes the chat's last message, so the next turn follows it."""
        reply, self._reply = self._reply, None
        self.sync(messages)
        if reply is not None:
            reply.save(self._text)
            messages.append(AssistantMessage(content=self._text))
            self._ids.append(reply.message_id)

    def branch_from(self, keep: int) -> None:
        """The chat goes on after its first ``keep`` messages: what followed them stays
        in the store as another branch, and new messages grow a new one."""
        self._ids = self._ids[:keep]
        if self._ids and self._session_id is not None:
            self.store.set_head(self._session_id, self._ids[-1])

    def delete(self, start: int, end: int) -> None:
        """Delete the chat's messages ``start`` to ``end`` (excluded) from the session; the
        store links what followed them to what preceded them."""
        for message_id in self._ids[start:end]:
            self.store.delete_message(message_id)
        del self._ids[start:end]

    def sync(self, messages: list[Message]) -> None:
        """Write the messages added since the last call; delete those taken back."""
        while len(self._ids) > len(messages):
            self.store.delete_message(self._ids.pop())
        for message in messages[len(self._ids) :]:
            if isinstance(message, AssistantMessage) and self._reply is not None:
                stored = self._reply.finish(message)
                self._reply = None
            else:
                session = self.ensure_session()
                stored = self.store.add_message(session, message, parent_id=self._parent())
            self._ids.append(stored.id)


def open_session(store: SessionStore, session: Session) -> tuple[list[Message], SessionRecorder]:
    """The history of ``session`` and a recorder that goes on saving it."""
    stored = store.history(session.id)
    history = [message.to_message() for message in stored]
    return history, SessionRecorder(store, session.id, [message.id for message in stored])
