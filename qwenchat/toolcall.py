"""An incremental parser for Qwen2.5 (Hermes-style) tool calls in a streamed reply.

Qwen2.5 calls functions by writing blocks like::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

:class:`ToolCallParser` takes the reply as text deltas of any size and turns it
into :class:`TextEvent` s (text for the user, emitted as soon as it cannot be
the start of a tag) and :class:`CallEvent` s (one per block, in order). It never
raises on model output: a block that cannot be read becomes a call with
:attr:`ParsedCall.error` set, a message meant to be sent back to the model.

Event semantics:

* Tag markup (``<tool_call>``, ``</tool_call>``, even a stray closing tag) is
  never emitted. Only a suffix that is a proper prefix of a tag is held back
  (``"a <to"`` waits, ``"a <b"`` goes out); at :meth:`~ToolCallParser.finish`
  a held partial tag that never completed is emitted as text.
* Whitespace-only text after a call (up to the next ``<tool_call>`` or the end
  of the reply) is dropped: it is the model's separator between blocks. Other
  text, including whitespace before the first call, is emitted verbatim.
* A block still open at the end of the reply is parsed as if closed (a
  truncated ``</tool_c`` is ignored); a ``<tool_call>`` inside an open block
  closes it and starts the next one (small models forget ``</tool_call>``).
* Block contents are JSON ``{"name": ..., "arguments": {...}}``, also accepted:
  ``"parameters"`` for ``"arguments"``, missing arguments (``{}``), arguments as
  a JSON string holding an object, an OpenAI-style ``{"function": {...}}``
  wrapper, a code fence, and whatever ``json_repair`` can mend (trailing
  commas, single quotes, unquoted keys, Python literals).

Bare JSON fallback (``bare_json=True`` and at least one known tool): small
models sometimes answer with nothing but ``{"name": ..., "arguments": ...}``,
a list of such objects, or either inside a code fence with an empty or
``json`` language. A reply whose first non-whitespace text opens an object,
a list or a fence is held back (nothing is emitted) until it can no longer be
a bare call -- something other than whitespace (or the closing fence) follows
the value's closing bracket, the fence has another language, and so on -- at
which point everything held is processed as ordinary text. If the reply ends
while still held, it becomes calls when it parses as one object (or a
non-empty list of objects) naming only known tools, and text otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

import json_repair

from qwenchat.chatml import ToolCall

__all__ = ["CallEvent", "Event", "ParsedCall", "TextEvent", "ToolCallParser", "parse_reply"]

_OPEN = "<tool_call>"
_CLOSE = "</tool_call>"
_FENCE = "```"
_EXPECTED = 'expected {"name": <function-name>, "arguments": <args-json-object>}'

# Before a bare value: whitespace and an optional fence opening, complete or still growing.
_LEAD_DONE = re.compile(r"\s*(?:```[ \t]*(?:json)?[ \t]*\n\s*)?", re.IGNORECASE)
_LEAD_PARTIAL = re.compile(r"\s*(?:`{1,3}|```[ \t]*(?:j(?:s(?:on?)?)?)?[ \t]*)?", re.IGNORECASE)
_BRACKET = re.compile(r"[{\[]")
_CALL_KEYS = frozenset({"arguments", "parameters", "function"})


@dataclass(frozen=True, slots=True)
class ParsedCall:
    """One tool call as the model wrote it.

    ``raw`` is the block's inner text (for a bare call, its JSON). A valid call
    has ``error`` None and ``name`` and ``arguments`` set; an invalid one has a
    short, model-readable ``error`` and whatever could be read (``name`` may be
    set, ``arguments`` is None).
    """

    name: str | None
    arguments: dict[str, Any] | None
    raw: str
    error: str | None = None

    def to_tool_call(self) -> ToolCall:
        """The call as it goes into the conversation: an invalid one keeps its raw text
        (the model sees what it wrote, and the error in the tool result after it)."""
        if self.error is None and self.name is not None and self.arguments is not None:
            return ToolCall(name=self.name, arguments=self.arguments)
        return ToolCall(name=self.name or "?", arguments=self.raw)


@dataclass(frozen=True, slots=True)
class TextEvent:
    """Reply text for the user."""

    text: str


@dataclass(frozen=True, slots=True)
class CallEvent:
    """A complete tool call (valid or not)."""

    call: ParsedCall


Event = TextEvent | CallEvent


class ToolCallParser:
    """Splits one streamed reply into text and tool calls; see the module docstring.

    Call :meth:`feed` with each delta, then :meth:`finish` once; ``finish``
    also resets the parser for the next reply. ``known_tools`` only matters for
    the bare JSON fallback, which needs at least one.
    """

    def __init__(self, known_tools: Collection[str] = (), *, bare_json: bool = True) -> None:
        self._known = frozenset(known_tools)
        self._bare_json = bare_json and bool(self._known)
        self._reset()

    def _reset(self) -> None:
        self._state: Literal["text", "block", "bare", "drop"] = (
            "bare" if self._bare_json else "text"
        )
        self._held = ""  # a possible partial tag, or whitespace after a call
        self._after_call = False
        self._block: list[str] = []
        self._bare: list[str] = []
        self._scanner = _BareScanner()

    def feed(self, delta: str) -> list[Event]:
        """Consume the next piece of the reply; return the events it completes."""
        out: list[Event] = []
        self._run(delta, out)
        return out

    def finish(self) -> list[Event]:
        """End the reply: flush held text, close an open block, decide a bare call."""
        out: list[Event] = []
        if self._state == "bare":
            self._finish_bare(out)
        if self._state == "block":
            self._close_block("", out)  # a held partial "</tool_call>" is dropped
        elif self._held and not (self._after_call and self._held.isspace()):
            out.append(TextEvent(self._held))
        self._reset()
        return out

    def _run(self, data: str, out: list[Event]) -> None:
        # Each step consumes its input or changes state and returns what is left.
        while data:
            if self._state == "text":
                data = self._on_text(data, out)
            elif self._state == "block":
                data = self._on_block(data, out)
            elif self._state == "bare":
                data = self._on_bare(data, out)
            else:  # "drop": what a model writes after a bare call is its own guess of the result
                data = ""

    def _take(self, data: str) -> str:
        text = self._held + data if self._held else data
        self._held = ""
        return text

    def _on_text(self, data: str, out: list[Event]) -> str:
        text = self._take(data)
        at = _next_tag(text)
        if at < 0:
            cut = _partial_tag(text)
            if self._after_call and text[:cut].isspace():
                self._held = text  # another call may follow, which would make it droppable
            else:
                self._emit(text[:cut], out)
                self._held = text[cut:]
            return ""
        self._emit(text[:at], out)
        if text.startswith(_OPEN, at):
            self._state = "block"
            return text[at + len(_OPEN) :]
        return text[at + len(_CLOSE) :]  # a stray closing tag is markup too: dropped

    def _emit(self, text: str, out: list[Event]) -> None:
        if text and not (self._after_call and text.isspace()):
            out.append(TextEvent(text))
            self._after_call = False

    def _on_block(self, data: str, out: list[Event]) -> str:
        text = self._take(data)
        at = _next_tag(text)
        if at < 0:
            cut = _partial_tag(text)
            self._block.append(text[:cut])
            self._held = text[cut:]
            return ""
        self._close_block(text[:at], out)
        if text.startswith(_CLOSE, at):
            self._state = "text"
            self._after_call = True
            return text[at + len(_CLOSE) :]
        return text[at + len(_OPEN) :]  # "<tool_call>" again: the next block starts

    def _close_block(self, last: str, out: list[Event]) -> None:
        self._block.append(last)
        out.append(CallEvent(_parse_block("".join(self._block))))
        self._block = []

    def _on_bare(self, data: str, out: list[Event]) -> str:
        self._bare.append(data)
        if self._scanner.feed(data):
            return ""
        value = self._scanner.value_text("".join(self._bare))
        calls = _bare_calls(value, require_arguments=True) if value is not None else []
        if calls and all(call.name in self._known for call in calls):
            # A leading call with arguments, then more text (small models go on to
            # invent the result): the call counts, the rest is dropped.
            out.extend(CallEvent(call) for call in calls)
            self._bare = []
            self._state = "drop"
            return ""
        return self._release_bare()

    def _release_bare(self) -> str:
        """Stop holding: what was held is ordinary text (possibly with tagged blocks)."""
        held = "".join(self._bare)
        self._bare = []
        self._state = "text"
        return held

    def _finish_bare(self, out: list[Event]) -> None:
        held = self._release_bare()
        calls = _bare_calls(held)
        if calls and all(call.name in self._known for call in calls):
            out.extend(CallEvent(call) for call in calls)
        else:
            self._run(held, out)


def parse_reply(
    text: str, known_tools: Collection[str] = (), *, bare_json: bool = True
) -> tuple[str, list[ParsedCall]]:
    """Parse a whole reply: its visible text (not stripped) and its calls, in order."""
    parser = ToolCallParser(known_tools, bare_json=bare_json)
    events = parser.feed(text) + parser.finish()
    visible = "".join(e.text for e in events if isinstance(e, TextEvent))
    return visible, [e.call for e in events if isinstance(e, CallEvent)]


def _next_tag(text: str) -> int:
    """Index of the first ``<tool_call>`` or ``</tool_call>`` in ``text``, or -1."""
    close = text.find(_CLOSE)
    start = text.find(_OPEN, 0, close if close >= 0 else len(text))
    return start if start >= 0 else close


def _partial_tag(text: str) -> int:
    """Where a suffix of ``text`` that could begin a tag starts; ``len(text)`` if none."""
    # Each tag has one "<", its first character, so only the last "<" can begin one.
    lt = text.rfind("<", max(0, len(text) - len(_CLOSE) + 1))
    if lt >= 0 and (_OPEN.startswith(text[lt:]) or _CLOSE.startswith(text[lt:])):
        return lt
    return len(text)


class _BareScanner:
    """Watches a held reply and says, once it is fed, whether it can still be a bare call.

    The accepted shape is whitespace, an optional fence opening (an empty or
    ``json`` language), one JSON object or list, whitespace, and the closing
    fence if one was opened. The value's end is found by counting brackets
    outside (single- or double-quoted) strings, a heuristic for releasing text
    early: whether the reply really is a call is decided by parsing it.
    """

    __slots__ = ("_after", "_depth", "_escaped", "_fenced", "_lead", "_phase", "_quote")

    def __init__(self) -> None:
        self._phase: Literal["lead", "value", "after"] = "lead"
        self._lead = ""
        self._fenced = False
        self._depth = 0
        self._quote = ""
        self._escaped = False
        self._after = ""

    def feed(self, text: str) -> bool:
        """Consume more of the reply; False once it cannot be a bare call."""
        if self._phase == "lead":
            rest = self._scan_lead(text)
            if rest is None:
                return False
            text = rest
        if self._phase == "value":
            text = self._scan_value(text)
        if self._phase == "after":
            self._after += text
            tail = self._after.strip()
            return not tail or (self._fenced and _FENCE.startswith(tail))
        return True

    def value_text(self, held: str) -> str | None:
        """The held reply up to the end of its JSON value (lead included), if the value ended."""
        if self._phase != "after":
            return None
        return held[: len(held) - len(self._after)]

    def _scan_lead(self, text: str) -> str | None:
        """None if the lead is wrong; else the text from the value's first bracket on."""
        self._lead += text
        bracket = _BRACKET.search(self._lead)
        if bracket is None:
            ok = _LEAD_PARTIAL.fullmatch(self._lead) or _LEAD_DONE.fullmatch(self._lead)
            return "" if ok else None
        start = bracket.start()
        if not _LEAD_DONE.fullmatch(self._lead, 0, start):
            return None
        self._fenced = "`" in self._lead[:start]
        self._phase = "value"
        return self._lead[start:]

    def _scan_value(self, text: str) -> str:
        """Track brackets and strings; the text after the value's end, if it ended."""
        depth, quote, escaped = self._depth, self._quote, self._escaped
        for i, char in enumerate(text):
            if quote:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == quote:
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char in "{[":
                depth += 1
            elif char in "}]":
                depth -= 1
                if depth == 0:
                    self._phase = "after"
                    return text[i + 1 :]
        self._depth, self._quote, self._escaped = depth, quote, escaped
        return ""


