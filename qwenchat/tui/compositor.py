"""Textual's compositor, drawing a region at the cost of the rows it covers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from weakref import WeakKeyDictionary

from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from qwenchat.tui.textual_private import ChopsUpdate, Compositor, CompositorMap, ReflowResult


def _blank(widget: Widget) -> bool:
    """Whether every line ``widget`` draws is the same blank line: a container that draws
    nothing of its own (no content, border, outline or keyline), its children drawn over
    its background. Textual draws each of those lines anew whenever the container
    changes size, and a growing reply resizes five of them, each as tall as the screen.
    A Markdown list is one too: a Static given no content."""
    cls = type(widget)
    if not (
        widget.is_container
        and cls.render_line is Widget.render_line
        and cls.render_lines is Widget.render_lines
    ):
        return False
    if cls.render is not Widget.render and not (
        cls.render is Static.render and isinstance(widget.content, str) and not widget.content
    ):
        return False
    styles = widget.styles
    edges = (styles.border_top, styles.border_right, styles.border_bottom, styles.border_left)
    outline = (styles.outline_top, styles.outline_right, styles.outline_bottom, styles.outline_left)
    return (
        all(edge[0] in ("", "none") for edge in (*edges, *outline)) and styles.keyline[0] == "none"
    )


def _paint_key(widget: Widget) -> tuple[object, ...] | None:
    """What the lines of a blank container depend on, besides its size and place (its
    scroll offset: its children are drawn where it is scrolled to); None for any other
    widget."""
    if not _blank(widget):
        return None
    styles = widget.styles
    hatch = styles.hatch if styles.has_rule("hatch") else None
    return (widget.scroll_offset, widget.background_colors, styles.tint, hatch, widget.opacity)


def _runs(rows: list[int]) -> Iterator[tuple[int, int]]:
    """The runs of consecutive numbers in sorted ``rows``, as (first, last + 1)."""
    start = previous = rows[0]
    for row in rows[1:]:
        if row != previous + 1:
            yield start, previous + 1
            start = row
        previous = row
    yield start, previous + 1


class RowCompositor(Compositor):
    """Textual's compositor draws every line that every widget behind a changed region
    shows on screen, to keep only the changed rows: a streamed reply changes a few rows a
    redraw, and drawing the other thirty cost the UI thread 1 to 3 ms each time. This one
    draws, of each rectangle the update holds, only the rows, and only the widgets in it
    that are not hidden behind a widget covering all of it (a growing paragraph, in front
    of the five containers it is in); each of those across the whole row (the cuts
    across it stay as Textual makes them), and a blank container's line once.

    It also spares Textual's repaints that redraw what is on the screen already: a blank
    container's after a child came or went, and a layout's of widgets that did not move
    or only grew (see :meth:`_trim_repaints`)."""

    def __init__(self) -> None:
        super().__init__()
        self._updating: list[Region] = []  # the rectangles of the update being drawn
        self._painted: WeakKeyDictionary[Widget, tuple[object, ...]] = WeakKeyDictionary()

    def update_widgets(self, widgets: set[Widget]) -> None:
        # Textual repaints all of a container whenever a child is mounted in it or removed
        # from it, as if its own lines had changed: a reply's column, on every new part.
        # A blank container's lines change only with its colours; a change of its size or
        # place, or of its children's, is the layout's to repaint, and the layout does.
        for widget in widgets:
            key = _paint_key(widget)
            if key is not None and self._painted.get(widget) == key:
                widget._exchange_repaint_regions()
            elif key is not None:
                self._painted[widget] = key
        super().update_widgets(widgets)

    def reflow(self, parent: Widget, size: Size) -> ReflowResult:
        old = self._full_map
        result = super().reflow(parent, size)
        if size.region not in self._dirty_regions:
            self._trim_repaints(old)
        # The layout placed the children of a scrolled container where it scrolled to, and
        # marked those that moved: its own blank lines are the same at any offset.
        for widget, key in list(self._painted.items()):
            if widget in self._full_map and key[0] != widget.scroll_offset:
                self._painted[widget] = (widget.scroll_offset, *key[1:])
        return result

    def _keeps(self, widget: Widget, rows: int) -> bool:
        """Whether the top ``rows`` rows of ``widget``, which grew below them, are as they
        were when last drawn: it says so (``kept_rows``), or it is a blank container and
        its colours are the same."""
        key = _paint_key(widget)
        if key is not None and self._painted.get(widget) == key:
            return True
        kept = getattr(widget, "kept_rows", None)
        return isinstance(kept, int) and kept >= rows

    def _trim_repaints(self, old: CompositorMap) -> None:
        """Textual repaints all of every widget whose geometry changed in any way. Two
        kinds need less: one still in the same place (only its container's size changed:
        the parts of a reply beside one that grew) needs nothing, as a widget whose look
        changes refreshes itself; one that grew downwards in the same place, keeping its
        rows (settled lines that took a finished part's, a reply's column), needs only its
        new rows: the rows above are on the screen."""
        new = self._full_map
        # What Textual marked for each (where it was and is shown), and what it needs.
        trimmed: dict[Widget, tuple[set[Region], Region | None]] = {}
        for widget, was in old.items():
            now = new.get(widget)
            if now is None or now == was:
                continue
            # What the widget shows of itself: its clip grows with its container.
            was_shown = was.clip.intersection(was.region)
            shown = now.clip.intersection(now.region)
            if now.region == was.region and shown == was_shown:
                # Only its container (or its place among its siblings) changed; the order
                # it is drawn in, which changes with its siblings, matters only where
                # widgets overlap, and a reply's do not.
                trimmed[widget] = ({was_shown, shown}, None)
            elif (
                now.region.offset == was.region.offset
                and now.region.width == was.region.width
                and now.region.height > was.region.height
                and shown.offset == was_shown.offset
                and shown.width == was_shown.width
                and self._keeps(widget, was.region.height)
            ):
                top = max(shown.y, was.region.bottom)
                grown = Region(shown.x, top, shown.width, max(0, shown.bottom - top))
                trimmed[widget] = ({was_shown, shown}, grown)
        if not trimmed:
            return
        # A rectangle another change also marked stays.
        others = {
            geometry.clip.intersection(geometry.region)
            for widget, geometry in new.items() ^ old.items()
            if widget not in trimmed
        }
        for marked, needed in trimmed.values():
            self._dirty_regions -= marked - others
            if needed:
                self._dirty_regions.add(needed)

    def render_partial_update(self) -> ChopsUpdate | None:
        self._updating = list(self._dirty_regions)  # Textual's keeps only their union
        try:
            return super().render_partial_update()
        finally:
            self._updating = []

    def _get_renders(
        self, crop: Region | None = None
    ) -> Iterable[tuple[Region, Region, list[Strip]]]:
        crop = self.size.region if crop is None else crop
        # What is still to draw: the update's rectangles (their union can be much more:
        # a row at the top and the scrollbar's column make the whole screen).
        pending = [r for r in self._updating if r.overlaps(crop)] or [crop]
        # In render order, front to back: what the first widget draws over a cut wins.
        for widget, (region, clip) in self.visible_widgets.items():
            shown = region.intersection(clip)
            hits = [r for r in pending if r.overlaps(shown)] if shown else []
            if not hits:
                continue  # nothing of it is in the update (the conversation's scrollbar)
            rows = sorted({y for r in hits for y in r.intersection(shown).line_range})
            for top, bottom in _runs(rows):
                # _render_chops places the lines at region ∩ clip: narrowing the clip to
                # the rows narrows both what is drawn and where it goes.
                run = clip.intersection(Region(0, top, self.size.width, bottom - top))
                x, y, width, height = region.intersection(run)
                if _blank(widget):
                    [line] = widget.render_lines(Region(x - region.x, y - region.y, width, 1))
                    yield region, run, [line] * height
                else:
                    lines = widget.render_lines(Region(x - region.x, y - region.y, width, height))
                    yield region, run, lines
            # A rectangle this widget covers is done: what is behind it there is hidden.
            pending = [r for r in pending if r not in shown]
            if not pending:
                return

    def draw_rows(self, top: int, bottom: int) -> list[Strip]:
        """The lines from row ``top`` to row ``bottom`` (excluded) of what it holds."""
        rows = Region(0, top, self.size.width, bottom - top)
        chops = self._render_chops(rows, lambda y: top <= y < bottom)
        return [Strip.join(chop.values()) for chop in chops[top:bottom]]
