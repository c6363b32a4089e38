"""The main screen: Textual's, drawing a partial update at the cost of the rows it changes."""

from __future__ import annotations

from textual.screen import Screen

from qwenchat.tui.compositor import RowCompositor


class ChatScreen(Screen[None]):
    """The screen the app opens on."""

    def __init__(self) -> None:
        super().__init__(id="_default")
        self._compositor = RowCompositor()
