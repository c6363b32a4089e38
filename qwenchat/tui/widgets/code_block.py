"""A fenced code block that can grow line by line at a bounded cost per redraw.

Highlighting 600 lines in one go stalls the UI thread for about half a second, so
the block is split into chunks of :data:`CHUNK_LINES` lines: a chunk is highlighted
once, when it is full (or when the block closes), and only the last, partial chunk
is redrawn as the block grows, in plain text.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.highlight import highlight
from textual.widgets import Label, Static

CHUNK_LINES = 40


class CodeBlock(Vertical):
    """A code block of a reply; :attr:`code` is its text once the fence has closed."""

    DEFAULT_CSS = """
    CodeBlock {
        height: auto;
        background: $boost;
        padding: 0 1;
        margin: 0 0 1 0;
    }
    CodeBlock > .language { color: $text-muted; text-style: italic; }
    CodeBlock > Static { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, language: str = "") -> None:
        super().__init__()
        self.language = language.split()[0] if language.strip() else ""
        self.code = ""
        self.closed = False
        self._chunks: list[Static] = []

    def compose(self) -> ComposeResult:
        if self.language:
            yield Label(self.language, classes="language")

    def show(self, body: str) -> None:
        """Show ``body``: the block's text so far, which only grows."""
        lines = body.split("\n")
        while True:
            if not self._chunks:
                self._add_chunk()
            start = (len(self._chunks) - 1) * CHUNK_LINES
            part = lines[start : start + CHUNK_LINES]
            if len(lines) - start <= CHUNK_LINES:
                self._chunks[-1].update(Content("\n".join(part)))
                return
            self._chunks[-1].update(self._highlight(part))
            self._add_chunk()

    def close(self, body: str) -> None:
        """The fence closed with ``body`` inside: highlight the last chunk too."""
        self.code = body.removesuffix("\n")
        self.closed = True
        self.show(self.code)
        start = (len(self._chunks) - 1) * CHUNK_LINES
        self._chunks[-1].update(self._highlight(self.code.split("\n")[start:]))

    def _add_chunk(self) -> None:
        chunk = Static()
        self._chunks.append(chunk)
        self.mount(chunk)

    def _highlight(self, lines: list[str]) -> Content:
        return highlight("\n".join(lines), language=self.language or "text")
