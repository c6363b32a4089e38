"""F1: the keys and the slash commands."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from qwenchat.tui.commands import COMMANDS

EDITING_KEYS = [
    ("Enter", "Send the message"),
    ("Ctrl+J / Shift+Enter", "New line in the message (Shift+Enter where the terminal reports it)"),
    ("Ctrl+P", "Command palette"),
    ("Tab / Shift+Tab", "Move between the input, the conversation and the sidebar"),
    ("n / r / d in the sidebar", "New, rename, delete a session"),
]


def help_table() -> Table:
    table = Table(box=None, show_header=False, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(style="bold cyan")
    table.add_column()
    for key, what in EDITING_KEYS:
        table.add_row(key, "", what)
    for command in COMMANDS:
        name = f"/{command.name}" + (escape(f" [{command.argument}]") if command.argument else "")
        table.add_row(command.key, name, command.help)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Keys and commands  [dim](Esc closes)[/]", id="title")
            with VerticalScroll():
                yield Static(help_table())
