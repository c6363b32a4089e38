"""What the TUI is chatting with: the model, the role, the session and its :class:`Chat`.

Plain Python, no Textual: the app asks this object to open, switch and save
conversations and turn tools and TIR on or off, and draws the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qwenchat.errors import QwenchatError, Warn
from qwenchat.opening import Role, choose_role, continue_session, opening_messages

if TYPE_CHECKING:
    from qwenchat.agent import Approver
    from qwenchat.chat import Chat
    from qwenchat.chatml import Attachment, Message
    from qwenchat.config import Settings
    from qwenchat.engine.base import Engine
    from qwenchat.mcp.tools import McpServers
    from qwenchat.recorder import SessionRecorder
    from qwenchat.store import Session, SessionStore
    from qwenchat.tools import ToolRegistry

TITLE_CHARS = 60
"""A new session's title: the start of its first message."""


class ChatState:
    """The conversation on screen and everything it is held with.

    ``chat`` exists once a model is loaded; until then the conversation waits as
    ``history``. ``session`` is None for a conversation not yet saved: it becomes a
    session with its first message (:meth:`ensure_session`).
    """

    def __init__(self, settings: Settings, store: SessionStore | None, approver: Approver) -> None:
        self.settings = settings
        self.store = store
        self.role = Role(settings)
        self.engine: Engine | None = None
        self.chat: Chat | None = None
        self.session: Session | None = None
        self.tools_on = False
        self.tir_on = False
        self.code_ok: bool | None = None  # can model-written code run here? None: not probed yet
        self.registry: ToolRegistry | None = None
        self.pending_files: list[Attachment] = []
        """Files ``/file`` read, to go with the next message."""
        self.mcp: McpServers | None = None
        """The MCP servers, once tools were first on (the app starts them)."""
        self._approver = approver
        self._history: list[Message] | None = None
        self._recorder: SessionRecorder | None = None

    @property
    def messages(self) -> list[Message]:
        return self.chat.messages if self.chat is not None else list(self._history or [])

    def open(
        self,
        history: list[Message] | None,
        recorder: SessionRecorder | None = None,
        session: Session | None = None,
    ) -> None:
        """Hold this conversation from now on (``session`` None: a new, unsaved one)."""
        if self.chat is not None:
            self.chat.close()
        self.session = session
        self._history, self._recorder = history, recorder
        self.chat = self._make_chat() if self.engine is not None else None

    def open_new(self, role: Role | None = None) -> None:
        """A new conversation with ``role`` (default: the current one)."""
        self.role = role or self.role
        self.open(opening_messages(self.role))

    def open_session(self, session: Session | str, warn: Warn) -> None:
        """Continue a stored session, or the one called ``session`` (created if new)."""
        assert self.store is not None
        if not isinstance(session, str):
            self.role = self._role_of(session, warn)
        history, recorder = continue_session(self.store, session, self.role, warn)
        # Opened by name, a new session shows in the sidebar at once, empty.
        self.open(history, recorder, self.store.get_session(recorder.ensure_session()))

    def _role_of(self, session: Session, warn: Warn) -> Role:
        """A stored session's persona (for its sampling), if it still exists."""
        if session.persona:
            try:
                return choose_role(self.settings, persona=session.persona)
            except QwenchatError:
                warn(f"persona {session.persona!r} is gone; using the defaults")
        return Role(self.settings, system=session.system_prompt)

    def set_engine(self, engine: Engine) -> None:
        """Chat with ``engine`` from now on (the conversation goes on)."""
        from qwenchat.opening import use_kv_cache

        old, self.engine = self.engine, engine
        close = getattr(old, "close", None)
        if close is not None:
            close()
        use_kv_cache(engine, self.settings)
        if self.chat is None:
            self.chat = self._make_chat()
        else:
            self.chat.engine = engine

    def probed(self, code_ok: bool, registry: ToolRegistry) -> None:
        """The sandbox and the tools are known: apply the modes that were asked for."""
        self.code_ok, self.registry = code_ok, registry
        self.tir_on = self.tir_on and code_ok
        self.configure()

    def add_tools(self, found: ToolRegistry) -> None:
        """More tools (the MCP servers'): offered from the next reply on."""
        if self.registry is None:
            return
        for tool in found:
            self.registry.add(tool)
        self.configure()

    def set_tir(self, on: bool) -> None:
        self.tir_on = on
        if self.fresh() and self.role.system is None and self.engine is not None:
            self.chat = self._make_chat()  # the default system prompt follows TIR
        self.configure()

    def set_tools(self, on: bool) -> None:
        self.tools_on = on
        self.configure()

    def fresh(self) -> bool:
        """Whether the conversation has not begun (no message of the user's yet)."""
        return not any(message.role == "user" for message in self.messages)

    def configure(self, chat: Chat | None = None) -> None:
        """Give the chat the tools and the mode switched on."""
        chat = chat or self.chat
        if chat is None or self.code_ok is None:
            return
        from qwenchat.tools import Tool, ToolRegistry

        chat.tir = self.tir_on
        tools: list[Tool] = []
        if self.tools_on:
            tools = list(self.registry or ())
            if self.code_ok:
                tools.append(chat.python_tool())
        chat.tools = ToolRegistry(tools) if tools else None

    def _make_chat(self) -> Chat:
        from qwenchat.agent import ApprovalPolicy
        from qwenchat.chat import Chat

        assert self.engine is not None
        chat = Chat(
            system=self.role.system,
            settings=self.role.settings,
            engine=self.engine,
            tir=self.tir_on,  # with no system prompt given, TIR brings its own
            approval=ApprovalPolicy(ask=self._approver),
            history=self._history,
            recorder=self._recorder,
        )
        self.configure(chat)
        return chat

    def ensure_session(self, first_message: str) -> None:
        """Save a new conversation as a session from its first message on."""
        if self.session is not None or self.store is None or self.chat is None:
            return
        from qwenchat.recorder import SessionRecorder

        self.session = self.store.create_session(
            title=" ".join(first_message.split())[:TITLE_CHARS],
            persona=self.role.persona,
            system_prompt=self.role.system,
            model=self.chat.engine.model_name,
        )
        self.chat.recorder = SessionRecorder(self.store, self.session.id, [])

    def sessions(self, query: str = "") -> list[Session]:
        """The stored sessions, newest first; with ``query``, those whose title or text
        has it."""
        if self.store is None:
            return []
        sessions = self.store.list_sessions()
        if not query.strip():
            return sessions
        hits = {hit.session_id for hit in self.store.search(query)}
        words = query.lower().split()
        return [
            s
            for s in sessions
            if s.id in hits or all(w in (s.title or s.name or "").lower() for w in words)
        ]

    def close(self) -> None:
        if self.chat is not None:
            self.chat.close()
        if self.mcp is not None:
            self.mcp.close()
