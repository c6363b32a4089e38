"""Textual's compositor, drawing a region at the cost of the rows it covers."""

from __future__ import annotations

from collections.abc import Iterable

from textual._compositor import Compositor
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget


def _blank(widget: Widget) -> bool:
    """Whether every line ``widget`` draws is the same blank line: a container that draws
    nothing of its own (no content, border, outline or keyline), its children drawn over
    its background. Textual draws each of those lines anew whenever the container
    changes size, and a growing reply resizes five of them, each as tall as the screen."""
    cls = type(widget)
    if not (
        widget.is_container
        and cls.render is Widget.render
        and cls.render_line is Widget.render_line
        and cls.render_lines is Widget.render_lines
    ):
        return False
    styles = widget.styles
    edges = (styles.border_top, styles.border_right, styles.border_bottom, styles.border_left)
    outline = (styles.outline_top, styles.outline_right, styles.outline_bottom, styles.outline_left)
    return (
        all(edge[0] in ("", "none") for edge in (*edges, *outline)) and styles.keyline[0] == "none"
    )


class RowCompositor(Compositor):
    """Textual's compositor draws every line that every widget behind a changed region
    shows on screen, to keep only the changed rows: a streamed reply changes a few rows a
    redraw, and drawing the other thirty cost the UI thread 1 to 3 ms each time. This one
    draws only the rows that the update covers (whole rows: the cuts across them stay as
    Textual makes them), and a blank container's line once."""

    def _get_renders(
        self, crop: Region | None = None
    ) -> Iterable[tuple[Region, Region, list[Strip]]]:
        crop = self.size.region if crop is None else crop
        rows = Region(0, crop.y, self.size.width, crop.height)
        for widget, (region, clip) in self.visible_widgets.items():
            # _render_chops places the lines at region ∩ clip: narrowing the clip to the
            # rows narrows both what is drawn and where it goes.
            clip = clip.intersection(rows)
            x, y, width, height = region.intersection(clip)
            if not (width and height):
                continue
            if _blank(widget):
                [line] = widget.render_lines(Region(x - region.x, y - region.y, width, 1))
                yield region, clip, [line] * height
            else:
                yield (
                    region,
                    clip,
                    widget.render_lines(Region(x - region.x, y - region.y, width, height)),
                )

    def draw_rows(self, top: int, bottom: int) -> list[Strip]:
        """The lines from row ``top`` to row ``bottom`` (excluded) of what it holds."""
        rows = Region(0, top, self.size.width, bottom - top)
        chops = self._render_chops(rows, lambda y: top <= y < bottom)
        return [Strip.join(chop.values()) for chop in chops[top:bottom]]
