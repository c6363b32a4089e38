"""The Textual app: a thin shell over :class:`~qwenchat.chat.Chat` and the session store.

Everything that blocks runs in thread workers: loading a model, probing the sandbox,
and the agent loop of each reply. The reply's worker feeds text deltas straight to the
reply widget's buffer (drawn on a timer) and hands every other event to the UI thread
with ``call_from_thread``, waiting for it, so panels and text keep their order.
"""

from __future__ import annotations

import re
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer

from qwenchat.conversation import Role, choose_role, continue_session, opening_messages
from qwenchat.errors import InputError, QwenchatError
from qwenchat.tui.commands import SlashCommands, parse_slash
from qwenchat.tui.widgets.conversation import Conversation
from qwenchat.tui.widgets.messages import UserBubble
from qwenchat.tui.widgets.prompt_input import PromptInput
from qwenchat.tui.widgets.sidebar import SessionSidebar
from qwenchat.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from qwenchat.agent import Approval
    from qwenchat.chat import Chat, Reply, ReplyStream
    from qwenchat.chatml import Message
    from qwenchat.config import Settings
    from qwenchat.engine.base import Engine
    from qwenchat.recorder import SessionRecorder
    from qwenchat.store import Session, SessionStore
    from qwenchat.tools import Tool, ToolRegistry

_TITLE_CHARS = 60


@dataclass(frozen=True)
class Launch:
    """What ``qwenchat`` / ``qwenchat chat`` was started with."""

    settings: Settings
    session: str | None = None
    persona: str | None = None
    prompt: str | None = None
    system: str | None = None
    model: str | None = None
    tools: bool = False
    tir: bool = False


