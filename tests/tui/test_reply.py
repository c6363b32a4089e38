"""The streaming widgets of a reply: fences found in growing text, and a ReplyView that
ends up the same however its text was split into deltas, at a bounded cost per redraw."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Offset
from textual.selection import Selection
from textual.widgets import Markdown, Static

from qwenchat.tui.textual_private import (
    MarkdownBullet,
    MarkdownBulletList,
    MarkdownOrderedList,
    MarkdownParagraph,
)
from qwenchat.tui.widgets.code_block import CHUNK_LINES, GROUP_LINES, GROW_LINES, CodeBlock
from qwenchat.tui.widgets.reply import (
    ROOM_LINES,
    FenceClosed,
    FenceOpened,
    FenceTracker,
    ReplyView,
)
from qwenchat.tui.widgets.settled import SettledLines
from tests.tui.conftest import settled_parts
from tests.tui.screen import screen_text

# --- FenceTracker -----------------------------------------------------------------------


def scan_all(text: str) -> tuple[FenceTracker, list[FenceOpened | FenceClosed]]:
    tracker = FenceTracker()
    return tracker, tracker.scan(text)


def test_a_backtick_fence_opens_with_its_info_and_closes() -> None:
    text = "Intro:\n```python\nx = 1\n```\nAfter.\n"
    tracker, events = scan_all(text)
    opened = FenceOpened(start=7, body=17, info="python")
    assert events == [opened, FenceClosed(start=23, end=27)]
    assert text[opened.body : events[1].start] == "x = 1\n"
    assert tracker.open is None


def test_a_tilde_fence_is_not_closed_by_backticks() -> None:
    tracker, events = scan_all("~~~ text\n```\nstill code\n~~~\n")
    assert [type(e) for e in events] == [FenceOpened, FenceClosed]
    assert events[0].info == "text" and events[1].start == len("~~~ text\n```\nstill code\n")

    tracker, events = scan_all("~~~\ncode\n```\n")
    assert [type(e) for e in events] == [FenceOpened] and tracker.open is not None


def test_a_fence_closes_only_with_at_least_as_many_marks_and_no_info() -> None:
    _, events = scan_all("```\ncode\n`````\n")  # longer: closes
    assert [type(e) for e in events] == [FenceOpened, FenceClosed]

    tracker, events = scan_all("````\ncode\n```\n")  # shorter: part of the code
    assert [type(e) for e in events] == [FenceOpened] and tracker.open is not None

    tracker, events = scan_all("```\n```python\n")  # an info string: not a closing fence
    assert [type(e) for e in events] == [FenceOpened] and tracker.open is not None


def test_a_backtick_fence_whose_info_has_a_backtick_is_not_a_fence() -> None:
    tracker, events = scan_all("```not`a fence\ntext\n")
    assert events == [] and tracker.open is None
    # A tilde fence may have one.
    tracker, events = scan_all("~~~ a`b\n")
    assert [type(e) for e in events] == [FenceOpened] and events[0].info == "a`b"


def test_indented_fences_in_list_items_are_found() -> None:
    text = "1. Run it:\n\n   ```bash\n   make test\n   ```\n2. Done.\n"
    tracker, events = scan_all(text)
    assert [type(e) for e in events] == [FenceOpened, FenceClosed]
    assert events[0].info == "bash"
    assert text[events[0].body : events[1].start] == "   make test\n"
    assert tracker.open is None


def test_scanning_takes_complete_lines_only_whatever_the_steps() -> None:
    text = "a\n```py\nb\n```\nc\n"
    _, whole = scan_all(text)
    for cut in range(len(text) + 1):
        tracker = FenceTracker()
        events = tracker.scan(text[:cut]) + tracker.scan(text)
        assert events == whole, cut
    tracker = FenceTracker()
    assert tracker.scan("a\n```py") == []  # the fence's line is not complete yet
    assert [type(e) for e in tracker.scan("a\n```py\n")] == [FenceOpened]


def test_settled_holds_back_a_last_line_that_may_open_a_fence() -> None:
    tracker = FenceTracker()
    for text, settled in [
        ("prose\n`", 6),
        ("prose\n  ``", 6),
        ("prose\n~", 6),
        ("prose\nmore", 10),
        ("prose\n", 6),
        ("prose `code` here", 17),  # a backtick inside a line is no fence
    ]:
        tracker = FenceTracker()
        tracker.scan(text)
        assert tracker.settled(text) == settled, text


# --- ReplyView -----------------------------------------------------------------------------


class ReplyApp(App[None]):
    def compose(self) -> ComposeResult:
        yield VerticalScroll(id="column")


async def mounted(app: ReplyApp, view: ReplyView) -> ReplyView:
    column = app.query_one("#column")
    await column.remove_children()
    await column.mount(view)
    return view


async def show(pilot, view: ReplyView, text: str) -> None:  # type: ignore[no-untyped-def]
    """Feed ``text`` to ``view`` and let it draw it."""
    view.feed(text)
    await view.flush()
    await pilot.pause()


async def wait_until(pilot, condition: Callable[[], bool], what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(200):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting until {what}")


def segments(view: ReplyView) -> list[tuple[str, str]]:
    """What the reply shows, in order, settled or not: ("md", Markdown source) and
    ("code", its code). Prose is split into parts at its blocks: the parts between two
    code blocks are joined here."""
    shown: list[tuple[str, str]] = []
    for child in view.children:
        if isinstance(child, SettledLines):
            found = [("md" if p.kind == "prose" else "code", p.text) for p, _ in child.parts]
        elif isinstance(child, Markdown):
            found = [("md", child.source)]
        elif isinstance(child, CodeBlock):
            found = [("code", child.code)]
        else:
            continue
        for kind, text in found:
            if kind == "md" and shown and shown[-1][0] == "md":
                shown[-1] = ("md", shown[-1][1] + text)
            else:
                shown.append((kind, text))
    return shown


async def drawn(pilot, view: ReplyView) -> list[str]:  # type: ignore[no-untyped-def]
    """The lines of each part of a finished reply, once all are settled: they must not
    depend on how the text was streamed in."""
    return [text for _, text in await settled_parts(pilot, view)]


async def stream(pilot, view: ReplyView, text: str, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    """Feed ``text`` in deltas of random sizes, drawing after random ones, then finish."""
    at = 0
    while at < len(text):
        size = rng.choice([1, 1, 2, 3, 4, 7, 12, 40])
        view.feed(text[at : at + size])
        at += size
        if rng.random() < 0.3:
            await view.flush()
    await view.finish()
    await pilot.pause()


REPLY = (
    "Here is the plan.\n\n"
    "## Steps\n\n"
    "1. Read the *input* file.\n"
    "2. Split it:\n"
    "   - on commas\n"
    "   - on tabs, if **any**\n"
    "3. Write it back.\n\n"
    "- a bullet\n\n"
    "- a loose bullet\n\n"
    "Some code:\n\n"
    "```python\n"
    "def split(line):\n"
    "    return line.split(',')\n"
    "```\n\n"
    "| name | value |\n"
    "| ---- | ----- |\n"
    "| one  | 1     |\n"
    "| two  | 2     |\n\n"
    "~~~\nplain `code`\n~~~\n"
    + "".join(f"{n}. item number {n}\n" for n in range(1, 12))
    + "\nThat is all."
)


@pytest.mark.asyncio
async def test_a_reply_ends_up_the_same_however_it_was_split() -> None:
    app = ReplyApp()
    async with app.run_test(size=(100, 40)) as pilot:
        whole = await mounted(app, ReplyView(REPLY, complete=True))
        await pilot.pause()
        expected_lines = await drawn(pilot, whole)
        expected_segments = segments(whole)
        assert [kind for kind, _ in expected_segments] == ["md", "code", "md", "code", "md"]
        assert expected_segments[1] == ("code", "def split(line):\n    return line.split(',')")
        assert expected_segments[3] == ("code", "plain `code`")
        assert "| two  | 2     |" in expected_segments[2][1]
        assert expected_segments[4][1].rstrip().endswith("That is all.")
        everything = "\n".join(expected_lines)
        # Numbers right-aligned: the first items settled before the tenth came.
        assert "\n 9. item number 9\n10. item number 10\n" in everything
        assert "\n 1. item number 1\n" in everything
        assert "│ two " in everything and "• on commas" in everything
        for seed in range(4):
            view = await mounted(app, ReplyView())
            await stream(pilot, view, REPLY, random.Random(seed))
            assert view.text == REPLY
            assert await drawn(pilot, view) == expected_lines, seed
            assert segments(view) == expected_segments, seed


@pytest.mark.asyncio
async def test_a_reply_that_ends_inside_a_fence_shows_its_code() -> None:
    text = "Start:\n\n```python\nprint('unfinished')\nx = 1"
    app = ReplyApp()
    async with app.run_test() as pilot:
        view = await mounted(app, ReplyView())
        await stream(pilot, view, text, random.Random(1))
        assert segments(view) == [("md", "Start:\n\n"), ("code", "print('unfinished')\nx = 1")]
        [block] = view.code_blocks
        assert block.closed and block.language == "python"


@pytest.mark.asyncio
async def test_a_600_line_code_block_is_whole_and_highlighted_chunk_by_chunk() -> None:
    body = "\n".join(f"value_{n} = compute({n}, 'text')  # line {n}" for n in range(600))
    text = f"The module:\n\n```python\n{body}\n```\n\nDone."
    app = ReplyApp()
    async with app.run_test() as pilot:
        view = await mounted(app, ReplyView())
        most = 0  # chunk widgets at most while the block grows
        for n in range(0, len(text), 200):
            await show(pilot, view, text[n : n + 200])
            if view.code_blocks and view.code_blocks[0].is_attached:
                most = max(most, len(code_chunks(view.code_blocks[0])))
        await view.finish()
        [block] = view.code_blocks
        assert block.code == body and block.closed
        # Highlighted chunks join, GROUP_LINES lines a widget: the block stays a few widgets.
        assert 600 // GROUP_LINES <= most <= 600 // GROUP_LINES + 3
        assert segments(view)[-1] == ("md", "Done.")
        # Settled, the block is the lines it drew: the label, then the code, highlighted.
        (_, code), *_ = (await settled_parts(pilot, view))[1:]
        assert code.split("\n") == [" python"] + [f" {line}" for line in body.split("\n")]
        [settled] = view.query_children(SettledLines)
        rows = settled.parts[1][1]
        colours = {seg.style.color for y in rows for seg in settled.lines[y] if seg.style}
        assert len(colours) > 3


@pytest.mark.asyncio
async def test_a_stored_reply_is_shown_whole_when_mounted() -> None:
    body = "\n".join(f"print({n})" for n in range(130))
    text = f"# Title\n\nSome **bold** prose.\n\n```python\n{body}\n```\n\nThe end."
    app = ReplyApp()
    async with app.run_test() as pilot:
        view = await mounted(app, ReplyView(text, complete=True))
        await pilot.pause()
        assert view.text == text
        assert segments(view) == [
            ("md", "# Title\n\nSome **bold** prose.\n\n"),
            ("code", body),
            ("md", "The end."),
        ]
        [block] = view.code_blocks
        await wait_until(pilot, lambda: block.highlighted, "the code is highlighted")
        lines = await drawn(pilot, view)
        assert [part.rstrip().split("\n")[-1].strip() for part in lines] == [
            "Title",
            "Some bold prose.",
            "print(129)",  # no blank lines left below the code
            "The end.",
        ]


@pytest.mark.asyncio
async def test_a_growing_code_block_is_laid_out_every_few_lines_not_every_line() -> None:
    app = ReplyApp()
    async with app.run_test(size=(80, 40)) as pilot:
        view = await mounted(app, ReplyView())
        await show(pilot, view, "```python\n")
        [block] = view.code_blocks
        layouts = count_layouts(app)
        lines = 20
        for n in range(lines):
            await show(pilot, view, f"x = {n}\n")
        # Textual lays out twice for a change of height: once per GROW_LINES lines and
        # once per new chunk here, not once per line.
        assert len(layouts) <= 2 * (lines // GROW_LINES + lines // CHUNK_LINES) < 2 * lines
        chunk = code_chunks(block)[-1]
        assert chunk.size.height % GROW_LINES == 0
        await view.finish()
        assert block.code == "\n".join(f"x = {n}" for n in range(lines))
        [code] = await drawn(pilot, view)
        assert code.split("\n") == [" python"] + [f" x = {n}" for n in range(lines)]


def code_chunks(block: CodeBlock) -> list[Static]:
    """The chunks of a code block (its language label is a Static too)."""
    return [child for child in block.children if type(child) is Static]


def count_layouts(app: App[None]) -> list[int]:
    """Count the screen's layouts from now on (the list grows by one per layout)."""
    screen = app.screen
    layouts: list[int] = []
    layout = screen._refresh_layout

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        layouts.append(1)
        return layout(*args, **kwargs)

    screen._refresh_layout = counted  # type: ignore[method-assign]
    return layouts


