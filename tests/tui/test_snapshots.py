"""SVG snapshots of the main screens (pytest-textual-snapshot).

Update them with ``pytest tests/tui/test_snapshots.py --snapshot-update`` and look at
the report. What varies from run to run is pinned: the reply footer's figures, the
status bar's figures and sandbox, tool-call durations, session times, cursor blink.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from qwenchat.agent import ToolCallRecord
from qwenchat.chatml import AssistantMessage, UserMessage
from qwenchat.store import SessionStore
from qwenchat.tui.app import QwenchatApp
from qwenchat.tui.screens.approval import ApprovalScreen
from qwenchat.tui.screens.help import HelpScreen
from qwenchat.tui.widgets.messages import ToolCallPanel
from qwenchat.tui.widgets.prompt_input import PromptInput
from qwenchat.tui.widgets.sidebar import SessionList
from tests.fakes import ScriptedEngine
from tests.tui.conftest import SHOUT_TOOL, SIZE, call, make_app, ready, send, wait_for

FIXED_TIME = "2025-03-14T15:09:26.000000+00:00"

CODE_ANSWER = (
    "The product is **42**. In Python:\n\n"
    "```python\n"
    "def product(a: int, b: int) -> int:\n"
    "    return a * b\n\n"
    "print(product(6, 7))  # 42\n"
    "```\n\n"
    "- exact for integers of any size\n"
    "- `*` is the operator"
)


@pytest.fixture(autouse=True)
def _steady(monkeypatch: pytest.MonkeyPatch) -> None:
    """No figures that change from run to run."""
    monkeypatch.setattr(
        "qwenchat.tui.widgets.conversation.describe_figures",
        lambda reply: "42 tokens · 20.0 tok/s · 2.1 s",
    )
    finish = ToolCallPanel.finish

    def finish_in_no_time(self: ToolCallPanel, record: ToolCallRecord) -> None:
        finish(self, record.model_copy(update={"duration_s": 0.0}))

    monkeypatch.setattr(ToolCallPanel, "finish", finish_in_no_time)


async def settle(pilot: Pilot[Any]) -> None:
    """Pin the status bar, stop the cursors blinking, drop the notifications."""
    app: QwenchatApp = pilot.app  # type: ignore[assignment]
    app.status.set(
        sandbox="bubblewrap", context_used=1234, tokens_per_s=20.0, ttft_s=0.25, state=""
    )
    for widget in [*app.query(PromptInput), *app.query(Input)]:
        widget.cursor_blink = False
    app.clear_notifications()
    await pilot.pause()


def with_app(
    work: Callable[[Pilot[Any]], Awaitable[None]],
) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await work(pilot)
        await settle(pilot)

    return run_before


def test_conversation_with_a_tool_call_and_code(snap_compare: Any, store: SessionStore) -> None:
    engine = ScriptedEngine([call("calculator", expression="6 * 7"), CODE_ANSWER])
    app = make_app(store, engine=engine, tools=True)

    async def work(pilot: Pilot[Any]) -> None:
        await send(pilot, "What is 6 times 7? Show me the Python too.")
        panel = app.query_one(ToolCallPanel)
        panel.collapsed = False
        await wait_for(pilot, lambda: panel.query(".result"), "the result")

    assert snap_compare(app, terminal_size=SIZE, run_before=with_app(work))


def test_sidebar(snap_compare: Any, store: SessionStore) -> None:
    for title, question in [
        ("Packing for a week in Lisbon", "What should I pack?"),
        ("Sourdough starter", "Why is my starter not rising?"),
        ("Big-O of heapq.merge", "What is the complexity of heapq.merge?"),
    ]:
        session = store.create_session(title=title)
        store.add_message(session.id, UserMessage(content=question))
        store.add_message(session.id, AssistantMessage(content="An answer."))
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE sessions SET created = ?, updated = ?", (FIXED_TIME, FIXED_TIME))
    app = make_app(store, ["unused"])

    async def work(pilot: Pilot[Any]) -> None:
        await pilot.press("ctrl+b")
        options = app.query_one(SessionList)
        await wait_for(pilot, lambda: options.option_count == 3, "the sessions")
        options.highlighted = 1

    assert snap_compare(app, terminal_size=SIZE, run_before=with_app(work))


def test_approval_dialog(snap_compare: Any, store: SessionStore) -> None:
    tools = Path(os.environ["QWENCHAT_CONFIG_DIR"]) / "tools"
    tools.mkdir(parents=True)
    (tools / "shout.py").write_text(SHOUT_TOOL, encoding="utf-8")
    engine = ScriptedEngine([call("shout", text="ahoy there"), "Shouted.", "spare"])
    app = make_app(store, engine=engine, tools=True)

    async def work(pilot: Pilot[Any]) -> None:
        app.sandbox_line = "sandbox bubblewrap (bwrap works)"
        await send(pilot, "Shout ahoy there", wait=False)
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the dialog")

    assert snap_compare(app, terminal_size=SIZE, run_before=with_app(work))


def test_help_screen(snap_compare: Any, store: SessionStore) -> None:
    app = make_app(store, ["unused"])

    async def work(pilot: Pilot[Any]) -> None:
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")

    assert snap_compare(app, terminal_size=SIZE, run_before=with_app(work))