def _parse_block(raw: str) -> ParsedCall:
    body = raw.strip()
    if not body:
        return ParsedCall(None, None, raw, f"empty tool call: {_EXPECTED}")
    return _to_call(_load(_unfence(body)), raw)


def _bare_calls(held: str, *, require_arguments: bool = False) -> list[ParsedCall]:
    """The calls a held bare reply spells, valid or not; [] if it is not objects.

    With ``require_arguments``, every object must also carry its arguments (or be
    OpenAI-style), which tells a call apart from data that merely has a "name".
    """
    body = _unfence(held.strip())
    value = _load(body)
    items = [value] if isinstance(value, dict) else value if isinstance(value, list) else []
    if not items or not all(isinstance(item, dict) for item in items):
        return []
    if require_arguments and not all(_CALL_KEYS & item.keys() for item in items):
        return []
    if isinstance(value, dict):
        return [_to_call(value, body)]
    return [_to_call(item, json.dumps(item, ensure_ascii=False)) for item in items]


def _unfence(text: str) -> str:
    """``text`` without a surrounding code fence (the first line is the fence's)."""
    if not text.startswith(_FENCE):
        return text
    language, newline, body = text[len(_FENCE) :].partition("\n")
    if not newline:  # no language line: "```{...}```"
        body = language
    return body.rstrip().removesuffix(_FENCE).strip()


