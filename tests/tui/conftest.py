"""Fixtures and helpers for the TUI's tests: the app over a scripted engine and a
private session store, driven with Textual's Pilot (no model, no user config)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from qwenchat.config import Settings
from qwenchat.store import SessionStore
from qwenchat.tui.app import Launch, QwenchatApp
from qwenchat.tui.widgets.messages import AssistantBubble, NoteLine, ToolCallPanel, UserBubble
from qwenchat.tui.widgets.prompt_input import PromptInput
from qwenchat.tui.widgets.reply import ReplyView
from qwenchat.tui.widgets.settled import Part, SettledLines
from tests.fakes import ScriptedEngine

SIZE = (100, 40)

SHOUT_TOOL = '''
def shout(text: str) -> str:
    """Say a text loudly.

    Args:
        text: what to say.
    """
    return text.upper() + "!"
'''
"""A tools-dir file with one tool that needs approval (not marked safe)."""


def call(name: str, **arguments: object) -> str:
    """A reply that calls ``name`` in the Qwen2.5 format."""
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


TIMEOUT = 10.0  # seconds a condition may take on a loaded machine before the test fails


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Config and data dirs of the test's own: no user config, tools, personas or sessions."""
    monkeypatch.setenv("QWENCHAT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("QWENCHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("QWENCHAT_MODEL", raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    with SessionStore(tmp_path / "s.db") as opened:
        yield opened


@dataclass
class Tracked:
    """What the app under test did that the screen does not keep: its notifications and
    how many replies ended (done or failed)."""

    notes: list[tuple[str, str]] = field(default_factory=list)
    replies_ended: int = 0

    def messages(self, severity: str | None = None) -> list[str]:
        return [m for s, m in self.notes if severity is None or s == severity]


def make_app(
    store: SessionStore | None,
    replies: list[str] | None = None,
    *,
    engine: Any = None,
    settings: Settings | None = None,
    **launch: Any,
) -> QwenchatApp:
    """The app over ``engine`` (default: a scripted one replying ``replies``); ``app.tracked``
    records its notifications and counts the replies that ended."""
    if engine is None and replies is not None:
        engine = ScriptedEngine(replies)
    return TrackedApp(Launch(settings=settings or Settings(), **launch), store=store, engine=engine)


class TrackedApp(QwenchatApp):
    """The app, recording for the tests what the screen does not keep: its notifications
    (``tracked.notes``) and how many replies settled (its own ``ReplySettled``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tracked = Tracked()

    def notify(self, message: str, **kwargs: Any) -> None:  # type: ignore[override]
        self.tracked.notes.append((kwargs.get("severity", "information"), str(message)))
        super().notify(message, **kwargs)

    def on_qwenchat_app_reply_settled(self, _event: QwenchatApp.ReplySettled) -> None:
        self.tracked.replies_ended += 1


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], object], what: str = "", timeout: float = TIMEOUT
) -> None:
    """Let the app run until ``condition()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        await pilot.pause(0.02)


async def ready(pilot: Pilot[Any]) -> QwenchatApp:
    """Wait until the app has its model (if it was given one) and has probed the sandbox."""
    app: QwenchatApp = pilot.app  # type: ignore[assignment]
    await wait_for(pilot, lambda: app.state.code_ok is not None, "the sandbox probe")
    return app


def tracked(app: QwenchatApp) -> Tracked:
    return app.tracked  # type: ignore[attr-defined,no-any-return]


async def send(pilot: Pilot[Any], text: str, *, wait: bool = True) -> None:
    """Put ``text`` in the input and press Enter; wait for the reply to end unless told not to."""
    app: QwenchatApp = pilot.app  # type: ignore[assignment]
    ended = tracked(app).replies_ended
    box = app.query_one(PromptInput)
    box.focus()
    box.text = text
    await pilot.press("enter")
    if wait:
        await wait_reply_end(pilot, ended)


async def command(pilot: Pilot[Any], text: str) -> None:
    """Type a slash command in the input and press Enter (it does not wait for a reply)."""
    await send(pilot, text, wait=False)
    await pilot.pause()


async def wait_reply_end(pilot: Pilot[Any], ended_before: int) -> None:
    """Wait until more than ``ended_before`` replies have ended (done or failed)."""
    app: QwenchatApp = pilot.app  # type: ignore[assignment]
    await wait_for(pilot, lambda: tracked(app).replies_ended > ended_before, "the reply to end")


def users(app: QwenchatApp) -> list[str]:
    return [b.text for b in app.conversation.query(UserBubble)]


def replies(app: QwenchatApp) -> list[AssistantBubble]:
    return list(app.conversation.query(AssistantBubble))


def panels(app: QwenchatApp) -> list[ToolCallPanel]:
    return list(app.conversation.query(ToolCallPanel))


def notes(app: QwenchatApp) -> list[NoteLine]:
    return list(app.conversation.query(NoteLine))


async def settled_parts(pilot: Pilot[Any], view: ReplyView) -> list[tuple[Part, str]]:
    """The parts of a finished reply and the text of the lines each drew, once every one
    has settled into lines."""

    def settled() -> bool:
        return bool(view.children) and all(isinstance(c, SettledLines) for c in view.children)

    await wait_for(pilot, settled, "the reply's parts to settle")
    return [
        (part, "\n".join(settled.lines[y].text.rstrip() for y in rows))
        for settled in view.query_children(SettledLines)
        for part, rows in settled.parts
    ]


def footer_text(bubble: AssistantBubble) -> str:
    return str(bubble.footer.render())