class QwenchatApp(App[None]):
    """``qwenchat``: chat with a local Qwen2.5 model."""

    CSS_PATH = "app.tcss"
    TITLE = "qwenchat"
    COMMANDS: ClassVar = App.COMMANDS | {SlashCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("escape", "stop", "Stop", show=False),
        Binding("ctrl+n", "new_session", "New"),
        Binding("ctrl+r", "retry", "Retry"),
        Binding("f2", "edit_last", "Edit"),
        Binding("f3", "copy", "Copy"),
        Binding("ctrl+t", "toggle_tools", "Tools"),
        Binding("ctrl+g", "toggle_tir", "TIR"),
        Binding("ctrl+b", "toggle_sidebar", "Sessions"),
        Binding("ctrl+l", "clear", "Clear", show=False),
    ]

    def __init__(
        self, launch: Launch, *, store: SessionStore | None = None, engine: Engine | None = None
    ) -> None:
        """``store`` and ``engine``: already open ones (tests, embedding); by default the
        app opens the session store and loads the model itself, in the background."""
        super().__init__()
        self._given_engine = engine
        self.launch = launch
        self.settings = launch.settings
        self.role = Role(self.settings)
        self.store = store
        self.engine: Engine | None = None
        self.chat: Chat | None = None
        self.session: Session | None = None
        self.tools_on = launch.tools
        self.tir_on = launch.tir
        self.sandbox_line = ""  # set once the sandbox is probed
        self.code_ok: bool | None = None  # None: not probed yet
        self.registry: ToolRegistry | None = None
        self.stream: ReplyStream | None = None
        self._history: list[Message] | None = None
        self._recorder: SessionRecorder | None = None
        self._closing = False

    # Layout and start-up

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield SessionSidebar(id="sidebar")
            with Vertical(id="chat"):
                yield Conversation(id="conversation")
                yield PromptInput(id="input")
        yield StatusBar(id="status")
        yield Footer()

    @property
    def conversation(self) -> Conversation:
        return self.query_one(Conversation)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    async def on_mount(self) -> None:
        self._apply_theme()
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.query_one(PromptInput).focus()
        self.status.set(tools=self.tools_on, tir=self.tir_on)
        if self.store is None:
            self._open_store()
        problem = None
        try:
            self.role = choose_role(
                self.settings,
                system=self.launch.system,
                prompt=self.launch.prompt,
                persona=self.launch.persona,
                model=self.launch.model,
            )
        except QwenchatError as exc:
            problem = str(exc)
        await self._start(self.launch.session)
        if problem is not None:  # shown after _start, which clears the conversation
            await self._error(problem)
        self._probe_environment()
        if self._given_engine is not None:
            self._model_loaded(self._given_engine)
        else:
            self._load_model(self.role.model)
        self._warm_highlighter()

    def _apply_theme(self) -> None:
        theme = self.settings.ui.theme
        if theme is None:
            return
        if theme in self.available_themes:
            self.theme = theme
        else:
            self.notify(f"config: no theme named {theme!r}; using {self.theme}", severity="warning")

    def _remember_theme(self, _theme: object) -> None:
        from qwenchat.config import save_theme

        try:
            save_theme(self.theme)
        except OSError as exc:
            self.notify(f"could not save the theme in the config file: {exc}", severity="warning")

    def _open_store(self) -> None:
        from qwenchat.store import SessionStore, default_store_path

        try:
            self.store = SessionStore(default_store_path())
        except QwenchatError as exc:
            self.notify(f"{exc}; this conversation will not be saved", severity="error")
            return
        if self.store.notice:
            self.notify(self.store.notice, severity="warning")

    async def _start(self, session_name: str | None) -> None:
        if session_name and self.store is not None:
            try:
                history, recorder = continue_session(
                    self.store, session_name, self.role, self._warn
                )
            except QwenchatError as exc:
                await self._open(opening_messages(self.role), None, None)
                await self._error(str(exc))  # after _open, which clears the conversation
                return
            session = self.store.get_session(recorder.session_id)
            await self._open(history, recorder, session)
            return
        await self._open(opening_messages(self.role), None, None)

    @work(thread=True, group="startup")
    def _probe_environment(self) -> None:
        """Find the sandbox layer and load the tools (slow-ish: kept off the UI thread)."""
        from qwenchat.conversation import describe_sandbox, sandbox_status
        from qwenchat.tools import default_tool_dirs, load_tools

        usable, warning = sandbox_status(self.settings)
        line = describe_sandbox(self.settings) if usable else "none"
        loaded = load_tools(default_tool_dirs())
        self.call_from_thread(self._environment_probed, usable, warning, line, loaded)

    def _environment_probed(
        self, usable: bool, warning: str | None, line: str, loaded: Any
    ) -> None:
        self.code_ok = usable
        self.sandbox_line = line
        self.registry = loaded.registry
        for problem in loaded.problems:
            self.notify(problem, severity="warning")
        if warning and (self.tools_on or self.tir_on):
            self.notify(warning, severity="warning")
        if not usable and self.tir_on:
            self.tir_on = False
        layer = line.split(" (")[0].removeprefix("sandbox ")
        self.status.set(sandbox=layer, tir=self.tir_on)
        self._configure_chat()

    @work(thread=True, group="startup")
    def _warm_highlighter(self) -> None:
        """Import the Python lexer now, not when the first code block is drawn."""
        from textual.highlight import highlight

        highlight("x = 1", language="python")

    # The model

    @work(thread=True, exclusive=True, group="model")
    def _load_model(self, model: str | None) -> None:
        from qwenchat.engine.load import load_engine

        self.call_from_thread(self.status.set, state="loading model…")
        try:
            engine = load_engine(model, self.settings, warn=self._warn_from_thread)
        except QwenchatError as exc:
            self.call_from_thread(self._model_failed, str(exc))
            return
        self.call_from_thread(self._model_loaded, engine)

    async def _model_failed(self, message: str) -> None:
        self.status.set(state="")
        await self._error(f"{message} (/model picks another)")

    def _model_loaded(self, engine: Engine) -> None:
        from qwenchat.conversation import use_kv_cache

        old, self.engine = self.engine, engine
        if old is not None:
            close = getattr(old, "close", None)
            if close is not None:
                close()
        use_kv_cache(engine, self.settings)
        gguf = getattr(engine, "gguf", None)
        offloaded = getattr(engine, "gpu_layers_offloaded", 0)
        total = getattr(engine, "gpu_layers_total", 0)
        self.status.set(
            model=engine.model_name,
            quant=(gguf.file_type or "") if gguf is not None else "",
            offload=f"GPU {offloaded}/{total}" if offloaded else "CPU",
            n_ctx=engine.n_ctx,
            state="",
        )
        if self.chat is None:
            self.chat = self._make_chat()
        else:
            self.chat.engine = engine

    # Conversations and sessions

    async def _open(
        self,
        history: list[Message] | None,
        recorder: SessionRecorder | None,
        session: Session | None,
    ) -> None:
        """Show a conversation (``session`` None: a new one, saved from its first message)."""
        if self.chat is not None:
            self.chat.close()
        self.session = session
        self._history, self._recorder = history, recorder
        self.chat = self._make_chat() if self.engine is not None else None
        await self.conversation.show_history(history or [])
        self.status.set(persona=self.role.persona or "", context_used=0)
        self._refresh_sidebar()

    def _make_chat(self) -> Chat:
        from qwenchat.agent import ApprovalPolicy
        from qwenchat.chat import Chat

        assert self.engine is not None
        chat = Chat(
            system=self.role.system,
            settings=self.role.settings,
            engine=self.engine,
            tir=self.tir_on,  # with no system prompt given, TIR brings its own
            approval=ApprovalPolicy(ask=self._approve_from_thread),
            history=self._history,
            recorder=self._recorder,
        )
        self._configure_chat(chat)
        return chat

    def _configure_chat(self, chat: Chat | None = None) -> None:
        """Give the chat the tools and mode the user has switched on."""
        chat = chat or self.chat
        if chat is None or self.code_ok is None:
            return
        chat.tir = self.tir_on
        tools: list[Tool] = []
        if self.tools_on:
            tools = list(self.registry or ())
            if self.code_ok:
                tools.append(chat.python_tool())
        from qwenchat.tools import ToolRegistry

        chat.tools = ToolRegistry(tools) if tools else None

    def _refresh_sidebar(self, query: str = "") -> None:
        if self.store is None:
            return
        sessions = self.store.list_sessions()
        if query.strip():
            hits = {hit.session_id for hit in self.store.search(query)}
            words = query.lower().split()
            sessions = [
                s
                for s in sessions
                if s.id in hits or all(w in (s.title or s.name or "").lower() for w in words)
            ]
        self.query_one(SessionSidebar).show(sessions, self.session.id if self.session else None)

    def on_session_sidebar_searched(self, event: SessionSidebar.Searched) -> None:
        try:
            self._refresh_sidebar(event.query)
        except QwenchatError as exc:
            self.notify(str(exc), severity="warning")

    async def on_session_sidebar_picked(self, event: SessionSidebar.Picked) -> None:
        if self._busy():
            return
        assert self.store is not None
        if self.session is not None and event.session_id == self.session.id:
            self.query_one(PromptInput).focus()
            return
        try:
            session = self.store.get_session(event.session_id)
            self.role = self._role_of(session)
            history, recorder = continue_session(self.store, session, self.role, self._warn)
        except QwenchatError as exc:
            await self._error(str(exc))
            return
        await self._open(history, recorder, session)
        self.query_one(PromptInput).focus()

    def _role_of(self, session: Session) -> Role:
        """A stored session's persona (for its sampling), if it still exists."""
        if session.persona:
            try:
                return choose_role(self.settings, persona=session.persona)
            except QwenchatError:
                self.notify(f"persona {session.persona!r} is gone; using the defaults")
        return Role(self.settings, system=session.system_prompt)

    def _ensure_session(self, first_message: str) -> None:
        """Save a new conversation as a session from its first message on."""
        if self.session is not None or self.store is None or self.chat is None:
            return
        from qwenchat.recorder import SessionRecorder

        title = " ".join(first_message.split())[:_TITLE_CHARS]
        self.session = self.store.create_session(
            title=title,
            persona=self.role.persona,
            system_prompt=self.role.system,
            model=self.chat.engine.model_name,
        )
        self.chat.recorder = SessionRecorder(self.store, self.session.id, [])

    # Sending and streaming

    async def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        text = event.text.strip()
        if text.startswith("/"):
            try:
                action = parse_slash(text)
            except InputError as exc:
                self.notify(str(exc), severity="warning")
                return
            self.query_one(PromptInput).clear()
            await self.run_action(action)
            return
        if self._busy() or not self._can_send():
            return
        assert self.chat is not None
        self._ensure_session(text)
        try:
            stream = self.chat.stream(text)
        except QwenchatError as exc:
            await self._error(str(exc))
            return
        self.query_one(PromptInput).clear()
        await self.conversation.add_user(text)
        await self._begin(stream)

    def _busy(self) -> bool:
        if self.stream is not None:
            self.notify("the model is still writing: Esc stops it", severity="warning")
            return True
        return False

    def _can_send(self) -> bool:
        if self.chat is None:
            loading = self.status.info.state.startswith("loading")
            self.notify(
                "the model is still loading" if loading else "no model is loaded: /model picks one",
                severity="warning",
            )
            return False
        return True

    async def _begin(self, stream: ReplyStream) -> None:
        assert self.chat is not None
        self.stream = stream
        self.status.set(state="writing…  (Esc stops)")
        await self.conversation.stream_reply(
            stream, tir=self.chat.tir, measure=self.chat.context_tokens
        )

    async def on_conversation_reply_ended(self, event: Conversation.ReplyEnded) -> None:
        await self._reply_done(event.reply, event.context_used)

    async def on_conversation_reply_failed(self, event: Conversation.ReplyFailed) -> None:
        await self._reply_failed(event.error)

    async def _reply_done(self, reply: Reply, context_used: int) -> None:
        self.stream = None
        self.status.set(
            state="",
            tokens_per_s=reply.timings.decode_tokens_per_s,
            ttft_s=reply.timings.ttft_s,
            context_used=context_used,
        )
        self._refresh_sidebar()

    async def _reply_failed(self, error: str) -> None:
        self.stream = None
        self.status.set(state="")
        await self._error(error)

    async def _error(self, message: str) -> None:
        """An error: shown where it happened and as a notification; the app goes on."""
        self.notify(message, severity="error", timeout=8)
        await self.conversation.add_note(f"✗ {message}", error=True)

    def _warn(self, message: str) -> None:
        self.notify(message, severity="warning")

    def _warn_from_thread(self, message: str) -> None:
        self.call_from_thread(self._warn, message)

    def _approve_from_thread(self, tool: Tool, arguments: dict[str, Any]) -> Approval:
        """The approver the agent loop calls from the reply's worker: ask in a modal."""
        from qwenchat.tui.screens.approval import ApprovalScreen

        answer: Future[Approval] = Future()
        screen = ApprovalScreen(tool.name, arguments, self.sandbox_line or "no sandbox")
        self.call_from_thread(self.push_screen, screen, answer.set_result)
        while not self._closing:  # the app may quit while the dialog is open
            try:
                return answer.result(timeout=0.2)
            except TimeoutError:
                continue
        return "deny"

    # Actions (keys, palette and slash commands)

    def action_help(self) -> None:
        from qwenchat.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_stop(self) -> None:
        if self.stream is not None:
            self.stream.cancel()

    async def action_retry(self) -> None:
        if self._busy() or not self._can_send():
            return
        assert self.chat is not None
        try:
            stream = self.chat.retry()
        except QwenchatError as exc:
            self.notify(str(exc), severity="warning")
            return
        await self._remove_after_last_user(keep_user=True)
        await self._begin(stream)

    async def _remove_after_last_user(self, *, keep_user: bool) -> None:
        widgets = list(self.conversation.children)
        users = [i for i, w in enumerate(widgets) if isinstance(w, UserBubble)]
        start = users[-1] + (1 if keep_user else 0) if users else len(widgets)
        for widget in widgets[start:]:
            await widget.remove()

    def action_edit_last(self) -> None:
        if self._busy() or not self._can_send():
            return
        from qwenchat.chatml import UserMessage
        from qwenchat.tui.screens.text_edit import TextEditScreen

        assert self.chat is not None
        users = [i for i, m in enumerate(self.chat.messages) if isinstance(m, UserMessage)]
        if not users:
            self.notify("there is no message of yours to edit yet", severity="warning")
            return
        index = users[-1]

        async def edited(text: str | None) -> None:
            if text is None or not text.strip() or self.chat is None:
                return
            try:
                stream = self.chat.edit(index, text)
            except QwenchatError as exc:
                await self._error(str(exc))
                return
            await self._remove_after_last_user(keep_user=False)
            await self.conversation.add_user(text)
            await self._begin(stream)

        current = self.chat.messages[index].content
        self.push_screen(TextEditScreen("Edit your last message", current), edited)

    def action_copy(self, what: str = "reply") -> None:
        reply = self.conversation.last_reply
        if reply is None or not reply.text.strip():
            self.notify("there is no reply to copy yet", severity="warning")
            return
        text = reply.text
        if what == "code":
            blocks = [block for block in reply.reply.code_blocks if block.closed]
            if not blocks:
                self.notify("the last reply has no code block", severity="warning")
                return
            text = blocks[-1].code
        self.copy_to_clipboard(text)
        self.notify(f"copied {len(text)} characters ({what})")

    async def action_new_session(self) -> None:
        if self._busy():
            return
        self.role = Role(self.settings)
        await self._open(opening_messages(self.role), None, None)
        self.query_one(PromptInput).focus()

    async def action_clear(self) -> None:
        """A new conversation with the same role."""
        if self._busy():
            return
        await self._open(opening_messages(self.role), None, None)

    def action_edit_system(self) -> None:
        if self._busy():
            return
        from qwenchat.chatml import SystemMessage
        from qwenchat.tui.screens.text_edit import TextEditScreen

        messages = self.chat.messages if self.chat is not None else self._history or []
        current = messages[0].content if messages and isinstance(messages[0], SystemMessage) else ""
        current = current or self.role.system or self.settings.system_prompt or ""

        async def edited(text: str | None) -> None:
            if text is None or text == current:
                return
            self.role = Role(self.role.settings, system=text, model=self.role.model)
            started = self.session is not None
            await self._open(opening_messages(self.role), None, None)
            if started:
                self.notify("the new system prompt starts a new session; the old one is kept")

        self.push_screen(TextEditScreen("System prompt", current), edited)

    def action_pick_persona(self) -> None:
        if self._busy():
            return
        from qwenchat.personas import list_personas
        from qwenchat.tui.screens.picker import PickerScreen

        try:
            personas = list_personas()
        except QwenchatError as exc:
            self.notify(str(exc), severity="error")
            return
        options = [("", "(none: the default assistant)")] + [
            (name, f"{name}  [dim]{p.description or ''}[/]") for name, p in personas.items()
        ]

        async def picked(name: str | None) -> None:
            if name is None:
                return
            try:
                role = choose_role(self.settings, persona=name) if name else Role(self.settings)
            except QwenchatError as exc:
                await self._error(str(exc))
                return
            self.role = role
            await self._open(opening_messages(role), None, None)
            if role.model and self.engine is not None and role.model != self.engine.model_name:
                self._load_model(role.model)

        self.push_screen(PickerScreen("Play a persona", options, self.role.persona or ""), picked)

    def action_pick_model(self) -> None:
        if self._busy():
            return
        from qwenchat.models import model_files
        from qwenchat.tui.screens.picker import PickerScreen

        models_dir = self.settings.resolved_models_dir()
        files = model_files(models_dir) if models_dir.is_dir() else []
        if not files:
            self.notify(f"no models in {models_dir}", severity="warning")
            return
        options = [
            (str(path), f"{path.stem}  [dim]{path.stat().st_size >> 20} MiB[/]") for path in files
        ]
        current = (
            str(self.engine.path)
            if self.engine is not None and hasattr(self.engine, "path")
            else None
        )  # type: ignore[attr-defined]

        def picked(path: str | None) -> None:
            if path is not None and path != current:
                self._load_model(path)

        self.push_screen(PickerScreen("Load a model", options, current), picked)

    def action_toggle_tools(self) -> None:
        self.tools_on = not self.tools_on
        if self.tools_on and self.code_ok is False:
            self.notify("no sandbox works here: the python tool is off", severity="warning")
        self._configure_chat()
        self.status.set(tools=self.tools_on)
        self.notify(f"tools {'on' if self.tools_on else 'off'}")

    def action_toggle_tir(self) -> None:
        if not self.tir_on and self.code_ok is False:
            self.notify("TIR needs a sandbox and none works here", severity="error")
            return
        self.tir_on = not self.tir_on
        if self._fresh() and self.role.system is None:  # the default system prompt follows TIR
            self.chat = self._make_chat() if self.engine is not None else None
        self._configure_chat()
        self.status.set(tir=self.tir_on)
        self.notify(f"tool-integrated reasoning {'on' if self.tir_on else 'off'}")

    def _fresh(self) -> bool:
        """Whether the conversation has not begun (no message of the user's yet)."""
        from qwenchat.chatml import UserMessage

        messages = self.chat.messages if self.chat is not None else self._history or []
        return not any(isinstance(m, UserMessage) for m in messages)

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one(SessionSidebar)
        sidebar.display = not sidebar.display
        if sidebar.display:
            self._refresh_sidebar()
            sidebar.query_one("#session-list").focus()
        else:
            self.query_one(PromptInput).focus()

    def action_export(self, fmt: str = "md") -> None:
        if self.store is None or self.session is None:
            self.notify(
                "nothing to export yet: this conversation has not started", severity="warning"
            )
            return
        text = self.store.export_session(self.session.id, fmt)  # type: ignore[arg-type]
        slug = re.sub(r"[^\w-]+", "-", (self.session.title or "session").lower()).strip("-")
        path = Path.cwd() / f"qwenchat-{self.session.id}-{slug[:40]}.{fmt}"
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            self.notify(f"could not write {path}: {exc}", severity="error")
            return
        self.notify(f"saved {path}")

    def _session_in_focus(self) -> int | None:
        sidebar = self.query_one(SessionSidebar)
        if sidebar.display and sidebar.query_one("#session-list").has_focus:
            return sidebar.highlighted_session
        return self.session.id if self.session is not None else None

    def action_rename_session(self) -> None:
        session_id = self._session_in_focus()
        if self.store is None or session_id is None:
            self.notify("no session to rename yet", severity="warning")
            return
        from qwenchat.tui.screens.text_edit import TextEditScreen

        store = self.store
        session = store.get_session(session_id)

        def renamed(title: str | None) -> None:
            if title:
                store.rename(session_id, title)
                self._refresh_sidebar()

        title = session.title or session.name or ""
        self.push_screen(TextEditScreen("Rename the session", title, single_line=True), renamed)

    def action_delete_session(self) -> None:
        session_id = self._session_in_focus()
        if self.store is None or session_id is None or self._busy():
            return
        from qwenchat.tui.screens.picker import PickerScreen

        store = self.store

        async def answered(answer: str | None) -> None:
            if answer != "delete":
                return
            store.delete_session(session_id)
            if self.session is not None and self.session.id == session_id:
                await self._open(opening_messages(self.role), None, None)
            self._refresh_sidebar()
            self.notify("session deleted")

        title = store.get_session(session_id).title or f"session {session_id}"
        options = [("keep", "No, keep it"), ("delete", "Yes, delete it and all its messages")]
        self.push_screen(PickerScreen(f"Delete {title!r}?", options, "keep"), answered)

    async def on_unmount(self) -> None:
        self._closing = True
        if self.stream is not None:
            self.stream.cancel()
        if self.chat is not None:
            self.chat.close()
