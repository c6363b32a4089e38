"""Asking the user before a tool runs: once, always (for this session), or deny."""

from __future__ import annotations

from typing import Any

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from qwenchat.agent import Approval
from qwenchat.safetext import shown, shown_json


class ApprovalScreen(ModalScreen[Approval]):
    """Shows the tool, its arguments (code highlighted) and the sandbox; returns the answer."""

    BINDINGS = [
        Binding("y", "answer('once')", "Run once"),
        Binding("a", "answer('always')", "Always"),
        Binding("n,escape", "answer('deny')", "Deny"),
    ]

    def __init__(self, tool: str, arguments: dict[str, Any], sandbox: str) -> None:
        super().__init__()
        self.tool = tool
        self.arguments = arguments
        self.sandbox = sandbox

    def compose(self) -> ComposeResult:
        # The model wrote the name and the arguments: control characters inert, no markup.
        code = self.arguments.get("code")
        if isinstance(code, str) and len(self.arguments) == 1:
            body: Any = Syntax(shown(code), "python", theme="ansi_dark", line_numbers=True)
        else:
            body = Syntax(shown_json(self.arguments, indent=2), "json")
        with Vertical(id="dialog"):
            title = Content.from_markup(
                "The model wants to run [b]$tool[/b]", tool=shown(self.tool)
            )
            yield Label(title, id="title")
            with VerticalScroll(id="arguments"):
                yield Static(body)
            yield Label(self.sandbox, id="sandbox")
            with Horizontal(id="buttons"):
                yield Button("Run once [y]", id="once", variant="primary")
                yield Button("Always in this session [a]", id="always")
                yield Button("Deny [n]", id="deny", variant="error")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_answer(event.button.id or "deny")

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer if answer in ("once", "always") else "deny")  # type: ignore[arg-type]
