"""A streamed assistant reply: Markdown that grows as the model writes, at a bounded cost.

The decoder's thread calls :meth:`ReplyView.feed` for every delta; that only appends
to a buffer. A timer on the UI thread drains the buffer every :data:`FLUSH_INTERVAL`,
so the Markdown parser runs about fifteen times a second however fast the model is.

Textual's streaming Markdown re-parses and re-highlights the last block on every
append, which makes an open code fence quadratic in its length, and highlighting a
long block in one go stalls the UI. So a reply is a column of segments: prose goes
to a :class:`~textual.widgets.Markdown` widget through its ``MarkdownStream``, and
each fenced code block to a :class:`~qwenchat.tui.widgets.code_block.CodeBlock`,
which grows line by line and highlights a chunk at a time.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass

from textual.containers import Vertical
from textual.widgets import Markdown
from textual.widgets._markdown import MarkdownStream

from qwenchat.tui.widgets.code_block import CodeBlock

FLUSH_INTERVAL = 1 / 15
"""Seconds between redraws of a streaming reply (coalesces the deltas that arrive meanwhile)."""

_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")


@dataclass(frozen=True)
class FenceOpened:
    start: int  # offset of the opening line
    body: int  # offset just after it
    info: str


@dataclass(frozen=True)
class FenceClosed:
    start: int  # offset of the closing line
    end: int  # offset just after it


class FenceTracker:
    """Finds, line by line, where Markdown code fences open and close in growing text."""

    def __init__(self) -> None:
        self.open: FenceOpened | None = None
        self._marker = ""
        self._scanned = 0  # offset of the first line not yet looked at

    def scan(self, text: str) -> list[FenceOpened | FenceClosed]:
        """The fences that opened or closed in the complete lines added to ``text``
        since the last call, in order."""
        found: list[FenceOpened | FenceClosed] = []
        while (end := text.find("\n", self._scanned)) != -1:
            start, self._scanned = self._scanned, end + 1
            match = _FENCE.fullmatch(text, start, end)
            if match is None:
                continue
            marker, info = match.groups()
            if self.open is None:
                if not (marker[0] == "`" and "`" in info):
                    self.open = FenceOpened(start, end + 1, info.strip())
                    self._marker = marker
                    found.append(self.open)
            elif (
                marker[0] == self._marker[0]
                and len(marker) >= len(self._marker)
                and not info.strip()
            ):
                self.open = None
                found.append(FenceClosed(start, end + 1))
        return found

    def settled(self, text: str) -> int:
        """Where the prose that is safe to render ends: before an unfinished last line
        that may yet open a fence, else at the end of ``text``."""
        if text[self._scanned :].lstrip(" \t")[:1] in ("`", "~"):
            return self._scanned
        return len(text)


class ReplyView(Vertical):
    """An assistant reply: Markdown prose and code blocks, streamed or shown whole."""

    DEFAULT_CSS = """
    ReplyView { height: auto; }
    ReplyView > Markdown { margin: 0; padding: 0; }
    """

    def __init__(self, text: str = "", *, complete: bool = False) -> None:
        """``text``: what the reply starts with; ``complete``: it is all there is (a
        stored reply), so it is shown at once and the view takes no more text."""
        super().__init__()
        self._complete = complete
        self.text = ""
        """What the model has written, as far as it has been shown."""
        self._pending: list[str] = [text] if text else []
        self._lock = threading.Lock()
        self._fences = FenceTracker()
        self._fed = 0  # how much of ``text`` has gone into segments
        self._markdown: MarkdownStream | None = None
        self._streams: list[MarkdownStream] = []
        self._code: CodeBlock | None = None
        self._finished = False
        # The timer runs flush() in a task of its own: a flush must not interleave with
        # finish()'s, nor be cancelled half-way by stopping the timer.
        self._flushing = asyncio.Lock()

    @property
    def code_blocks(self) -> list[CodeBlock]:
        return list(self.query_children(CodeBlock))

    async def on_mount(self) -> None:
        self._timer = self.set_interval(FLUSH_INTERVAL, self.flush)
        if self._complete:
            await self.finish()

    def feed(self, delta: str) -> None:
        """Add text the model wrote; safe to call from any thread."""
        with self._lock:
            self._pending.append(delta)

    async def flush(self) -> None:
        """Show what arrived since the last flush."""
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        with self._lock:
            new, self._pending = "".join(self._pending), []
        if not new:
            return
        self.text += new
        for event in self._fences.scan(self.text):
            if isinstance(event, FenceOpened):
                await self._prose(self.text[self._fed : event.start])
                self._code = CodeBlock(event.info)
                await self.mount(self._code)
                self._fed = event.body
            elif self._code is not None:
                self._code.close(self.text[self._fed : event.start])
                self._code, self._markdown, self._fed = None, None, event.end
        if self._code is not None:
            self._code.show(self.text[self._fed :])
        else:
            settled = self._fences.settled(self.text)
            await self._prose(self.text[self._fed : settled])
            self._fed = max(self._fed, settled)

    async def _prose(self, text: str) -> None:
        if not text.strip() and self._markdown is None:
            return
        if self._markdown is None:
            widget = Markdown()
            await self.mount(widget)
            self._markdown = Markdown.get_stream(widget)
            self._streams.append(self._markdown)
        await self._markdown.write(text)

    async def finish(self) -> None:
        """The reply is complete: show the rest and stop redrawing."""
        if self._finished:
            return
        self._finished = True
        async with self._flushing:  # after a flush the timer is running
            self._timer.stop()
            await self._flush()
            if self._code is not None:  # the reply ended inside a fence
                self._code.close(self.text[self._fed :])
            else:
                await self._prose(self.text[self._fed :])
            self._fed = len(self.text)
        for stream in self._streams:
            await stream.stop()
