"""Files in the conversation: the ones waiting to go with the next message (above the
input), and the ones a message carried (collapsed above its bubble)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Collapsible, Static

from qwenchat.chatml import Attachment
from qwenchat.safetext import shown


def _names(attachments: Sequence[Attachment]) -> str:
    return ", ".join(shown(a.name) for a in attachments)


class PendingFiles(Static):
    """The files ``/file`` added, sent with the next message; hidden when there are none."""

    def show(self, attachments: Sequence[Attachment], tokens: int | None) -> None:
        self.display = bool(attachments)
        if attachments:
            size = f", {tokens:,} tokens" if tokens is not None else ""
            when = "sent with your next message (/file clear drops them)"
            self.update(Content(f"📎 {_names(attachments)}{size}: {when}"))


class AttachedFiles(Collapsible):
    """A message's files, collapsed: their names as the title, their text inside."""

    DEFAULT_CLASSES = "attachments"

    def __init__(self, attachments: Sequence[Attachment]) -> None:
        count = len(attachments)
        title = f"📎 {count} file{'s' if count > 1 else ''}: {_names(attachments)}"
        super().__init__(title=title, collapsed=True)
        self.attachments = list(attachments)

    def compose(self) -> ComposeResult:
        for attachment in self.attachments:
            yield Static(Content(f"{shown(attachment.name)} ({attachment.kind})"), classes="name")
            yield Static(Content(shown(attachment.text)), classes="text")
