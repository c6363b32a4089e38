"""What the session store hands out: sessions, stored messages, search hits."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from qwenchat.chatml import Attachment, CallStatus, Message, ToolCall, to_message

Role = Literal["system", "user", "assistant", "tool"]
SqlInt = Annotated[int, Field(ge=0, lt=2**63)]
"""An id or a count: what an SQLite INTEGER holds (an import file may say anything)."""


def _utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last datetime in UTC
        raise ValueError("the time is out of range in UTC") from None


Moment = Annotated[datetime, AfterValidator(_utc)]
"""A point in time, in UTC (the store keeps UTC text, so that text order is time order)."""


class Session(BaseModel):
    """A conversation and the settings it was held with."""

    model_config = ConfigDict(frozen=True)

    id: SqlInt
    name: str | None = None
    title: str | None = None
    persona: str | None = None
    system_prompt: str | None = None
    model: str | None = None
    sampling: dict[str, Any] | None = None
    created: Moment
    updated: Moment
    head_id: SqlInt | None = None


class MessageNode(BaseModel):
    """A message and its place in its session's tree, as an export file holds it."""

    model_config = ConfigDict(frozen=True)

    id: SqlInt
    parent_id: SqlInt | None = None
    role: Role
    content: str
    tool_calls: list[ToolCall] = []
    tool_call_id: str | None = None
    name: str | None = None
    tool_status: CallStatus | None = None
    duration_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    prompt_tokens: SqlInt | None = None
    completion_tokens: SqlInt | None = None
    created: Moment
    complete: bool = True
    attachments: list[Attachment] = []
    """A user message's files (:class:`qwenchat.chatml.Attachment`)."""

    def to_message(self) -> Message:
        """The chatml message, ready for :func:`qwenchat.chatml.render`."""
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.role == "user":
            data["attachments"] = self.attachments
        elif self.role == "assistant":
            data["tool_calls"] = self.tool_calls
        elif self.role == "tool":
            data |= {
                "name": self.name,
                "tool_call_id": self.tool_call_id,
                "status": self.tool_status,
                "duration_s": self.duration_s,
            }
        return to_message(data)


class StoredMessage(MessageNode):
    """A message as stored: ``complete`` is false for a reply cut off mid-stream."""

    session_id: int


class SearchHit(BaseModel):
    """A message whose content matched a search, with an excerpt around the match."""

    model_config = ConfigDict(frozen=True)

    session_id: int
    session_name: str | None
    session_title: str | None
    message_id: int
    role: Role
    snippet: str
    created: datetime
