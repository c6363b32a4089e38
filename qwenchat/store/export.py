"""Sessions as files: Markdown to read, versioned JSON to move between stores.

Markdown holds the branch in use, one role heading per message. JSON holds the
whole tree with its ids, parent ids and head, and :func:`parse_document` reads it
back; a file that is not such a document is a one-line :class:`StoreInputError`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from qwenchat.store.db import StoreInputError
from qwenchat.store.records import MessageNode, Session, StoredMessage

FORMAT = "qwenchat-session"
VERSION = 1

_HEADINGS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


class SessionDocument(BaseModel):
    """A JSON export: the session and every message of its tree, parents first."""

    format: Literal["qwenchat-session"] = FORMAT
    version: Literal[1] = VERSION
    session: Session
    messages: list[MessageNode]


def to_json(session: Session, messages: list[StoredMessage]) -> str:
    nodes = [MessageNode.model_validate(m, from_attributes=True) for m in messages]
    doc = SessionDocument(session=session, messages=nodes)
    return json.dumps(doc.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"


def parse_document(text: str) -> SessionDocument:
    """Read a JSON export; the tree must be whole, with parents before children."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreInputError(
            f"not a JSON file ({exc}); expected a session exported as JSON"
        ) from None
    except RecursionError:
        raise StoreInputError("not a session export: its JSON is nested too deeply") from None
    try:  # JSON may spell lone surrogates ("\ud800"), which no UTF-8 store can hold
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StoreInputError(
            f"bad session export: it holds {exc.object[exc.start : exc.end]!a}, half of a"
            " UTF-16 pair, which is not text"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StoreInputError(f'not a qwenchat session export: it lacks "format": "{FORMAT}"')
    if data.get("version") != VERSION:
        raise StoreInputError(
            f"session export version {data.get('version')!r} is not supported;"
            f" this qwenchat reads version {VERSION}"
        )
    try:
        doc = SessionDocument.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"])
        raise StoreInputError(f"bad session export: '{where}': {err['msg']}") from None
    _check_tree(doc)
    return doc


def _check_tree(doc: SessionDocument) -> None:
    seen: set[int] = set()
    for node in doc.messages:
        if node.id in seen:
            raise StoreInputError(f"bad session export: message id {node.id} appears twice")
        if node.parent_id is not None and node.parent_id not in seen:
            raise StoreInputError(
                f"bad session export: message {node.id}'s parent {node.parent_id}"
                " is not among the messages before it"
            )
        seen.add(node.id)
    head = doc.session.head_id
    if head is not None and head not in seen:
        raise StoreInputError(f"bad session export: the head message {head} is not in the file")


def to_markdown(session: Session, history: list[StoredMessage]) -> str:
    parts = [f"# {session.title or session.name or f'Session {session.id}'}", _metadata(session)]
    if session.system_prompt:
        parts += ["## System prompt", session.system_prompt]
    parts += [block for message in history for block in _message_blocks(message)]
    return "\n\n".join(parts) + "\n"


def _metadata(session: Session) -> str:
    fields: list[tuple[str, Any]] = [
        ("Session", session.id),
        ("Name", session.name),
        ("Persona", session.persona),
        ("Model", session.model),
        ("Sampling", session.sampling and json.dumps(session.sampling, ensure_ascii=False)),
        ("Created", _when(session.created)),
        ("Updated", _when(session.updated)),
    ]
    return "\n".join(f"- **{label}:** {value}" for label, value in fields if value)


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _message_blocks(message: StoredMessage) -> list[str]:
    heading = _HEADINGS[message.role]
    if message.role == "tool" and message.name:
        heading += f" `{message.name}`"
    if message.tool_status not in (None, "ok"):
        heading += f" ({message.tool_status})"
    if not message.complete:
        heading += " (interrupted)"
    blocks = [f"## {heading}"]
    if message.content:
        # A tool's output is data, not Markdown: fence it.
        tool = message.role == "tool"
        blocks.append(_fence(message.content) if tool else message.content)
    for call in message.tool_calls:
        blocks.append(_fence(json.dumps(call.model_dump(), ensure_ascii=False, indent=2), "json"))
    return blocks


def _fence(text: str, info: str = "") -> str:
    # A fence longer than any backtick run inside, so the text cannot close it.
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    bar = "`" * max(3, longest + 1)
    return f"{bar}{info}\n{text}\n{bar}"
