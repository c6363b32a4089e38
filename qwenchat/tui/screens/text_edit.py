"""Editing a text in a dialog: the system prompt, the last message, a session's title."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, TextArea


class TextEditScreen(ModalScreen[str | None]):
    """Returns the edited text (Ctrl+S or Save), or None (Esc or Cancel)."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, title: str, text: str, *, single_line: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.text = text
        self.single_line = single_line

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="-single" if self.single_line else ""):
            yield Label(self.title_text, id="title")
            yield TextArea(self.text, id="editor", soft_wrap=True)
            with Horizontal(id="buttons"):
                yield Button("Save [Ctrl+S]", id="save", variant="primary")
                yield Button("Cancel [Esc]", id="cancel")

    def on_mount(self) -> None:
        editor = self.query_one(TextArea)
        editor.focus()
        editor.move_cursor(editor.document.end)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_save() if event.button.id == "save" else self.action_cancel()

    def action_save(self) -> None:
        text = self.query_one(TextArea).text
        self.dismiss(" ".join(text.split()) if self.single_line else text)

    def action_cancel(self) -> None:
        self.dismiss(None)