@pytest.mark.asyncio
async def test_a_paragraph_growing_within_its_line_is_repainted_without_a_layout() -> None:
    app = ReplyApp()
    async with app.run_test(size=(80, 20)) as pilot:
        view = await mounted(app, ReplyView())
        await show(pilot, view, "Hello")
        for _ in range(3):  # the mount's own layout may come a refresh later: let it pass
            await pilot.pause()
        layouts = count_layouts(app)
        for word in ["there,", "how", "are", "you?"]:
            await show(pilot, view, " " + word)
        assert layouts == []
        [markdown] = view.query_children(Markdown)
        assert markdown.source == "Hello there, how are you?"
        assert "Hello there, how are you?" in screen_text(app)
        await show(
            pilot, view, " And a sentence long enough to need a second line on this narrow screen."
        )
        assert layouts
        assert "narrow screen." in screen_text(app)


def used_lines(view: ReplyView) -> int:
    """How many lines of the reply's height what it shows takes."""
    last = view.children[-1]
    return last.region.bottom + last.styles.margin.bottom - view.content_region.y


@pytest.mark.asyncio
async def test_a_streaming_reply_grows_in_steps_of_blank_room_and_gives_it_back() -> None:
    app = ReplyApp()
    async with app.run_test(size=(80, 20)) as pilot:
        view = await mounted(app, ReplyView())
        heights, room = [], []
        for n in range(24):
            await show(pilot, view, f"Paragraph {n}.\n\n")
            await pilot.pause()
            heights.append(view.size.height)
            room.append(view.size.height - used_lines(view))
        # Each paragraph is two lines more, but the reply's height (and so where the view
        # scrolls to) changes once every few of them, and there is always room below.
        assert heights[-1] >= 2 * 24
        assert len(set(heights)) <= 2 * 24 // ROOM_LINES + 2
        assert min(room) >= 0 and max(room) <= ROOM_LINES + 2 and sum(room) > 24
        await view.finish()
        await pilot.pause()
        await pilot.pause()
        assert view.size.height == used_lines(view)


