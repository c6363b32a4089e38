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

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.widgets import Footer

from qwenchat.crashlog import previous_crash
from qwenchat.errors import InputError, QwenchatError
from qwenchat.opening import Role, choose_role
from qwenchat.safetext import shown
from qwenchat.tui.collector import Collector
from qwenchat.tui.commands import SlashCommands, parse_slash
from qwenchat.tui.screens.chat import ChatScreen
from qwenchat.tui.state import ChatState
from qwenchat.tui.widgets.attachments import PendingFiles
from qwenchat.tui.widgets.conversation import Conversation
from qwenchat.tui.widgets.messages import UserBubble
from qwenchat.tui.widgets.prompt_input import PromptInput
from qwenchat.tui.widgets.sidebar import SessionSidebar
from qwenchat.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from qwenchat.agent import Approval
    from qwenchat.chat import Reply, ReplyStream
    from qwenchat.config import Settings
    from qwenchat.engine.base import Engine
    from qwenchat.store import SessionStore
    from qwenchat.tools import Tool


WRITING = "writing…  (Esc stops)"
"""The status while a reply is written (after its prompt is read)."""


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
    mcp_config: Path | None = None
    """MCP servers' tools (``--mcp-config``; default: mcp.json in the config dir)."""


class QwenchatApp(App[None]):
    """``qwenchat``: chat with a local Qwen2.5 model."""

    class ReplySettled(Message):
        """A reply ended (``reply``) or failed (``error``), and the screen shows it: the
        app is ready for the next message. For embedders and tests."""

        def __init__(self, reply: Reply | None, error: str | None = None) -> None:
            super().__init__()
            self.reply = reply
            self.error = error

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
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
        self.state = ChatState(self.settings, store, self._approve_from_thread)
        self.state.tools_on, self.state.tir_on = launch.tools, launch.tir
        self.sandbox_line = ""  # set once the sandbox is probed
        self.stream: ReplyStream | None = None
        self.last_reply: Reply | None = None  # the last finished reply (for /samples)
        self.collector = Collector()
        self._closing = False

    # Layout and start-up

    def get_default_screen(self) -> ChatScreen:
        return ChatScreen()

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield SessionSidebar(id="sidebar")
            with Vertical(id="chat"):
                yield Conversation(id="conversation")
                yield PendingFiles(id="pending-files")
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
        self.status.set(tools=self.state.tools_on, tir=self.state.tir_on)
        crash = previous_crash()  # also on stderr, which the TUI's screen hides
        if crash:
            self.notify(crash, severity="warning", timeout=20)
        if self.state.store is None:
            self._open_store()
        problem = None
        try:
            role = choose_role(
                self.settings,
                system=self.launch.system,
                prompt=self.launch.prompt,
                persona=self.launch.persona,
                model=self.launch.model,
            )
        except QwenchatError as exc:
            role, problem = Role(self.settings), str(exc)
        await self._start(role, self.launch.session)
        if problem is not None:  # shown after _start, which clears the conversation
            await self._error(problem)
        self._probe_environment()
        if self._given_engine is not None:
            self._model_loaded(self._given_engine)
        else:
            self._load_model(role.model)
        self._warm_highlighter()
        self.call_after_refresh(self.collector.settled)  # the start-up heap: out of sight

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
            self.state.store = SessionStore(default_store_path())
        except QwenchatError as exc:
            self.notify(f"{exc}; this conversation will not be saved", severity="error")
            return
        if self.state.store.notice:
            self.notify(self.state.store.notice, severity="warning")

    async def _start(self, role: Role, session_name: str | None) -> None:
        self.state.role = role
        if session_name and self.state.store is not None:
            try:
                self.state.open_session(session_name, self._warn)
            except QwenchatError as exc:
                await self._show_new()
                await self._error(str(exc))  # after _show_new, which clears the conversation
                return
            await self._show()
            return
        await self._show_new()

    @work(thread=True, group="startup")
    def _probe_environment(self) -> None:
        """Find the sandbox layer and load the tools (slow-ish: kept off the UI thread)."""
        from qwenchat.opening import describe_sandbox, sandbox_label, sandbox_status
        from qwenchat.tools import default_tool_dirs, load_tools

        usable, warning = sandbox_status(self.settings)
        line, label = (
            (describe_sandbox(self.settings), sandbox_label(self.settings))
            if usable
            else ("none", "none")
        )
        loaded = load_tools(default_tool_dirs())
        self.call_from_thread(self._environment_probed, usable, warning, line, label, loaded)

    def _environment_probed(
        self, usable: bool, warning: str | None, line: str, label: str, loaded: Any
    ) -> None:
        self.sandbox_line = line
        for problem in loaded.problems:
            self.notify(problem, severity="warning")
        if warning and (self.state.tools_on or self.state.tir_on):
            self.notify(warning, severity="warning")
        self.state.probed(usable, loaded.registry)
        self.status.set(sandbox=label, tir=self.state.tir_on)
        if self.state.tools_on:
            self._start_mcp()

    @work(thread=True, exclusive=True, group="mcp")
    def _start_mcp(self) -> None:
        """Start the MCP servers, the first time tools are on, off the UI thread; their
        tools join the registry when they have listed them."""
        from qwenchat.mcp.tools import McpServers
        from qwenchat.tools import ToolRegistry

        if self.state.mcp is not None:
            return
        try:
            servers = McpServers.from_config(self.launch.mcp_config)
        except QwenchatError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.state.mcp = servers
        if not servers.servers:
            return
        found = ToolRegistry()
        servers.add_tools(found, self._warn_from_thread)
        self.call_from_thread(self._mcp_started, found)

    def _mcp_started(self, found: Any) -> None:
        self.state.add_tools(found)
        if len(found):
            self.notify(f"MCP: {len(found)} tools ({', '.join(found.names())})")

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
        self.state.set_engine(engine)
        info = engine.info()
        self.status.set(
            model=info.model, quant=info.quant, offload=info.runs_on, n_ctx=info.n_ctx, state=""
        )

    # Conversations and sessions

    async def _show(self) -> None:
        """Draw the conversation the state holds now."""
        replaced = bool(self.conversation.children)
        await self.conversation.show_history(self.state.messages)
        if replaced:  # its widgets are gone: collect them (at start-up there are none)
            self.collector.reclaim()
        self.status.set(persona=self.state.role.persona or "", context_used=0)
        self._refresh_sidebar()

    async def _show_new(self, role: Role | None = None) -> None:
        """A new conversation (with ``role``, default the current one), drawn."""
        self.state.open_new(role)
        await self._show()

    def _refresh_sidebar(self, query: str = "") -> None:
        current = self.state.session.id if self.state.session else None
        self.query_one(SessionSidebar).show(self.state.sessions(query), current)

    def on_session_sidebar_searched(self, event: SessionSidebar.Searched) -> None:
        try:
            self._refresh_sidebar(event.query)
        except QwenchatError as exc:
            self.notify(str(exc), severity="warning")

    async def on_session_sidebar_picked(self, event: SessionSidebar.Picked) -> None:
        if self._busy():
            return
        state = self.state
        if state.session is None or event.session_id != state.session.id:
            try:
                assert state.store is not None
                state.open_session(state.store.get_session(event.session_id), self._warn)
            except QwenchatError as exc:
                await self._error(str(exc))
                return
            await self._show()
        self.query_one(PromptInput).focus()

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
        assert self.state.chat is not None
        self.state.ensure_session(text)
        files = self.state.pending_files
        try:
            stream = self.state.chat.stream(text, attachments=files)
        except QwenchatError as exc:
            await self._error(str(exc))
            return
        self.query_one(PromptInput).clear()
        self.state.pending_files = []
        self._show_pending()
        await self.conversation.add_user(text, files)
        await self._begin(stream)

    # Files

    @work(thread=True, exclusive=True, group="files")
    def action_attach_file(self, path: str) -> None:
        """``/file PATH``: read a file (or a directory's, or a glob's) for the next
        message; ``/file clear`` drops them."""
        from qwenchat.attachments import read_attachments

        if path == "clear":
            self.state.pending_files = []
            self.call_from_thread(self._show_pending)
            return

        def no_stdin() -> str:
            raise InputError("/file - : the TUI has no standard input to read")

        try:
            found = read_attachments([path], stdin=no_stdin)
        except QwenchatError as exc:
            self.call_from_thread(self.notify, str(exc), severity="warning")
            return
        self.state.pending_files = [*self.state.pending_files, *found]
        self.call_from_thread(self._show_pending)

    def _show_pending(self) -> None:
        files = self.state.pending_files
        engine = self.state.engine
        tokens = None
        if files and engine is not None:
            from qwenchat.chatml import Segment

            tokens = sum(engine.count_tokens([Segment(f.fenced(), False)]) for f in files)
        self.query_one(PendingFiles).show(files, tokens)

    def on_prompt_input_path_choices(self, event: PromptInput.PathChoices) -> None:
        shown_choices = ", ".join(event.choices[:12])
        more = f" and {len(event.choices) - 12} more" if len(event.choices) > 12 else ""
        self.notify(f"{shown_choices}{more}", title="/file")

    def _busy(self) -> bool:
        if self.stream is not None:
            self.notify("the model is still writing: Esc stops it", severity="warning")
            return True
        return False

    def _can_send(self) -> bool:
        if self.state.chat is None:
            loading = self.status.info.state.startswith("loading")
            self.notify(
                "the model is still loading" if loading else "no model is loaded: /model picks one",
                severity="warning",
            )
            return False
        return True

    async def _begin(self, stream: ReplyStream) -> None:
        chat = self.state.chat
        assert chat is not None
        self.stream = stream
        self._writing(True)
        self.status.set(state=WRITING)
        await self.conversation.stream_reply(stream, tir=chat.tir, measure=chat.context_tokens)

    async def on_conversation_reply_ended(self, event: Conversation.ReplyEnded) -> None:
        await self._reply_done(event.reply, event.context_used)

    async def on_conversation_reply_failed(self, event: Conversation.ReplyFailed) -> None:
        await self._reply_failed(event.error)

    def on_conversation_prompt_read(self, event: Conversation.PromptRead) -> None:
        if self.stream is None:  # a late message of a reply that has ended
            return
        if event.done < event.total:
            self.status.set(state=f"reading {event.done:,}/{event.total:,} tokens  (Esc stops)")
        else:
            self.status.set(state=WRITING)

    def _writing(self, writing: bool) -> None:
        """While a reply streams: no full garbage collections (see collector.py), and a
        cursor that does not blink (each blink repaints the input box: about 2 ms of the
        UI thread, which the reply's redraws need)."""
        if writing:
            self.collector.streaming()
        else:
            self.collector.settled()
        self.query_one(PromptInput).cursor_blink = not writing

    async def _reply_done(self, reply: Reply, context_used: int) -> None:
        self.stream = None
        self.last_reply = reply
        self._writing(False)
        self.status.set(
            state="",
            tokens_per_s=reply.timings.decode_tokens_per_s,
            ttft_s=reply.timings.ttft_s,
            context_used=context_used,
        )
        self._refresh_sidebar()
        self.post_message(self.ReplySettled(reply))

    async def _reply_failed(self, error: str) -> None:
        self.stream = None
        self._writing(False)
        self.status.set(state="")
        await self._error(error)
        self.post_message(self.ReplySettled(None, error))

    async def _error(self, message: str) -> None:
        """An error: shown where it happened and as a notification; the app goes on."""
        self.notify(message, severity="error", timeout=8)
        await self.conversation.add_note(f"✗ {message}", error=True)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Textual's, but plain text by default with control characters inert: messages
        quote errors, file names, and what models and tools wrote."""
        message = shown(message)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

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

    def action_show_samples(self) -> None:
        from qwenchat.tui.screens.samples import SamplesScreen

        reply = self.last_reply
        if reply is None or not reply.sample_replies:
            self.notify("the last reply was not voted on: set tir.samples above 1 in TIR mode")
            return
        self.push_screen(SamplesScreen(reply))

    def action_stop(self) -> None:
        if self.stream is not None:
            self.stream.cancel()

    async def action_retry(self) -> None:
        if self._busy() or not self._can_send():
            return
        assert self.state.chat is not None
        try:
            stream = self.state.chat.retry()
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

        chat = self.state.chat
        assert chat is not None
        users = [i for i, m in enumerate(chat.messages) if isinstance(m, UserMessage)]
        if not users:
            self.notify("there is no message of yours to edit yet", severity="warning")
            return
        index = users[-1]

        async def edited(text: str | None) -> None:
            if text is None or not text.strip():
                return
            try:
                stream = chat.edit(index, text)
            except QwenchatError as exc:
                await self._error(str(exc))
                return
            await self._remove_after_last_user(keep_user=False)
            await self.conversation.add_user(text)
            await self._begin(stream)

        current = chat.messages[index].content
        self.push_screen(TextEditScreen("Edit your last message", current), edited)

    def action_copy(self, what: str = "reply") -> None:
        """Copy the last reply, its last code block (``code``), or any message or code
        block picked from a list (``pick``)."""
        if what == "pick":
            self._pick_copy()
            return
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
        self._copy(text, what)

    def _copy(self, text: str, what: str) -> None:
        self.copy_to_clipboard(text)
        self.notify(f"copied {len(text)} characters ({what})")

    def _pick_copy(self) -> None:
        from qwenchat.tui.screens.picker import PickerScreen

        found = self.conversation.copyable()
        if not found:
            self.notify("there is nothing to copy yet", severity="warning")
            return
        options = [(str(n), _copy_label(what, text)) for n, (what, text) in enumerate(found)]

        def picked(key: str | None) -> None:
            if key is not None:
                what, text = found[int(key)]
                self._copy(text, what)

        options.reverse()  # newest first
        self.push_screen(PickerScreen("Copy to the clipboard", options), picked)

    async def action_new_session(self) -> None:
        if self._busy():
            return
        await self._show_new(Role(self.settings))
        self.query_one(PromptInput).focus()

    async def action_clear(self) -> None:
        """A new conversation with the same role."""
        if self._busy():
            return
        await self._show_new()

    def action_edit_system(self) -> None:
        if self._busy():
            return
        from qwenchat.chatml import SystemMessage
        from qwenchat.tui.screens.text_edit import TextEditScreen

        messages, role = self.state.messages, self.state.role
        current = messages[0].content if messages and isinstance(messages[0], SystemMessage) else ""
        current = current or role.system or self.settings.system_prompt or ""

        async def edited(text: str | None) -> None:
            if text is None or text == current:
                return
            started = self.state.session is not None
            await self._show_new(Role(role.settings, system=text, model=role.model))
            if started:
                self.notify("the new system prompt starts a new session; the old one is kept")

        self.push_screen(TextEditScreen("System prompt", current), edited)

    def action_pick_persona(self) -> None:
        if self._busy():
            return
        from qwenchat.personas import list_personas
        from qwenchat.tui.screens.picker import PickerScreen

        personas = list_personas(warn=self._warn)
        options: list[tuple[str, str | Text]] = [("", "(none: the default assistant)")]
        options += [
            (name, Text.assemble(shown(name), "  ", (shown(p.description or ""), "dim")))
            for name, p in personas.items()
        ]

        async def picked(name: str | None) -> None:
            if name is None:
                return
            try:
                role = choose_role(self.settings, persona=name) if name else Role(self.settings)
            except QwenchatError as exc:
                await self._error(str(exc))
                return
            await self._show_new(role)
            engine = self.state.engine
            if role.model and engine is not None and role.model != engine.model_name:
                self._load_model(role.model)

        current = self.state.role.persona or ""
        self.push_screen(PickerScreen("Play a persona", options, current), picked)

    def action_pick_model(self) -> None:
        if self._busy():
            return
        from qwenchat.models import list_models
        from qwenchat.tui.screens.picker import PickerScreen

        models_dir = self.settings.resolved_models_dir()
        found = list_models(models_dir)  # none if the dir does not exist
        if not found:
            self.notify(f"no models in {models_dir}", severity="warning")
            return
        options: list[tuple[str, str | Text]] = []
        for info in found:
            size = (f"  {info.size_bytes >> 20:,} MiB", "dim")
            options.append((str(info.path), Text.assemble(shown(info.name), size)))
        path = self.state.engine.info().path if self.state.engine is not None else None
        current = str(path) if path is not None else None

        def picked(path: str | None) -> None:
            if path is not None and path != current:
                self._load_model(path)

        self.push_screen(PickerScreen("Load a model", options, current), picked)

    def action_toggle_tools(self) -> None:
        state = self.state
        state.set_tools(not state.tools_on)
        if state.tools_on and state.code_ok is not None:
            self._start_mcp()
        if state.tools_on and state.code_ok is False:
            self.notify("no sandbox works here: the python tool is off", severity="warning")
        self.status.set(tools=state.tools_on)
        self.notify(f"tools {'on' if state.tools_on else 'off'}")

    def action_toggle_tir(self) -> None:
        state = self.state
        if not state.tir_on and state.code_ok is False:
            self.notify("TIR needs a sandbox and none works here", severity="error")
            return
        state.set_tir(not state.tir_on)
        self.status.set(tir=state.tir_on)
        self.notify(f"tool-integrated reasoning {'on' if state.tir_on else 'off'}")

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one(SessionSidebar)
        sidebar.display = not sidebar.display
        if sidebar.display:
            self._refresh_sidebar()
            sidebar.query_one("#session-list").focus()
        else:
            self.query_one(PromptInput).focus()

    def action_export(self, fmt: str = "md") -> None:
        store, session = self.state.store, self.state.session
        if store is None or session is None:
            self.notify(
                "nothing to export yet: this conversation has not started", severity="warning"
            )
            return
        text = store.export_session(session.id, fmt)  # type: ignore[arg-type]
        slug = re.sub(r"[^\w-]+", "-", (session.title or "session").lower()).strip("-")
        path = Path.cwd() / f"qwenchat-{session.id}-{slug[:40]}.{fmt}"
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
        return self.state.session.id if self.state.session is not None else None

    def action_rename_session(self) -> None:
        session_id, store = self._session_in_focus(), self.state.store
        if store is None or session_id is None:
            self.notify("no session to rename yet", severity="warning")
            return
        from qwenchat.tui.screens.text_edit import TextEditScreen

        session = store.get_session(session_id)

        def renamed(title: str | None) -> None:
            if title:
                store.rename(session_id, title)
                self._refresh_sidebar()

        title = session.title or session.name or ""
        self.push_screen(TextEditScreen("Rename the session", title, single_line=True), renamed)

    def action_delete_session(self) -> None:
        session_id, store = self._session_in_focus(), self.state.store
        if store is None or session_id is None or self._busy():
            return
        from qwenchat.tui.screens.picker import PickerScreen

        async def answered(answer: str | None) -> None:
            if answer != "delete":
                return
            store.delete_session(session_id)
            if self.state.session is not None and self.state.session.id == session_id:
                await self._show_new()
            self._refresh_sidebar()
            self.notify("session deleted")

        title = store.get_session(session_id).title or f"session {session_id}"
        options = [("keep", "No, keep it"), ("delete", "Yes, delete it and all its messages")]
        self.push_screen(PickerScreen(f"Delete {title!r}?", options, "keep"), answered)

    async def on_unmount(self) -> None:
        self._closing = True
        if self.stream is not None:
            self.stream.cancel()
        self.state.close()


def _copy_label(what: str, text: str) -> str:
    """A line for the copy picker: what it is, and how it begins."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    lines = text.count("\n") + 1
    first = first if len(first) <= 60 else first[:59] + "…"
    return f"{what} ({lines} line{'s' if lines > 1 else ''}): {first}"
