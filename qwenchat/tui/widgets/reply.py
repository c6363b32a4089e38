"""A streamed assistant reply: Markdown that grows as the model writes, at a bounded cost.

The decoder's thread calls :meth:`ReplyView.feed` for every delta; that only appends
to a buffer. A timer on the UI thread drains the buffer every :data:`FLUSH_INTERVAL`,
so the Markdown parser runs about ten times a second however fast the model is.

Textual's streaming Markdown re-parses and re-highlights the last block on every
append, which makes an open code fence quadratic in its length, and highlighting a
long block in one go stalls the UI. So a reply is a column of segments: prose goes
to a :class:`~textual.widgets.Markdown` widget through its ``MarkdownStream``, and
each fenced code block to a :class:`~qwenchat.tui.widgets.code_block.CodeBlock`,
which grows line by line and highlights a chunk at a time.

What a redraw costs is mostly Textual's: a change of height lays out every widget on
the screen and, the view following the reply, repaints all of it (bench/tui_stream.py
measures it). So the prose widgets change height as seldom as they can: a growing
paragraph is only repainted until it needs another line, a growing list updates its
last item in place (Textual would mount the whole list again), and a table row is
shown once it is complete (Textual remounts the cells of a table's last row whenever
it changes).
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass

from markdown_it import MarkdownIt
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Markdown

from qwenchat.tui.textual_private import (
    MarkdownBlock,
    MarkdownBullet,
    MarkdownBulletList,
    MarkdownList,
    MarkdownListItem,
    MarkdownOrderedList,
    MarkdownParagraph,
    MarkdownStream,
)
from qwenchat.tui.widgets.code_block import CodeBlock
from qwenchat.tui.widgets.settled import Part, SettledLines, draw

FLUSH_INTERVAL = 1 / 10
"""Seconds between redraws of a streaming reply (coalesces the deltas that arrive meanwhile).
A redraw costs about the same however many tokens it shows, so this sets the UI's cost per
token: 1/10 s is 5 tokens a redraw at 50 tokens/s, and still reads as a smooth stream."""

_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")
_BLANK_LINES = re.compile(r"(?:[ \t]*\n)*")
SETTLE_RETRY_S = 0.05  # how often a finished part not yet laid out is looked at again
SETTLE_TRIES = 100  # and how many times, before it stays as it is (shown right, at a cost)
_LINE_SEEN = 4  # characters of a line that tell whether it begins a block (an "10. " item)


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


RESERVE_LINES = 2
"""Blank lines a growing top-level paragraph keeps below its text, so that it needs a
layout every third line it fills instead of every line."""

ROOM_LINES = 6
"""Blank lines a streaming reply keeps below what it shows. While it grows into them its
height stays the same, so a layout moves nothing outside it: the view, following the
reply, scrolls once every few lines (and repaints the whole screen then) instead of once a
line."""


class _Paragraph(MarkdownParagraph):
    """A paragraph that is only repainted, not laid out again, while it grows within the
    lines it has: a layout costs as much as the widgets on the screen, and streamed prose
    fills a line over several redraws before it needs another. A paragraph of its own
    (not in a list) also takes :data:`RESERVE_LINES` more than it needs when it grows,
    until :meth:`release` (its part is finished)."""

    _reserving = False

    def set_content(self, content: Content) -> None:
        self._content = content
        width, height = self.content_size
        if not width:  # not laid out yet
            self.update(content)
            return
        self.update(content, layout=False)
        needed = self._render().get_height(self.styles, width)
        if needed > height or (needed < height and not self._reserving):
            if isinstance(self.parent, Markdown):
                self._reserving = True
                self.styles.height = needed + RESERVE_LINES
            else:
                self.refresh(layout=True)

    def release(self) -> None:
        """Give back the reserved lines."""
        if self._reserving:
            self._reserving = False
            self.styles.height = "auto"


def _items(block: MarkdownBlock) -> list[MarkdownListItem]:
    return [item for item in block._blocks if isinstance(item, MarkdownListItem)]


def _row(item: MarkdownListItem, symbol: str) -> Horizontal:
    """What a list shows for an item: its bullet, and its blocks beside it."""
    bullet = MarkdownBullet()
    bullet.symbol = symbol
    return Horizontal(bullet, Vertical(*item._blocks))


def _list_symbols(block: MarkdownBlock) -> list[str]:
    """The bullets of a list's items. Numbers are right-aligned in at least 4 columns
    (Textual gives a list of ten items or more one column more, " 10. "): a list streams in
    a part an item, and an item shown before the tenth came must stay aligned with it."""
    items = _items(block)
    if not isinstance(block, MarkdownOrderedList):
        return [item.bullet for item in items]
    try:
        start = int(items[0].bullet) if items else 1
    except ValueError:
        start = 1
    numbers = range(start, start + len(items))
    width = max((len(f"{n}. ") for n in numbers), default=0)
    return [f"{n}. ".rjust(max(width, 4)) for n in numbers]


async def _extend_blocks(column: Vertical, blocks: list[MarkdownBlock]) -> bool:
    """Bring the mounted blocks of a list item up to ``blocks`` (the same item parsed with
    more text): update them in place, mount the new ones. False if it is not that kind of
    change (nothing has been changed then, or only what the caller's rebuild replaces)."""
    mounted = list(column.children)
    if len(blocks) < len(mounted) or any(
        type(old) is not type(new) or not isinstance(old, (MarkdownParagraph, MarkdownList))
        for old, new in zip(mounted, blocks, strict=False)
    ):
        return False
    for old, new in zip(mounted, blocks, strict=False):
        if isinstance(old, MarkdownParagraph):
            if not old._content.is_same(new._content):
                old.set_content(new._content)
            old._copy_context(new)
        elif not await _extend_list(old, new):  # type: ignore[arg-type]
            return False
    if len(blocks) > len(mounted):
        await column.mount_all(blocks[len(mounted) :])
    return True


async def _extend_list(mounted: MarkdownList, block: MarkdownBlock) -> bool:
    """Bring a mounted list up to ``block`` (the same list parsed with more text) in place:
    its last item updated, new items mounted. Textual's Markdown would remove the list and
    mount it anew, every one of its widgets, on every redraw while the list grows."""
    if type(block) is not type(mounted) or not all(
        isinstance(item, MarkdownListItem) for item in block._blocks
    ):
        return False
    rows = list(mounted.query_children(Horizontal))
    items: list[MarkdownListItem] = block._blocks  # type: ignore[assignment]
    symbols = _list_symbols(block)
    if (
        not rows
        or len(items) < len(rows)
        or [row.query_one(MarkdownBullet).symbol for row in rows] != symbols[: len(rows)]
    ):
        return False
    last = rows[-1].children[-1]
    if not isinstance(last, Vertical) or not await _extend_blocks(
        last, items[len(rows) - 1]._blocks
    ):
        return False
    new_rows = [
        _row(item, symbol)
        for item, symbol in zip(items[len(rows) :], symbols[len(rows) :], strict=True)
    ]
    if new_rows:
        await mounted.mount_all(new_rows)
    mounted._copy_context(block)
    return True


class _GrowingList:
    """What a list adds to Textual's: it grows in place (:func:`_extend_list`), and its
    bullets are :func:`_list_symbols`. A mixin, not a base: Textual takes a widget's CSS
    from its first base alone."""

    _blocks: list[MarkdownBlock]

    def compose(self) -> ComposeResult:
        yield from map(_row, _items(self), _list_symbols(self))  # type: ignore[arg-type]
        self._blocks.clear()

    async def _update_from_block(self, block: MarkdownBlock) -> None:
        if not await _extend_list(self, block):  # type: ignore[arg-type]
            await super()._update_from_block(block)  # type: ignore[misc]


class _BulletList(_GrowingList, MarkdownBulletList):
    pass


class _OrderedList(_GrowingList, MarkdownOrderedList):
    pass


_PARSER = MarkdownIt("gfm-like")
_LIST_GOES_ON = "-list-goes-on"
"""Class of a prose part that ends in a list the next part goes on with: the list keeps no
blank line below it, as its items are one list."""


def _styled(prose: Markdown, part: Part) -> Markdown:
    """``prose``, the widget of ``part``, with the classes ``part`` asks for (one source for
    the live part and for a part built again on a new width or theme)."""
    return prose.set_class(part.list_goes_on, _LIST_GOES_ON)


def _parser() -> MarkdownIt:
    """One parser for every append: Textual would build a new one each time (a tenth
    of the UI thread's work while a reply streams, measured with py-spy)."""
    return _PARSER


class _Prose(Markdown):
    """Markdown whose paragraphs and lists grow in place as the text streams in."""

    BLOCKS = {
        **Markdown.BLOCKS,
        "paragraph_open": _Paragraph,
        "bullet_list_open": _BulletList,
        "ordered_list_open": _OrderedList,
    }


def _block_starts(source: str) -> list[tuple[int, bool]]:
    """Where the top-level Markdown blocks of ``source`` begin, after the first, and where
    the items of a top-level list begin, after its first (True: the part before goes on
    with that list). What is before each is finished: nothing written after it can change
    it. A list is cut at its items so that its finished items settle while it grows: a long
    list costs every layout as many widgets as it has items otherwise."""
    blocks: set[int] = set()
    items: set[int] = set()
    for token in _PARSER.parse(source):
        if token.map and token.level == 0:
            blocks.add(token.map[0])
        elif token.map and token.level == 1 and token.type == "list_item_open":
            items.add(token.map[0])
    starts, offset, line = [], 0, 0
    for wanted in sorted(blocks | items):
        while line < wanted:
            offset = source.index("\n", offset) + 1
            line += 1
        if offset:
            starts.append((offset, wanted not in blocks))
    return starts


class ReplyView(Vertical):
    """An assistant reply: Markdown prose and code blocks, streamed or shown whole.

    The reply is a column of parts: a prose part is a Markdown widget fed through its
    ``MarkdownStream`` and holds one top-level block (a paragraph, a table, one item of
    a list...), or a few when their boundary showed late (a line first taken for a heading's
    underline); a code part is a :class:`CodeBlock`. A part that is finished is drawn
    once more and its lines join the :class:`SettledLines` above it, so that the reply
    is a few widgets, whatever its length."""

    DEFAULT_CSS = f"""
    ReplyView {{ height: auto; }}
    ReplyView > Markdown {{ margin: 0; padding: 0; }}
    ReplyView > .{_LIST_GOES_ON} > MarkdownList {{ margin-bottom: 0; }}
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
        self._fed = 0  # how much of ``text`` has gone into parts
        self._markdown: MarkdownStream | None = None  # the prose part being written
        self._source = ""  # what the prose part being written has been given
        self._line_checked = 0  # where the last line looked at for a new block begins
        self._code: CodeBlock | None = None
        self.code_blocks: list[CodeBlock] = []
        """The reply's code blocks, in order (those settled too: they keep their code)."""
        # Finished parts, to draw once laid out: (widget, what it shows, tries so far).
        self._unsettled: list[tuple[Widget, Part, int]] = []
        self._finished = False
        # The timer runs flush() in a task of its own: a flush must not interleave with
        # finish()'s, nor be cancelled half-way by stopping the timer.
        self._flushing = asyncio.Lock()

    async def on_mount(self) -> None:
        self._timer = self.set_interval(FLUSH_INTERVAL, self.flush)
        self.app.theme_changed_signal.subscribe(self, self._redraw_settled)
        if self._complete:
            await self.finish()
        else:
            self.screen.screen_layout_refresh_signal.subscribe(self, self._keep_room)

    def _keep_room(self, _screen: object) -> None:
        """After a layout: give the reply :data:`ROOM_LINES` more blank lines once it has
        filled those it had (or if it has far too many: a wider screen)."""
        if self._finished or not self.children or not self.children[-1].region:
            return  # a part just mounted is not laid out yet
        last = self.children[-1]
        used = last.region.bottom + last.styles.margin.bottom - self.content_region.y
        room = self.styles.min_height
        lines = int(room.value) if room is not None else 0
        if used >= lines or used < lines - 2 * ROOM_LINES:
            self.styles.min_height = used + ROOM_LINES

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
                await self._end_prose()
                self._code = CodeBlock(event.info)
                self.code_blocks.append(self._code)
                await self.mount(self._code)
                self._fed = event.body
            elif self._code is not None:
                self._end_code(self.text[self._fed : event.start])
                self._fed = event.end
        if self._code is not None:
            self._code.show(self.text[self._fed :])
        else:
            settled = self._fences.settled(self.text)
            line = self.text.rfind("\n", 0, settled) + 1
            if self.text[line:settled].lstrip(" ").startswith("|"):
                # A table row is shown when it is complete: Textual remounts the cells of
                # a table's last row whenever it changes.
                settled = line
            if settled > self._fed:
                self._fed += await self._prose(self.text[self._fed : settled])

    async def _prose(self, text: str, *, final: bool = False) -> int:
        """Add ``text`` to the prose part being written, or to a new one; return how much
        of it was taken. The parts come out the same however the text was split into
        deltas: a new part drops the blank lines it would open with, and is not opened for
        blank space alone (what follows on its line may be prose); where a top-level block
        begins, the part so far is finished and the block opens the next one; and a line
        that has just begun is held back (unless ``final``) until it is long enough to
        tell whether it begins a block (``1`` may be a list item, ``-`` a heading's
        underline or a bullet)."""
        blank = 0
        if self._markdown is None:
            match = _BLANK_LINES.match(text)
            blank = match.end() if match else 0
            if not text[blank:].strip():
                return blank
            text = text[blank:]
            await self._start_prose()
        written, source = len(self._source), self._source + text
        start = source.rfind("\n") + 1
        if not final and start > 0 and written <= start and len(source) - start < _LINE_SEEN:
            source = source[:start]
        cuts = _block_starts(source) if self._new_line(source, final) else []
        done = 0  # where the part being written begins in ``source``
        taken = blank + len(source) - written
        for cut, list_goes_on in cuts:
            if cut < written:  # that block began in what the part has already shown
                continue
            assert self._markdown is not None
            await self._markdown.write(source[written:cut])
            self._source = source[done:cut]
            await self._end_prose(list_goes_on=list_goes_on)
            await self._start_prose()
            done = written = cut
        assert self._markdown is not None
        await self._markdown.write(source[written:])
        self._source = source[done:]
        return taken

    def _new_line(self, source: str, final: bool) -> bool:
        """Whether ``source`` has a line not looked at yet for a block that begins there.
        Parsing once per line, not once per redraw, halves what Markdown costs a streamed
        reply."""
        start = source.rfind("\n", 0, len(source) - 1) + 1
        if start <= self._line_checked and not final:
            return False
        self._line_checked = start
        return True

    async def _start_prose(self) -> None:
        prose = _Prose(parser_factory=_parser)
        await self.mount(prose)
        self._markdown = Markdown.get_stream(prose)
        self._source = ""
        self._line_checked = 0

    async def _end_prose(self, *, list_goes_on: bool = False) -> None:
        """The prose part being written is finished (``list_goes_on``: it ends in a list
        the next part goes on with)."""
        if self._markdown is None:
            return
        await self._markdown.stop()
        prose = self._markdown.markdown_widget
        for paragraph in prose.query_children(_Paragraph):
            paragraph.release()
        part = Part("prose", self._source, list_goes_on=list_goes_on)
        self._settle(_styled(prose, part), part)
        self._markdown = None

    def _end_code(self, code: str) -> None:
        """The code block being written closed with ``code`` inside."""
        assert self._code is not None
        self._code.close(code)
        self._settle(self._code, Part("code", self._code.code, self._code.language))
        self._code = None

    async def finish(self) -> None:
        """The reply is complete: show the rest and stop redrawing."""
        if self._finished:
            return
        self._finished = True
        async with self._flushing:  # after a flush the timer is running
            self._timer.stop()
            self.styles.min_height = None
            await self._flush()
            if self._code is not None:  # the reply ended inside a fence
                self._end_code(self.text[self._fed :])
            else:
                await self._prose(self.text[self._fed :], final=True)
                await self._end_prose()
            self._fed = len(self.text)

    # --- settling: finished parts become lines -----------------------------------------

    def _settle(self, widget: Widget, part: Part) -> None:
        """Replace ``widget``, a finished part, by the lines it draws, once it is laid out."""
        self._unsettled.append((widget, part, 0))
        if len(self._unsettled) == 1:
            self.call_after_refresh(self._settle_ready)

    async def _settle_ready(self) -> None:
        waiting = []
        for widget, part, tries in self._unsettled:
            if not widget.is_attached:
                continue
            width = self.content_size.width
            ready = width > 0 and widget.outer_size.width == width and _shows(widget, part)
            drawn = await draw(widget) if ready else None
            if drawn is None or not widget.is_attached:
                if tries < SETTLE_TRIES:
                    waiting.append((widget, part, tries + 1))
                continue
            await self._show_settled(widget, part, drawn)
        self._unsettled = waiting
        if waiting:  # not laid out yet: look again a little later
            self.set_timer(SETTLE_RETRY_S, self._settle_ready)

    async def _show_settled(self, widget: Widget, part: Part, lines: list[Strip]) -> None:
        """Replace ``widget`` by ``lines``, joined with the settled lines next to it."""
        width = self.content_size.width
        settled = SettledLines(lines, part, drawn_width=width)
        settled.styles.margin = widget.styles.margin
        index = self.children.index(widget)
        above = self.children[index - 1] if index else None
        below = self.children[index + 1] if index + 1 < len(self.children) else None
        with self.app.batch_update():
            if self._joins(above):
                assert isinstance(above, SettledLines)
                self._join(above, settled)
                settled = above
            else:
                await self.mount(settled, before=widget)
            await widget.remove()
            if self._joins(below):
                assert isinstance(below, SettledLines)
                self._join(settled, below)
                await below.remove()

    def _joins(self, neighbour: Widget | None) -> bool:
        return (
            isinstance(neighbour, SettledLines) and neighbour.drawn_width == self.content_size.width
        )

    def _join(self, upper: SettledLines, lower: SettledLines) -> None:
        """Add ``lower``'s lines to ``upper``'s, with the gap their margins make (the
        margins of two siblings collapse into the larger one)."""
        top, bottom = upper.styles.margin, lower.styles.margin
        gap = max(top.bottom, bottom.top)
        upper.extend(lower, gap=gap, blank=Strip.blank(upper.drawn_width, self.rich_style))
        upper.styles.margin = (top.top, 0, bottom.bottom, 0)

    async def on_resize(self) -> None:
        width = self.content_size.width
        stale = [s for s in self.query_children(SettledLines) if s.drawn_width != width]
        await self._rebuild(stale)

    async def _redraw_settled(self, _theme: object) -> None:
        await self._rebuild(list(self.query_children(SettledLines)))

    async def _rebuild(self, stale: list[SettledLines]) -> None:
        """Build stale settled parts anew from what they were; they settle again once drawn."""
        if not stale:
            return
        with self.app.batch_update():
            for settled in stale:
                for part, _ in settled.parts:
                    widget: Widget = (
                        _styled(_Prose(part.text, parser_factory=_parser), part)
                        if part.kind == "prose"
                        else CodeBlock(part.language, part.text)
                    )
                    await self.mount(widget, before=settled)
                    self._settle(widget, part)
                await settled.remove()


def _shows(widget: Widget, part: Part) -> bool:
    """Whether ``widget`` shows all of ``part``: Markdown done parsing and mounting it, a
    code block closed and highlighted."""
    if isinstance(widget, CodeBlock):
        return widget.closed and widget.highlighted
    assert isinstance(widget, Markdown)
    return widget.source == part.text and not widget.lock.is_locked
