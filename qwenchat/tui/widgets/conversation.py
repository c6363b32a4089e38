"""The scrolling column of a conversation; it follows a reply unless the user scrolled up."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widget import Widget

from qwenchat.agent import ToolCallRecord
from qwenchat.chatml import AssistantMessage, Message, ToolMessage, UserMessage
from qwenchat.tui.widgets.messages import AssistantBubble, NoteLine, ToolCallPanel, UserBubble


class Conversation(VerticalScroll):
    """Messages, tool calls and notes, oldest first."""

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
                widgets.append(UserBubble(message.content))
            elif isinstance(message, AssistantMessage):
                if message.content.strip() or not message.tool_calls:
                    widgets.append(AssistantBubble(message.content, complete=True))
                unanswered = [ToolCallPanel("", c.name, c.arguments) for c in message.tool_calls]
                widgets += unanswered
            elif isinstance(message, ToolMessage) and unanswered:
                panel = unanswered.pop(0)
                panel.call_id = message.tool_call_id or ""
                record = ToolCallRecord(
                    id=panel.call_id,
                    name=message.name or panel.tool_name,
                    arguments=None,
                    status="ok",
                    result=message.content,
                )
                answered.append((panel, record))
        await self.mount_all(widgets)
        for panel, record in answered:
            panel.finish(record)
        self.anchor()

    async def add_user(self, text: str) -> UserBubble:
        bubble = UserBubble(text)
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

    @property
    def last_reply(self) -> AssistantBubble | None:
        replies = self.query(AssistantBubble)
        return replies.last() if replies else None
