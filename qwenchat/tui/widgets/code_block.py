"""A fenced code block that can grow line by line at a bounded cost per redraw.

Highlighting 600 lines in one go stalls the UI thread, so the block is split into
chunks of :data:`CHUNK_LINES` lines, each a widget of its own. Only the last, partial
chunk is redrawn as the block grows, in plain text; highlighted chunks join into
widgets of :data:`GROUP_LINES` lines, as every widget of the block costs in layout.
The last chunk's height grows :data:`GROW_LINES` lines at a time (blank lines below
the code until it fills them), because every change of height lays the whole screen
out and, the view following the reply, redraws all of it. A chunk is highlighted
once, when it is full (or when the block closes), at most one chunk per redraw: when
many fill at once (a fast model, a stored reply) the rest are shown plain and
highlighted one at a time, each in a turn of the event loop of its own
(:attr:`CodeBlock.highlighted` tells when all are).
"""

from __future__ import annotations

from collections import deque

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.highlight import highlight
from textual.widgets import Label, Static

CHUNK_LINES = 10
GROW_LINES = 5  # CHUNK_LINES is a multiple of it: a full chunk has no blank lines
GROUP_LINES = 40  # highlighted chunks join up to this many lines a widget


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

    def __init__(self, language: str = "", code: str | None = None) -> None:
        """``code``: the whole block, when it is known already (it is shown closed)."""
        super().__init__()
        self._given = code
        self.language = language.split()[0] if language.strip() else ""
        self.code = ""
        self.closed = False
        self._chunks: list[Static] = []
        self._full = 0  # offset in the body where the last chunk starts
        self._last_lines = 0  # lines the last chunk takes on screen
        self._unhighlighted: deque[tuple[Static, str]] = deque()  # full chunks shown plain
        # Full chunks highlighted, with what they show and how many lines: they join up to
        # GROUP_LINES lines a widget (Textual lays out every widget of a growing block).
        self._joined: dict[Static, tuple[Content, int]] = {}
        self._draining = False  # a turn to highlight the next of them is coming

    def compose(self) -> ComposeResult:
        if self.language:
            yield Label(self.language, classes="language")

    def on_mount(self) -> None:
        if self._given is not None:
            self.close(self._given)

    @property
    def highlighted(self) -> bool:
        """Whether every full chunk (and, once closed, the last one) is highlighted."""
        return not self._unhighlighted

    def show(self, body: str) -> None:
        """Show ``body``: the block's text so far, which only grows."""
        lines = body[self._full :].split("\n")
        while len(lines) > CHUNK_LINES:  # the last chunk is full: a new one starts
            part = "\n".join(lines[:CHUNK_LINES])
            self._chunk().update(Content(part), layout=self._last_lines != CHUNK_LINES)
            self._unhighlighted.append((self._chunks[-1], part))
            self._full += len(part) + 1
            del lines[:CHUNK_LINES]
            self._chunks.append(Static())
            self.mount(self._chunks[-1])
            self._last_lines = 0
        height = -(-len(lines) // GROW_LINES) * GROW_LINES
        shown = "\n".join(lines) + "\n" * (height - len(lines))
        self._chunk().update(Content(shown), layout=height != self._last_lines)
        self._last_lines = height
        if self._unhighlighted:
            self._highlight_next()

    def close(self, body: str) -> None:
        """The fence closed with ``body`` inside: highlight the last chunk too."""
        self.code = body.removesuffix("\n")
        self.closed = True
        self.show(self.code)
        if len(self._chunks) > 1 and self._full > len(self.code):
            # The code ends with a full chunk: the one begun for the next line stays empty.
            # Hidden at once: its removal waits for a turn of the event loop.
            empty = self._chunks.pop()
            empty.display = False
            empty.remove()
            return
        last = self.code[self._full :]
        self._chunk().update(self._highlight(last), layout=last.count("\n") + 1 != self._last_lines)

    def _chunk(self) -> Static:
        """The last chunk, the one that grows."""
        if not self._chunks:
            self._chunks.append(Static())
            self.mount(self._chunks[-1])
        return self._chunks[-1]

    def _highlight_next(self) -> None:
        """Highlight the oldest full chunk still plain, joining it to the highlighted chunk
        above if that has room; the next one in a later turn."""
        chunk, part = self._unhighlighted.popleft()
        content = self._highlight(part)
        index = self._chunks.index(chunk)
        above = self._chunks[index - 1] if index else None
        if above in self._joined and self._joined[above][1] < GROUP_LINES:
            joined, lines = self._joined[above]
            self._joined[above] = (Content("\n").join([joined, content]), lines + CHUNK_LINES)
            above.update(self._joined[above][0])
            del self._chunks[index]
            chunk.display = False  # at once: its removal waits for a turn of the event loop
            chunk.remove()
        else:
            self._joined[chunk] = (content, CHUNK_LINES)
            chunk.update(content, layout=False)
        if self._unhighlighted and not self._draining:
            self._draining = True
            self.call_later(self._drain)

    def _drain(self) -> None:
        self._draining = False
        if self._unhighlighted:
            self._highlight_next()

    def _highlight(self, code: str) -> Content:
        return highlight(code, language=self.language or "text")
