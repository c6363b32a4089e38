"""Where the user writes: Enter sends, Ctrl+J (or Shift+Enter where the terminal reports
it) starts a new line, and a multi-line paste goes in as it is."""

from __future__ import annotations

import os
from pathlib import Path

from textual import events
from textual.message import Message
from textual.widgets import TextArea


class PromptInput(TextArea):
    """A multi-line input that posts :class:`Submitted` on Enter."""

    NEWLINE_KEYS = ("ctrl+j", "shift+enter")

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class PathChoices(Message):
        """Tab after ``/file`` found several paths: ``choices`` (names, dirs end in /)."""

        def __init__(self, choices: list[str]) -> None:
            super().__init__()
            self.choices = choices

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        self.placeholder = "Message (Enter sends, Ctrl+J new line, / for commands)"

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "tab" and self.text.startswith(FILE_COMMAND):
            event.stop()
            event.prevent_default()
            completed, choices = complete_path(self.text[len(FILE_COMMAND) :])
            self.text = FILE_COMMAND + completed
            self.move_cursor(self.document.end)
            if len(choices) > 1:
                self.post_message(self.PathChoices(choices))
            return
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            if self.text.strip():
                self.post_message(self.Submitted(self.text))
            return
        if event.key in self.NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        await super()._on_key(event)


FILE_COMMAND = "/file "


def complete_path(partial: str) -> tuple[str, list[str]]:
    """Tab completion of a path: ``partial`` extended as far as every match agrees (a
    directory gets its ``/``), and the names that match when more than one does."""
    directory, slash, stem = partial.rpartition("/")
    base = Path((directory or "/") if slash else ".").expanduser()
    try:
        entries = sorted(p for p in base.iterdir() if p.name.startswith(stem))
    except OSError:
        return partial, []
    if not stem.startswith("."):
        entries = [p for p in entries if not p.name.startswith(".")]
    names = [p.name + ("/" if p.is_dir() else "") for p in entries]
    if not names:
        return partial, []
    common = os.path.commonprefix(names)  # noqa: RUF071 - of names, a character at a time
    return directory + slash + common, names if len(names) > 1 else []
