"""The pieces of a conversation on screen: user and assistant messages, tool calls, notes."""

from __future__ import annotations

from typing import Any

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Collapsible, Label, Static

from qwenchat.agent import ToolCallRecord
from qwenchat.chat import Reply
from qwenchat.safetext import shown, shown_json
from qwenchat.tui.widgets.reply import ReplyView

PYTHON_TOOL = "python"
_RESULT_CHARS = 4000  # a tool result longer than this is cut in the panel (the model saw it all)


def describe_figures(reply: Reply) -> str:
    """The footer of a finished reply: what it took, and its answer if it has one."""
    usage, timings = reply.usage, reply.timings
    parts = [
        f"{usage.completion_tokens} tokens",
        f"{timings.decode_tokens_per_s:.1f} tok/s",
        f"first token {timings.ttft_s:.2f} s",
        f"{timings.total_s:.1f} s",
    ]
    if reply.rounds > 1:
        parts.append(f"{reply.rounds} rounds")
    if reply.tool_calls:
        took = sum(call.duration_s for call in reply.tool_calls)
        runs = len(reply.tool_calls)
        parts.append(f"{runs} tool run{'s' if runs > 1 else ''} in {took:.2f} s")
    if reply.answer:
        parts.append(f"answer: {shown(reply.answer)}")
    if reply.samples is not None:
        agreed = f"{reply.votes}/{reply.samples} samples agree" if reply.answer else "no answer"
        parts.append(f"{agreed} (/samples)")
    return " · ".join(parts)


class UserBubble(Static):
    """What the user wrote, as typed (not Markdown: no surprises from stray asterisks).

    Shown with control characters inert (an imported session may hold any); ``text``
    stays exact.
    """

    DEFAULT_CLASSES = "message"

    def __init__(self, text: str) -> None:
        super().__init__(shown(text), markup=False)
        self.text = text


class AssistantBubble(Vertical):
    """A reply: its text (streamed or whole) and, once it ends, a line of figures."""

    DEFAULT_CLASSES = "message"

    def __init__(self, text: str = "", *, complete: bool = False) -> None:
        super().__init__()
        self.reply = ReplyView(text, complete=complete)
        self.footer = Label("", classes="figures")

    def compose(self) -> ComposeResult:
        yield self.reply
        yield self.footer

    @property
    def text(self) -> str:
        return self.reply.text

    async def finish(self, figures: str = "", *, stopped: bool = False) -> None:
        """The reply ended: render the rest; a stopped reply is marked as such."""
        await self.reply.finish()
        if stopped:
            self.add_class("-stopped")
            figures = f"⏹ stopped by you · {figures}" if figures else "⏹ stopped by you"
        self.footer.update(figures)


def _short(arguments: Any) -> str:
    text = shown_json(arguments)
    return text if len(text) <= 60 else text[:59] + "…"


def _shown_arguments(name: str, arguments: Any) -> Static:
    code = arguments.get("code") if isinstance(arguments, dict) else None
    if name == PYTHON_TOOL and isinstance(code, str):
        syntax = Syntax(shown(code), "python", theme="ansi_dark", word_wrap=True)
        return Static(syntax, classes="arguments")
    return Static(shown_json(arguments), classes="arguments", markup=False)


def _title(mark: str, name: str, rest: str) -> Content:
    """A panel's title: the model wrote the name and the arguments, so both are text,
    never markup."""
    return Content(f"{mark} {shown(name)} {rest}")


class ToolCallPanel(Collapsible):
    """A tool call, collapsed to one line: its arguments, then its result or error and
    how long it took."""

    def __init__(self, call_id: str, name: str, arguments: Any) -> None:
        super().__init__(
            _shown_arguments(name, arguments),
            title=_title("⚙", name, f"{_short(arguments)} · running…"),
            collapsed=True,
            classes="tool-call",
        )
        self.tool_name = name
        self.call_id = call_id
        self._arguments = _short(arguments)
        self.pending = True

    def finish(self, record: ToolCallRecord) -> None:
        """Show the call's outcome (``record.result`` is what the model was given)."""
        self.pending = False
        ok = record.status == "ok"
        took = f", {record.duration_s:.2f} s" if record.duration_s else ""
        arguments = _short(record.arguments) if record.arguments is not None else self._arguments
        outcome = f"{arguments} · {record.status}{took}"
        self.title = _title("✓" if ok else "✗", self.tool_name, outcome)
        self.set_class(not ok, "-error")
        result = shown(record.result)
        if len(result) > _RESULT_CHARS:
            result = result[:_RESULT_CHARS] + f"\n… ({len(record.result)} characters in all)"
        self.query_one(Collapsible.Contents).mount(Static(result, classes="result", markup=False))


class NoteLine(Static):
    """A line from qwenchat, not the model: dropped history, a round limit, an error."""

    def __init__(self, text: str, *, error: bool = False) -> None:
        # Notes quote what went wrong, which may be a model's or a tool's words.
        super().__init__(shown(text), markup=False, classes="note -error" if error else "note")
