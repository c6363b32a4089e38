"""The Qwen2.5 ChatML format: message models and an exact port of the chat template.

:func:`render` produces the same string as the official Qwen2.5-Instruct chat
template run the way transformers runs it (``tojson`` is ``json.dumps`` with
``ensure_ascii=False``, keys in insertion order, no HTML escaping).

:func:`render_segments` returns the same text split into :class:`Segment` runs
that say where each part came from. ``special=True`` text is written by the
template itself (role markers, the tools preamble, the ``<tool_call>`` and
``<tool_response>`` wrappers, the default system prompt) and is tokenized with
special tokens parsed. ``special=False`` text comes from data (message content,
tool-call names and arguments, tool schemas) and is tokenized as plain text, so
a user who types ``<|im_end|>`` cannot open a new turn.

Template semantics worth knowing:

* A system message is "the" system prompt only as ``messages[0]``; a later one
  renders as an ordinary ``system`` turn. Without one, :data:`DEFAULT_SYSTEM`
  is used.
* An assistant turn with tool calls and empty content writes no newline and no
  content before its first ``<tool_call>``.
* Tool-call arguments go through ``tojson`` as given, so string arguments end up
  JSON-quoted (``"arguments": "{\\"x\\": 1}"``).
* Consecutive tool messages share one ``user`` turn of ``<tool_response>`` blocks.
* The template indexes ``messages[0]``, so an empty conversation cannot be
  rendered; :func:`render` raises :class:`ValueError` for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import groupby
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, BeforeValidator, Field, TypeAdapter, model_validator

__all__ = [
    "DEFAULT_SYSTEM",
    "ENDOFTEXT",
    "IM_END",
    "IM_START",
    "AssistantMessage",
    "Attachment",
    "CallStatus",
    "Message",
    "MessageLike",
    "Segment",
    "SystemMessage",
    "ToolCall",
    "ToolMessage",
    "UserMessage",
    "render",
    "render_segments",
    "to_message",
]

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
ENDOFTEXT = "<|endoftext|>"
DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

_TOOLS_HEADER = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
_TOOLS_FOOTER = (
    "\n</tools>\n\nFor each function call, return a json object with function name and"
    " arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)


def _none_to_empty(value: Any) -> Any:
    return "" if value is None else value


# OpenAI-style clients send ``"content": None`` for tool-call-only assistant turns.
_Content = Annotated[str, BeforeValidator(_none_to_empty)]


class ToolCall(BaseModel):
    """One function call made by the assistant.

    ``arguments`` is kept exactly as given: a dict renders as a JSON object, a
    string renders as a JSON string, as the template does. An OpenAI-style
    ``{"type": "function", "function": {...}}`` wrapper is unwrapped.
    """

    name: str
    arguments: dict[str, Any] | str

    @model_validator(mode="before")
    @classmethod
    def _unwrap_function(cls, data: Any) -> Any:
        # The template does the same: `set tool_call = tool_call.function` when defined.
        if isinstance(data, Mapping) and "function" in data:
            return data["function"]
        return data


class SystemMessage(BaseModel):
    """A system prompt (as the first message) or a later system turn."""

    role: Literal["system"] = "system"
    content: _Content


class Attachment(BaseModel):
    """A file put into a user message: rendered before the message's own text, named
    and fenced, so that a second question about the same file starts the same way (and
    the engine's prefix library spares reading it again)."""

    name: str
    text: str
    kind: str = "text"
    """What it was read from: ``text``, or the converted format (``pdf``, ``docx``...)."""

    def fenced(self) -> str:
        """``name`` over the text in a fence longer than any backtick run inside it."""
        fence = "```"
        while fence in self.text:
            fence += "`"
        return f"{self.name}\n{fence}\n{self.text.rstrip()}\n{fence}"


class UserMessage(BaseModel):
    """A user turn; its attachments come first in what the model reads."""

    role: Literal["user"] = "user"
    content: _Content
    attachments: list[Attachment] = []

    def prompt_text(self) -> str:
        """What the model reads: each attachment fenced, then the message's text."""
        return "\n\n".join([*(a.fenced() for a in self.attachments), self.content])


class AssistantMessage(BaseModel):
    """An assistant turn: text, tool calls, or both."""

    role: Literal["assistant"] = "assistant"
    content: _Content = ""
    tool_calls: list[ToolCall] = []


CallStatus = Literal["ok", "error", "invalid", "unknown", "denied", "repeated", "skipped"]
"""How a tool call went: it ran (``ok``) or raised (``error``); its arguments did not fit
the tool's schema (``invalid``); no such tool (``unknown``); the user refused it
(``denied``); the model repeated a call it had made (``repeated``); or it was not run
(``skipped``, as when the turn ended first)."""


class ToolMessage(BaseModel):
    """A tool's result. ``name``, ``tool_call_id``, ``status`` and ``duration_s`` are kept
    (a stored session shows how each call went) but not rendered: the model reads only
    ``content``, which says what went wrong when something did."""

    role: Literal["tool"] = "tool"
    content: _Content
    name: str | None = None
    tool_call_id: str | None = None
    status: CallStatus | None = None
    """None where it was not recorded (a message written by hand, or an older session)."""
    duration_s: float | None = None


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage,
    Field(discriminator="role"),
]
MessageLike = SystemMessage | UserMessage | AssistantMessage | ToolMessage | Mapping[str, Any]

