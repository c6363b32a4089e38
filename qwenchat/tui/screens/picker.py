"""Choosing one of a list: a persona, a model, or yes and no."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from qwenchat.safetext import shown


class PickerScreen(ModalScreen[str | None]):
    """Returns the chosen option's id, or None (Esc)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self, title: str, options: list[tuple[str, str | Text]], current: str | None = None
    ):
        """``options``: (id, label) pairs; ``current`` is highlighted first. A ``str`` label
        is plain text (it quotes messages and file names: inert, never markup); a
        ``Text`` one is styled by the caller."""
        super().__init__()
        self.title_text = title
        self.options = options
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(Text(shown(self.title_text)), id="title")  # may quote a title
            labels = [(k, v if isinstance(v, Text) else Text(shown(v))) for k, v in self.options]
            yield OptionList(*(Option(label, id=key) for key, label in labels))

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        ids = [key for key, _ in self.options]
        if self.current in ids:
            options.highlighted = ids.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
