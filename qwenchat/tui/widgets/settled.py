"""A finished part of a reply, kept as the lines it was drawn with: one widget instead of many.

Textual lays out every widget on the screen whenever any of them changes height, and a
Markdown reply is many widgets (a paragraph, a heading, four for each list item, a cell
of a table...). While a reply streams the view grows several times a second, so what the
reply has already finished costs again on every one of those layouts, and a long
conversation more than a short one. Once a part of a reply can no longer change it is
drawn once more, into lines, and replaced by a :class:`SettledLines` showing them.

The lines hold colours and wrapping: when the width or the theme changes they are stale,
and the part is built again from its :class:`Part`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from rich.segment import Segment
from textual.geometry import Region, Size
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget

from qwenchat.tui.compositor import RowCompositor

DRAW_ROWS = 40
"""Rows drawn in one turn of the event loop when a part settles (a 600-line code block
drawn at once would hold the UI for a tenth of a second)."""


async def draw(widget: Widget) -> list[Strip] | None:
    """The lines ``widget`` and its children draw at the size they have on screen (a
    compositor of its own lays out and draws the widget's subtree, as the screen would);
    None if what it holds no longer fits that size (it changed since the last layout),
    or the size changed while it was drawn."""
    compositor = RowCompositor()
    size = widget.outer_size
    compositor.reflow(widget, size)
    if _content_height(widget, compositor) != size.height or any(
        # A widget draws at the size the screen gave it: a new one may not have any yet.
        child.outer_size != geometry.region.size
        for child, geometry in compositor.full_map.items()
    ):
        return None
    lines: list[Strip] = []
    for top in range(0, size.height, DRAW_ROWS):
        if top:
            await asyncio.sleep(0)
            if widget.outer_size != size:
                return None
        lines += compositor.draw_rows(top, min(top + DRAW_ROWS, size.height))
    return lines


@dataclass(frozen=True)
class Part:
    """What a settled part of a reply was: prose (its Markdown) or a code block."""

    kind: Literal["prose", "code"]
    text: str
    language: str = ""
    list_goes_on: bool = False
    """Prose that ends in a list the next part goes on with (a list is a part an item)."""


def _content_height(widget: Widget, compositor: RowCompositor) -> int:
    """How tall ``widget`` is, laid out now in ``compositor``: its last child's bottom and
    margin, and its own padding and border."""
    bottoms = [
        geometry.region.bottom + child.styles.margin.bottom
        for child, geometry in compositor.full_map.items()
        if child.parent is widget
    ]
    gutter = widget.styles.gutter
    return (max(bottoms) if bottoms else gutter.top) + gutter.bottom


class SettledLines(Widget):
    """Lines drawn by finished parts of a reply, one after the other, shown as they are;
    text in them can be selected with the mouse like any other."""

    DEFAULT_CSS = "SettledLines { height: auto; }"

    def __init__(self, lines: list[Strip], part: Part, *, drawn_width: int) -> None:
        """``lines``: what the part drew; ``part``: what it was, to build it anew at another
        width or in another theme; ``drawn_width``: the width it was drawn at."""
        super().__init__()
        self.lines: list[Strip] = []
        """What it shows, a line a row, as the parts drew them (their links and offsets
        within their own widgets are dropped when a line is shown)."""
        self.parts: list[tuple[Part, range]] = []
        """Each part, and the lines it drew."""
        self.drawn_width = drawn_width
        self.kept_rows: int | None = None
        """How many rows at its top are as they were when last drawn, after it grew below
        them: the screen's :class:`RowCompositor` draws only the rows below. None: not
        grown since the last layout."""
        self._add(lines, part)

    def extend(self, other: SettledLines, *, gap: int, blank: Strip) -> None:
        """Show the lines of ``other`` (the parts that follow) after ``gap`` blank lines."""
        kept = len(self.lines)
        self.kept_rows = kept if self.kept_rows is None else min(self.kept_rows, kept)
        self.lines += [blank] * gap
        top = len(self.lines)
        self.lines += other.lines
        self.parts += [(part, range(top + r.start, top + r.stop)) for part, r in other.parts]
        self.refresh(layout=True, repaint=False)  # the layout repaints the new rows

    def _set_dirty(self, *regions: Region) -> None:
        # Textual marks all of a widget for a repaint when its size or style changes;
        # after growth only the new rows need it, as the compositor was told by kept_rows.
        if not regions and self.kept_rows is not None and self.size.width == self.drawn_width:
            kept = self.kept_rows
            regions = (Region(0, kept, self.size.width, max(1, self.size.height - kept)),)
        super()._set_dirty(*regions)

    def _size_updated(
        self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True
    ) -> bool:
        resized = super()._size_updated(size, virtual_size, container_size, layout)
        self.kept_rows = None  # laid out: what it grew by is on its way to the screen
        return resized

    def _add(self, lines: list[Strip], part: Part) -> None:
        top = len(self.lines)
        self.lines += lines
        self.parts.append((part, range(top, len(self.lines))))

    @property
    def text(self) -> str:
        """The lines as plain text, without the spaces that end them."""
        return "\n".join(line.text.rstrip() for line in self.lines)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.lines)

    def render_line(self, y: int) -> Strip:
        if y >= len(self.lines):
            return Strip.blank(self.size.width)
        # Only the rows on screen, and Textual keeps what this returns until a change.
        line = self.lines[y].discard_meta().apply_offsets(0, y)
        selection = self.text_selection
        span = selection.get_span(y) if selection is not None else None
        if span is None:
            return line
        start, end = span
        end = line.cell_length if end == -1 else end
        style = self.screen.get_component_rich_style("screen--selection")
        before, chosen, after = line.divide([start, end, line.cell_length])
        # Over the colours the part was drawn with, not under them.
        chosen = Strip(Segment.apply_style(chosen, post_style=style), chosen.cell_length)
        return Strip.join([before, chosen, after])

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        return selection.extract(self.text), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()