@pytest.mark.asyncio
async def test_a_list_streams_an_item_a_part_and_its_finished_items_settle() -> None:
    app = ReplyApp()
    async with app.run_test() as pilot:
        view = await mounted(app, ReplyView())
        view.feed("Items:\n\n" + "".join(f"{n}. item {n}\n" for n in range(1, 9)) + "9. it")
        await view.flush()
        await wait_until(pilot, lambda: len(view.children) == 2, "the finished items settle")
        settled, live = view.children
        assert isinstance(settled, SettledLines) and isinstance(live, Markdown)
        assert live.source == "9. it"  # the list's widgets are those of its last item
        assert [line.rstrip() for line in settled.text.splitlines()[-2:]] == [
            " 7. item 7",
            " 8. item 8",  # no blank line between the items of one list
        ]
        view.feed("em 9\n10. item 10\n\nDone.")
        await view.finish()
        await pilot.pause()
        [whole] = await settled_parts(pilot, view) and view.children
        lines = [line.rstrip() for line in whole.text.splitlines()]
        assert lines[-4:] == [" 9. item 9", "10. item 10", "", "Done."]


@pytest.mark.asyncio
async def test_a_growing_nested_list_keeps_its_widgets() -> None:
    app = ReplyApp()
    async with app.run_test() as pilot:
        view = await mounted(app, ReplyView())
        await show(pilot, view, "- one\n  - a\n  - b")
        nested = view.query(MarkdownBulletList).last()
        first = nested.query(MarkdownBullet).first()
        await show(pilot, view, ", grown\n  - c\n")
        assert view.query(MarkdownBulletList).last() is nested  # updated, not mounted anew
        assert nested.query(MarkdownBullet).first() is first
        texts = [p._content.plain for p in nested.query(MarkdownParagraph)]
        assert texts == ["a", "b, grown", "c"]
        # A nested ordered list keeps its bullets past the tenth item.
        await show(pilot, view, "".join(f"  {n}. n{n}\n" for n in range(1, 10)))
        numbered = view.query_one(MarkdownOrderedList)
        await show(pilot, view, "  10. n10\n")
        assert view.query_one(MarkdownOrderedList) is numbered
        symbols = [b.symbol for b in numbered.query(MarkdownBullet)]
        assert symbols[0] == " 1. " and symbols[-1] == "10. "


