"""Saving a chat to the session store as it happens.

A :class:`SessionRecorder` watches a turn's events and the conversation's message
list: every message is written once it is complete, and a reply that is still
streaming is checkpointed (at most once a second, by the store), so a crash loses
at most the last second of it. When the agent loop takes back messages (the repeat
guard drops a repeated call and its result), the recorder deletes them too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qwenchat.agent import Event, TextDelta
from qwenchat.chatml import AssistantMessage, Message

if TYPE_CHECKING:
    from qwenchat.store import ReplyCheckpoint, Session, SessionStore


class SessionRecorder:
    """Keeps session ``session_id`` in ``store`` equal to a chat's messages.

    ``stored_ids`` are the ids of the messages the chat started with (its history,
    loaded from this session), in order.
    """

    def __init__(self, store: SessionStore, session_id: int, stored_ids: list[int]) -> None:
        self.store = store
        self.session_id = session_id
        self._ids = list(stored_ids)
        self._reply: ReplyCheckpoint | None = None
        self._text = ""
        self._new_root = False  # the next message starts a new root branch

    def observe(self, event: Event, messages: list[Message]) -> None:
        """Call for every event of a turn, before it is shown."""
        self.sync(messages)
        if isinstance(event, TextDelta):
            if self._reply is None:
                self._reply, self._text = self.store.begin_reply(self.session_id), ""
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
        if self._ids:
            self.store.set_head(self.session_id, self._ids[-1])
        self._new_root = not self._ids

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
            elif self._new_root:
                stored = self.store.add_message(self.session_id, message, parent_id=None)
            else:
                stored = self.store.add_message(self.session_id, message)
            self._new_root = False
            self._ids.append(stored.id)


def open_session(store: SessionStore, session: Session) -> tuple[list[Message], SessionRecorder]:
    """The history of ``session`` and a recorder that goes on saving it."""
    stored = store.history(session.id)
    history = [message.to_message() for message in stored]
    return history, SessionRecorder(store, session.id, [message.id for message in stored])
