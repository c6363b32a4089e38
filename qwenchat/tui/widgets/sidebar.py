"""The sessions sidebar: a search box over a list of saved sessions, newest first."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from qwenchat.safetext import shown
from qwenchat.store import Session


def session_label(session: Session) -> Content:
    """Title over date. The title may be the model's or an import's: a variable of the
    markup, never parsed as markup itself (escaping misses Textual's ``[2J...]`` tags)."""
    title = session.title or session.name or f"session {session.id}"
    return Content.from_markup(
        "$title\n[dim]$updated[/]",
        title=shown(title[:40]),
        updated=f"{session.updated:%Y-%m-%d %H:%M}",
    )


class SessionList(OptionList):
    BINDINGS = [
        Binding("n", "app.new_session", "New"),
        Binding("r", "app.rename_session", "Rename"),
        Binding("delete,d", "app.delete_session", "Delete"),
    ]


class SessionSidebar(Vertical):
    """Posts :class:`Picked` when a session is chosen and :class:`Searched` as the query changes."""

    class Picked(Message):
        def __init__(self, session_id: int) -> None:
            super().__init__()
            self.session_id = session_id

    class Searched(Message):
        def __init__(self, query: str) -> None:
            super().__init__()
            self.query = query

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search sessions", id="session-search")
        yield SessionList(id="session-list")

    def show(self, sessions: list[Session], current: int | None) -> None:
        """List ``sessions`` and highlight the ``current`` one."""
        options = self.query_one(SessionList)
        options.clear_options()
        options.add_options([Option(session_label(s), id=str(s.id)) for s in sessions])
        ids = [s.id for s in sessions]
        if current in ids:
            options.highlighted = ids.index(current)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Searched(event.value))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Picked(int(event.option.id)))

    @property
    def highlighted_session(self) -> int | None:
        options = self.query_one(SessionList)
        if options.highlighted is None:
            return None
        option_id = options.get_option_at_index(options.highlighted).id
        return int(option_id) if option_id is not None else None
