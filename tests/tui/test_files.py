"""Files in the TUI: /file PATH (Tab completes it) reads a file for the next message,
which carries it (shown collapsed above the message, kept in the session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qwenchat.chatml import UserMessage
from qwenchat.store import SessionStore
from qwenchat.tui.widgets.attachments import AttachedFiles, PendingFiles
from qwenchat.tui.widgets.prompt_input import PromptInput
from tests.documents import write_pdf
from tests.fakes import ScriptedEngine
from tests.tui.conftest import SIZE, command, make_app, ready, replies, send, wait_for

pytestmark = pytest.mark.asyncio


async def test_a_file_goes_with_the_next_message_and_stays_in_the_session(
    store: SessionStore, tmp_path: Path
) -> None:
    pdf = write_pdf(tmp_path / "plan.pdf", ["The launch is on May 3."])
    engine = ScriptedEngine(["May 3.", "Yes."])
    app = make_app(store, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, f"/file {pdf}")
        pending = app.query_one(PendingFiles)
        await wait_for(pilot, lambda: pending.display, "the pending file")
        assert "plan.pdf" in str(pending.render()) and "tokens" in str(pending.render())
        await send(pilot, "When is the launch?")
        assert (
            "plan.pdf\n```\nThe launch is on May 3.\n```\n\nWhen is the launch?"
            in (engine.prompts[-1])
        )
        assert not pending.display and app.state.pending_files == []
        [files] = app.query(AttachedFiles)
        assert "plan.pdf" in str(files.title) and files.collapsed
        assert replies(app)[-1].text == "May 3."
        # The next message goes alone; the session keeps the file with its message.
        await send(pilot, "Sure?")
        assert engine.prompts[-1].count("The launch is on May 3.") == 1
        [session] = store.list_sessions()
        first = store.history(session.id)[0].to_message()
        assert isinstance(first, UserMessage) and first.attachments[0].kind == "pdf"


async def test_a_file_that_cannot_be_read_is_one_warning(
    store: SessionStore, tmp_path: Path
) -> None:
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    app = make_app(store, ["never"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, f"/file {tmp_path / 'photo.png'}")
        await wait_for(pilot, lambda: app.tracked.messages("warning"), "the warning")
        [warning] = app.tracked.messages("warning")
        assert "photo.png is not text" in warning
        assert not app.query_one(PendingFiles).display


async def test_tab_completes_the_path_after_file(store: SessionStore, tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "meeting-minutes.md").write_text("x")
    (tmp_path / "notes" / "meeting-agenda.md").write_text("y")
    app = make_app(store, ["never"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        box = app.query_one(PromptInput)
        box.focus()
        box.text = f"/file {tmp_path}/no"
        box.move_cursor(box.document.end)
        await pilot.press("tab")
        assert box.text == f"/file {tmp_path}/notes/"
        box.text += "me"
        await pilot.press("tab")
        assert box.text == f"/file {tmp_path}/notes/meeting-"
        await pilot.pause()
        assert any("meeting-agenda.md" in m for m in app.tracked.messages())
        assert os.path.isdir(box.text.removeprefix("/file ").rsplit("/", 1)[0])