def _load(text: str) -> Any:
    """Decode JSON, repairing what models break; ``""`` when nothing can be read."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return json_repair.loads(text, skip_json_loads=True)
    except Exception:
        return ""


def _to_call(value: Any, raw: str) -> ParsedCall:
    if not isinstance(value, dict):
        return ParsedCall(
            None, None, raw, f"could not parse the tool call as JSON: {_excerpt(raw)}"
        )
    if isinstance(
        value.get("function"), dict
    ):  # OpenAI style: {"type": "function", "function": {...}}
        value = value["function"]
    name = value.get("name")
    if name is None or name == "":
        return ParsedCall(None, None, raw, f'tool call has no "name": {_EXPECTED}')
    if not isinstance(name, str):
        return ParsedCall(None, None, raw, 'tool call "name" must be a string')
    arguments = _arguments(value)
    if arguments is None:
        return ParsedCall(name, None, raw, 'tool call "arguments" must be a JSON object')
    return ParsedCall(name, arguments, raw)


def _arguments(call: dict[str, Any]) -> dict[str, Any] | None:
    """The call's arguments as an object (missing means none); None if they are not one."""
    arguments = call["arguments"] if "arguments" in call else call.get("parameters")
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, str):  # some models JSON-encode the arguments object
        arguments = _load(arguments)
    return arguments if isinstance(arguments, dict) else None


def _excerpt(raw: str, limit: int = 80) -> str:
    text = " ".join(raw.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
