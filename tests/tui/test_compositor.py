"""The main screen's compositor: a partial update drawn as Textual draws it, in fewer rows."""

from __future__ import annotations

from functools import partial

import pytest
from textual._compositor import Compositor
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import Static

from qwenchat.tui.compositor import RowCompositor
from qwenchat.tui.screens.chat import ChatScreen


class Rows(App[None]):
    CSS = "#top { background: $boost; padding: 0 2; }"

    def get_default_screen(self) -> ChatScreen:
        return ChatScreen()

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="top"):
            for n in range(30):
                yield Static(f"[b]line {n}[/b] " * 8, id=f"s{n}")
        yield Static("the bottom line", id="bottom")


def lines(chops: list[dict[int, Strip]], rows: set[int]) -> dict[int, list[tuple[str, object]]]:
    return {
        y: [(seg.text, seg.style) for seg in Strip.join(chops[y].values()).simplify()]
        for y in sorted(rows)
    }


@pytest.mark.asyncio
async def test_a_partial_update_draws_the_rows_textual_would_and_only_those() -> None:
    app = Rows()
    async with app.run_test(size=(60, 24)) as pilot:
        await pilot.pause()
        compositor = app.screen._compositor
        assert isinstance(compositor, RowCompositor)
        regions = [app.query_one("#s3").region, app.query_one("#s4").region]
        crop = Region.from_union(regions)
        rows = {y for region in regions for y in range(region.y, region.bottom)}
        ours = lines(compositor._render_chops(crop, rows.__contains__), rows)
        drawn = sum(len(strips) for *_, strips in compositor._get_renders(crop))

        textual = partial(Compositor._get_renders, compositor)
        compositor._get_renders = textual  # type: ignore[method-assign]
        assert lines(compositor._render_chops(crop, rows.__contains__), rows) == ours
        assert "line 3" in "".join(text for text, _ in ours[min(rows)])
        # Textual draws every line of every widget behind the crop; this, only its rows.
        assert drawn * 2 < sum(len(strips) for *_, strips in textual(crop))
        assert compositor.draw_rows(0, 24)[min(rows)].text.startswith("  line 3")