@pytest.mark.asyncio
async def test_a_table_row_is_shown_once_complete() -> None:
    app = ReplyApp()
    async with app.run_test() as pilot:
        view = await mounted(app, ReplyView())
        await show(pilot, view, "| a | b |\n| - | - |\n| 1 | 2")
        [markdown] = view.query_children(Markdown)
        assert markdown.source == "| a | b |\n| - | - |\n"
        await show(pilot, view, " |\nAfter")
        assert markdown.source == "| a | b |\n| - | - |\n| 1 | 2 |\nAfter"


# --- settled parts ------------------------------------------------------------------------

WRAPPING = (
    "A paragraph long enough to wrap in other places when the terminal gets narrower. " * 3
    + "\n\n```python\nprint('hello')\n```\n\n- one\n- two\n"
)


def redrawn(view: ReplyView) -> bool:
    """Whether every part of ``view`` is settled at its present width."""
    width = view.content_size.width
    return bool(view.children) and all(
        isinstance(c, SettledLines) and c.drawn_width == width for c in view.children
    )


def code_colours(view: ReplyView) -> set[object]:
    """The background colours the reply's code block was drawn with."""
    return {
        seg.bgcolor
        for settled in view.query_children(SettledLines)
        for part, rows in settled.parts
        if part.kind == "code"
        for y in rows
        for seg in (s.style for s in settled.lines[y])
        if seg
    }


