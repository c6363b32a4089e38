"""Textual's compositor, drawing a region at the cost of the rows it covers."""

from __future__ import annotations

from collections.abc import Iterable

from textual._compositor import Compositor
from textual.geometry import Region
from textual.strip import Strip


class RowCompositor(Compositor):
    """Textual's compositor draws every line that every widget behind a changed region
    shows on screen, to keep only the changed rows: a streamed reply changes a few rows a
    redraw, and drawing the other thirty cost the UI thread 1 to 3 ms each time. This one
    draws only the rows that the update covers (whole rows: the cuts across them stay as
    Textual makes them)."""

    def _get_renders(
        self, crop: Region | None = None
    ) -> Iterable[tuple[Region, Region, list[Strip]]]:
        if crop is None or crop.height == self.size.height:
            yield from super()._get_renders(crop)
            return
        rows = Region(0, crop.y, self.size.width, crop.height)
        for widget, (region, clip) in self.visible_widgets.items():
            # _render_chops places the lines at region ∩ clip: narrowing the clip to the
            # rows narrows both what is drawn and where it goes.
            clip = clip.intersection(rows)
            x, y, width, height = region.intersection(clip)
            if width and height:
                crop_region = Region(x - region.x, y - region.y, width, height)
                yield region, clip, widget.render_lines(crop_region)

    def draw_rows(self, top: int, bottom: int) -> list[Strip]:
        """The lines from row ``top`` to row ``bottom`` (excluded) of what it holds."""
        rows = Region(0, top, self.size.width, bottom - top)
        chops = self._render_chops(rows, lambda y: top <= y < bottom)
        return [Strip.join(chop.values()) for chop in chops[top:bottom]]
