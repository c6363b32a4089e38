"""The scrolling column of a conversation; it follows a reply unless the user scrolled up.

It also streams replies: a thread worker walks the reply's events, feeding text
straight to the reply widget's buffer (no message per token) and handing every other
event to the UI thread, waiting for it, so text and panels keep their order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from textual import work
from textual.containers import VerticalScroll
from textual.message import Message as UIMessage
from textual.widget import Widget

from qwenchat.agent import (
    Event,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallRecord,
    ToolCallStarted,
)
from qwenchat.chatml import AssistantMessage, Attachment, Message, ToolMessage, UserMessage
from qwenchat.errors import QwenchatError
from qwenchat.safetext import shown
from qwenchat.tui.widgets.attachments import AttachedFiles
from qwenchat.tui.widgets.messages import (
    AssistantBubble,
    NoteLine,
    ToolCallPanel,
    UserBubble,
    describe_figures,
)

if TYPE_CHECKING:
    from qwenchat.chat import Reply, ReplyStream


class Conversation(VerticalScroll):
    """Messages, tool calls and notes, oldest first."""

    class ReplyEnded(UIMessage):
        """A reply ended (done or stopped); ``context_used``: tokens the chat now fills."""

        def __init__(self, reply: Reply, context_used: int) -> None:
            super().__init__()
            self.reply = reply
            self.context_used = context_used

    class ReplyFailed(UIMessage):
        """A reply failed; what was written of it stays on screen."""

        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    class PromptRead(UIMessage):
        """How far the engine has read a long prompt: ``done`` of ``total`` tokens."""

        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done = done
            self.total = total

    def on_mount(self) -> None:
        self.anchor()  # Textual releases it when the user scrolls up, and restores it at the end

    async def show_history(self, messages: list[Message]) -> None:
        """Replace what is shown with ``messages`` (the system prompt is not shown)."""
        await self.remove_children()
        widgets: list[Widget] = []
        # A stored call has no id: the tool messages after a reply answer its calls in order.
        unanswered: list[ToolCallPanel] = []
        answered: list[tuple[ToolCallPanel, ToolCallRecord]] = []
        for message in messages:
            if isinstance(message, UserMessage):
                if message.attachments:
                    widgets.append(AttachedFiles(message.attachments))
                widgets.append(UserBubble(message.content))
            elif isinstance(message, AssistantMessage):
                if message.content.strip() or not message.tool_calls:
                    widgets.append(AssistantBubble(shown(message.content), complete=True))
                unanswered = [ToolCallPanel("", c.name, c.arguments) for c in message.tool_calls]
                widgets += unanswered
            elif isinstance(message, ToolMessage) and unanswered:
                panel = unanswered.pop(0)
                panel.call_id = message.tool_call_id or ""
                record = ToolCallRecord(
                    id=panel.call_id,
                    name=message.name or panel.tool_name,
                    arguments=None,
                    status=message.status or "ok",  # not recorded before the store's v2
                    result=message.content,
                    duration_s=message.duration_s or 0.0,
                )
                answered.append((panel, record))
        await self.mount_all(widgets)
        for panel, record in answered:
            panel.finish(record)
        self.anchor()

    async def add_user(self, text: str, files: Sequence[Attachment] = ()) -> UserBubble:
        bubble = UserBubble(text)
        if files:
            await self.mount(AttachedFiles(files))
        await self.mount(bubble)
        self.anchor()  # sending a message brings the view back to the end
        return bubble

    async def start_reply(self) -> AssistantBubble:
        bubble = AssistantBubble()
        await self.mount(bubble)
        return bubble

    async def add_tool_call(self, call_id: str, name: str, arguments: object) -> ToolCallPanel:
        panel = ToolCallPanel(call_id, name, arguments)
        await self.mount(panel)
        return panel

    async def finish_tool_call(self, record: ToolCallRecord) -> None:
        """Show a call's outcome, in its panel (a call refused before it ran has none yet)."""
        pending = [p for p in self.query(ToolCallPanel) if p.call_id == record.id and p.pending]
        panel = (
            pending[-1]
            if pending
            else await self.add_tool_call(record.id, record.name, record.arguments)
        )
        panel.finish(record)

    async def add_note(self, text: str, *, error: bool = False) -> None:
        await self.mount(NoteLine(text, error=error))

    async def stream_reply(
        self, stream: ReplyStream, *, tir: bool, measure: Callable[[], int]
    ) -> None:
        """Show ``stream``'s reply as it is written; :class:`ReplyEnded` or
        :class:`ReplyFailed` follows. ``measure`` (run in the worker) counts the context.

        In TIR mode the code and its output are blocks of the reply's own text, so its
        code runs get no panels (the footer counts them) and a notice does not split
        the reply (it becomes a notification).
        """
        self._run(stream, await self.start_reply(), tir, measure)

    @work(thread=True, group="reply")
    def _run(
        self, stream: ReplyStream, bubble: AssistantBubble, tir: bool, measure: Callable[[], int]
    ) -> None:
        call = self.app.call_from_thread

        def reading(done: int, total: int) -> None:
            self.post_message(self.PromptRead(done, total))  # thread-safe

        try:
            for event in stream.events(on_prompt=reading):
                if isinstance(event, TextDelta):  # the model's or the sandbox's: inert
                    bubble.reply.feed(shown(event.text))
                elif tir and isinstance(event, Notice):
                    call(self.app.notify, event.text)
                elif not tir:
                    bubble = call(self._show_event, event, bubble)
            used = measure()
        except Exception as exc:  # the app must outlive any failure of a reply
            error = str(exc) if isinstance(exc, QwenchatError) else f"{type(exc).__name__}: {exc}"
            call(self._failed, bubble, error)
            return
        assert stream.reply is not None
        call(self._ended, bubble, stream.reply, used)

    async def _show_event(self, event: Event, bubble: AssistantBubble) -> AssistantBubble:
        """Show a tool call or a notice after the text so far; the text that follows
        goes into a new bubble below it."""
        await self._close(bubble)
        if isinstance(event, ToolCallStarted):
            await self.add_tool_call(event.id, event.name, event.arguments)
        elif isinstance(event, ToolCallFinished):
            await self.finish_tool_call(event.record)
        elif isinstance(event, Notice):
            await self.add_note(event.text)
        return await self.start_reply()

    async def _close(self, bubble: AssistantBubble) -> None:
        await bubble.finish()
        if not bubble.text.strip():
            await bubble.remove()

    async def _ended(self, bubble: AssistantBubble, reply: Reply, used: int) -> None:
        await bubble.finish(describe_figures(reply), stopped=reply.finish_reason == "cancelled")
        self.post_message(self.ReplyEnded(reply, used))

    async def _failed(self, bubble: AssistantBubble, error: str) -> None:
        await self._close(bubble)
        self.post_message(self.ReplyFailed(error))

    def copyable(self) -> list[tuple[str, str]]:
        """What can be copied, oldest first: (what, text) for each message and each
        finished code block of a reply."""
        found: list[tuple[str, str]] = []
        for child in self.children:
            if isinstance(child, UserBubble):
                found.append(("you", child.text))
            elif isinstance(child, AssistantBubble) and child.text.strip():
                found.append(("reply", child.text))
                for block in child.reply.code_blocks:
                    if block.closed:
                        found.append((f"code {block.language}".rstrip(), block.code))
        return found

    @property
    def last_reply(self) -> AssistantBubble | None:
        replies = self.query(AssistantBubble)
        return replies.last() if replies else None