@pytest.mark.asyncio
async def test_a_finished_reply_is_one_widget_drawn_as_before() -> None:
    app = ReplyApp()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await mounted(app, ReplyView(WRAPPING, complete=True))
        parts = await settled_parts(pilot, view)
        # A list is a part an item: "- one" and "- two".
        assert [part.kind for part, _ in parts] == ["prose", "code", "prose", "prose"]
        assert len(list(view.walk_children())) == 1  # no Markdown blocks, no chunks left
        # The screen shows the lines the live widgets drew: read them off the screen.
        screen = screen_text(app)
        for _, text in parts:
            assert all(line.strip() in screen for line in text.split("\n"))
        assert "print('hello')" in screen and "• two" in screen


@pytest.mark.asyncio
async def test_settled_parts_are_drawn_again_at_a_new_width_and_in_a_new_theme() -> None:
    app = ReplyApp()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await mounted(app, ReplyView(WRAPPING, complete=True))
        wide = await settled_parts(pilot, view)
        await pilot.resize_terminal(60, 30)
        await wait_until(pilot, lambda: redrawn(view), "the parts are drawn again")
        narrow = await settled_parts(pilot, view)
        assert [part for part, _ in narrow] == [part for part, _ in wide]
        assert narrow[0][1].count("\n") > wide[0][1].count("\n")
        assert max(len(line) for line in narrow[0][1].split("\n")) <= 60

        dark = code_colours(view)
        app.theme = "textual-light"
        await wait_until(pilot, lambda: redrawn(view) and code_colours(view) != dark, "a theme")
        assert [part for part, _ in await settled_parts(pilot, view)] == [p for p, _ in wide]


@pytest.mark.asyncio
async def test_text_in_settled_parts_can_be_selected() -> None:
    app = ReplyApp()
    async with app.run_test(size=(100, 30)) as pilot:
        view = await mounted(app, ReplyView("Some **bold** words.\n\n- one\n", complete=True))
        await settled_parts(pilot, view)
        [settled] = view.query_children(SettledLines)
        extracted = settled.get_selection(Selection(None, None))
        assert extracted is not None
        assert [line.strip() for line in extracted[0].split("\n") if line.strip()] == [
            "Some bold words.",
            "• one",
        ]
        # A selection is drawn in the screen's selection style, on the selected cells only.
        y = settled.parts[1][1].start
        app.screen.selections = {settled: Selection(Offset(0, y), Offset(3, y))}
        await pilot.pause()
        style = app.screen.get_component_rich_style("screen--selection")
        line = settled.render_line(y)
        chosen = [seg.text for seg in line if seg.style and seg.style.bgcolor == style.bgcolor]
        assert "".join(chosen) == line.text[:3]
