"""The main screen's compositor: a partial update drawn as Textual draws it, in fewer rows."""

from __future__ import annotations

import re
from functools import partial

import pytest
from rich.console import Console
from rich.segment import Segment
from textual._compositor import Compositor
from textual.app import App, ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from qwenchat.tui.compositor import RowCompositor
from qwenchat.tui.screens.chat import ChatScreen
from qwenchat.tui.widgets.settled import Part, SettledLines


class Rows(App[None]):
    CSS = "#top { background: $boost; padding: 0 2; }"

    def get_default_screen(self) -> ChatScreen:
        return ChatScreen()

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="top"):
            for n in range(30):
                yield Static(f"[b]line {n}[/b] " * 8, id=f"s{n}")
        yield Static("the bottom line", id="bottom")


_IDLE_MOVE = re.compile(r"\x1b\[\d+;\d+H(?=\x1b\[\d+;\d+H|\n|$)")


def update(compositor: Compositor, regions: list[Region]) -> str:
    """What a partial update of ``regions`` sends to the terminal, less the cursor moves
    that draw nothing (Textual moves to a cut just past the update's end, which it had to
    draw, for no text)."""
    compositor._dirty_regions.update(regions)
    chops = compositor.render_partial_update()
    assert chops is not None
    sent = chops.render_segments(Console(width=60, color_system="truecolor", force_terminal=True))
    return _IDLE_MOVE.sub("", sent)


@pytest.mark.asyncio
@pytest.mark.parametrize("changed", [("#s3", "#s4"), ("#s3",)])
async def test_a_partial_update_draws_the_rows_textual_would_and_only_those(
    changed: tuple[str, ...],
) -> None:
    app = Rows()
    async with app.run_test(size=(60, 24)) as pilot:
        await pilot.pause()
        compositor = app.screen._compositor
        assert isinstance(compositor, RowCompositor)
        regions = [app.query_one(name).region for name in changed]
        crop = Region.from_union(regions)
        ours = update(compositor, regions)
        drawn = list(compositor._get_renders(crop))

        textual = partial(Compositor._get_renders, compositor)
        compositor._get_renders = textual  # type: ignore[method-assign]
        assert update(compositor, regions) == ours
        assert "line 3" in ours and "line 5" not in ours
        assert ("line 4" in ours) == ("#s4" in changed)
        # Textual draws every line of every widget behind the crop; this, only its rows,
        # and nothing of the widgets beside them (the scrollbar).
        assert sum(len(strips) for *_, strips in drawn) * 2 < sum(
            len(strips) for *_, strips in textual(crop)
        )
        scrollbar = app.query_one("#top").vertical_scrollbar.region
        assert scrollbar and scrollbar not in [region for region, _, _ in drawn]
        if len(changed) == 1:  # one widget covers the update: nothing behind it is drawn
            assert [region for region, _, _ in drawn] == regions
        assert compositor.draw_rows(0, 24)[regions[0].y].text.startswith("  line 3")


class Column(App[None]):
    """Settled lines in a column (a Vertical, or a Static without content: a Markdown
    list is one), a line below it."""

    CSS = "#column { height: auto; layout: vertical; background: $boost; }"

    def __init__(self, column: type[Widget] = Vertical) -> None:
        super().__init__()
        self.column = column

    def get_default_screen(self) -> ChatScreen:
        return ChatScreen()

    def compose(self) -> ComposeResult:
        with self.column(id="column"):
            yield SettledLines(
                [Strip([Segment(f"settled {n}")]) for n in range(3)],
                Part("prose", "settled"),
                drawn_width=60,
            )
        yield Static("below", id="below")


async def warm(app: App[None], pilot) -> None:  # type: ignore[no-untyped-def]
    """Mount a line at the end of the column: the first change to a container repaints
    all of it (the compositor learns its colours)."""
    await app.query_one("#column").mount(Static("first"))
    await pilot.pause()
    await pilot.pause()


def record_rows(app: App[None]) -> list[int]:
    """The rows each partial update of the screen draws from now on, all together."""
    compositor = app.screen._compositor
    rows: list[int] = []
    render = compositor.render_partial_update

    def recorded():  # type: ignore[no-untyped-def]
        rows.extend(y for region in compositor._dirty_regions for y in region.line_range)
        return render()

    compositor.render_partial_update = recorded  # type: ignore[method-assign]
    return rows


@pytest.mark.asyncio
@pytest.mark.parametrize("column", [Vertical, Static])
async def test_a_child_mounted_in_a_blank_container_repaints_its_rows_not_the_containers(
    column: type[Widget],
) -> None:
    app = Column(column)
    async with app.run_test(size=(60, 12)) as pilot:
        await warm(app, pilot)
        rows = record_rows(app)
        await app.query_one("#column").mount(Static("new"))
        await pilot.pause()
        await pilot.pause()
        assert app.query_one("#below").region.y == 5
        # The new line and where "below" was and is: not the lines above.
        assert set(rows) == {4, 5}
        assert "settled 1" in app.screen._compositor.render_strips()[1].text


@pytest.mark.asyncio
async def test_settled_lines_that_grow_repaint_only_their_new_rows() -> None:
    app = Column()
    async with app.run_test(size=(60, 12)) as pilot:
        await warm(app, pilot)
        rows = record_rows(app)
        settled = app.query_one(SettledLines)
        more = SettledLines([Strip([Segment("more")])], Part("prose", "more"), drawn_width=60)
        settled.extend(more, gap=1, blank=Strip.blank(60))
        await pilot.pause()
        await pilot.pause()
        assert app.query_one("#below").region.y == 6
        # Its new rows, and where the lines below it were and are.
        assert set(rows) == {3, 4, 5, 6}
        assert [strip.text.rstrip() for strip in app.screen._compositor.render_strips()[:7]] == [
            "settled 0",
            "settled 1",
            "settled 2",
            "",
            "more",
            "first",
            "below",
        ]


@pytest.mark.asyncio
async def test_an_update_of_two_distant_rows_draws_those_rows_only() -> None:
    app = Rows()
    async with app.run_test(size=(60, 24)) as pilot:
        await pilot.pause()
        compositor = app.screen._compositor
        regions = [app.query_one("#s1").region, app.query_one("#s8").region]
        drawn: list[tuple[Region, Region, list[Strip]]] = []
        get_renders = compositor._get_renders

        def recorded(crop: Region | None = None):  # type: ignore[no-untyped-def]
            for render in get_renders(crop):
                drawn.append(render)
                yield render

        compositor._get_renders = recorded  # type: ignore[method-assign]
        ours = update(compositor, regions)
        compositor._get_renders = partial(Compositor._get_renders, compositor)  # type: ignore[method-assign]
        assert update(compositor, regions) == ours
        assert "line 1" in ours and "line 8" in ours and "line 4" not in ours
        rows = {y for region, clip, _ in drawn for y in region.intersection(clip).line_range}
        assert rows == {y for region in regions for y in region.line_range}