_MESSAGE: TypeAdapter[Message] = TypeAdapter(Message)


class Segment(NamedTuple):
    """A run of rendered text; ``special`` says whether the template wrote it."""

    text: str
    special: bool


def to_message(obj: MessageLike) -> Message:
    """Validate a message model or an OpenAI/transformers-style dict.

    ``"content": None`` becomes ``""``; keys the template ignores (OpenAI's
    tool-call ``id`` and ``type``, say) are dropped.

    Raises :class:`pydantic.ValidationError` (a :class:`ValueError`) for an
    unknown role, a missing or non-string content, or a malformed tool call.
    """
    return _MESSAGE.validate_python(obj)


def render(
    messages: Sequence[MessageLike],
    tools: Sequence[dict[str, Any]] | None = None,
    add_generation_prompt: bool = True,
) -> str:
    """Render a conversation exactly as the official Qwen2.5 chat template does.

    ``tools`` are JSON-able function schemas, usually OpenAI-style
    ``{"type": "function", "function": {...}}``; an empty list means no tools,
    as in the template. Raises :class:`ValueError` for an empty conversation
    or an invalid message.
    """
    return "".join(s.text for s in render_segments(messages, tools, add_generation_prompt))


def render_segments(
    messages: Sequence[MessageLike],
    tools: Sequence[dict[str, Any]] | None = None,
    add_generation_prompt: bool = True,
) -> list[Segment]:
    """Render like :func:`render`, split into runs of template and data text.

    Adjacent runs never share a ``special`` flag and no run is empty.
    """
    msgs = [to_message(m) for m in messages]
    if not msgs:
        raise ValueError("cannot render an empty conversation: the template reads messages[0]")
    return _merge(_segments(msgs, tools, add_generation_prompt))


def _tpl(text: str) -> Segment:
    return Segment(text, True)


def _data(text: str) -> Segment:
    return Segment(text, False)


def _tojson(value: Any) -> str:
    # transformers' `tojson`: insertion order, no HTML escaping, non-ASCII kept.
    return json.dumps(value, ensure_ascii=False)


def _merge(segments: Iterable[Segment]) -> list[Segment]:
    runs = groupby((s for s in segments if s.text), key=lambda s: s.special)
    return [Segment("".join(s.text for s in run), special) for special, run in runs]


def _segments(
    msgs: Sequence[Message], tools: Sequence[dict[str, Any]] | None, add_generation_prompt: bool
) -> Iterator[Segment]:
    yield from _system_prompt(msgs[0], tools)
    for i in range(len(msgs)):
        yield from _turn(msgs, i)
    if add_generation_prompt:
        yield _tpl(IM_START + "assistant\n")


def _system_prompt(first: Message, tools: Sequence[dict[str, Any]] | None) -> Iterator[Segment]:
    yield _tpl(IM_START + "system\n")
    yield _data(first.content) if isinstance(first, SystemMessage) else _tpl(DEFAULT_SYSTEM)
    if tools:
        yield _tpl(_TOOLS_HEADER)
        for tool in tools:
            yield _tpl("\n")
            yield _data(_tojson(tool))
        yield _tpl(_TOOLS_FOOTER)
    yield _tpl(IM_END + "\n")


def _turn(msgs: Sequence[Message], i: int) -> Iterator[Segment]:
    msg = msgs[i]
    if isinstance(msg, ToolMessage):
        yield from _tool_response(msgs, i)
    elif isinstance(msg, AssistantMessage) and msg.tool_calls:
        yield from _tool_calls(msg)
    elif i > 0 or not isinstance(msg, SystemMessage):  # messages[0] system is the prompt
        yield _tpl(IM_START + msg.role + "\n")
        yield _data(msg.prompt_text() if isinstance(msg, UserMessage) else msg.content)
        yield _tpl(IM_END + "\n")


def _tool_calls(msg: AssistantMessage) -> Iterator[Segment]:
    yield _tpl(IM_START + "assistant")
    if msg.content:
        yield _tpl("\n")
        yield _data(msg.content)
    for call in msg.tool_calls:
        yield _tpl('\n<tool_call>\n{"name": "')
        yield _data(call.name)
        yield _tpl('", "arguments": ')
        yield _data(_tojson(call.arguments))
        yield _tpl("}\n</tool_call>")
    yield _tpl(IM_END + "\n")


def _tool_response(msgs: Sequence[Message], i: int) -> Iterator[Segment]:
    if i == 0 or not isinstance(msgs[i - 1], ToolMessage):
        yield _tpl(IM_START + "user")
    yield _tpl("\n<tool_response>\n")
    yield _data(msgs[i].content)
    yield _tpl("\n</tool_response>")
    if i + 1 == len(msgs) or not isinstance(msgs[i + 1], ToolMessage):
        yield _tpl(IM_END + "\n")
