"""The TUI's commands: typed as ``/name [argument]``, found in the command palette
(Ctrl+P), and many also on a key. Each runs an action of the app."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from qwenchat.errors import InputError

if TYPE_CHECKING:
    from textual.app import App


@dataclass(frozen=True)
class Command:
    name: str
    action: str  # an action of the app, run with the argument if one is given
    help: str
    key: str = ""  # the key that does the same, as shown to the user
    argument: str = ""  # what the argument may be, as shown to the user
    free: bool = False  # the argument is any text (a path), not one of those listed


COMMANDS = [
    Command("help", "help", "Show the keys and commands", "F1"),
    Command("new", "new_session", "Start a new session", "Ctrl+N"),
    Command("system", "edit_system", "Edit the system prompt (a new session if this one began)"),
    Command("persona", "pick_persona", "Play a persona (starts a new session)"),
    Command("model", "pick_model", "Load another model from the models dir"),
    Command("tools", "toggle_tools", "Let the model call tools, or stop it", "Ctrl+T"),
    Command("tir", "toggle_tir", "Tool-integrated reasoning: run the model's Python", "Ctrl+G"),
    Command(
        "file",
        "attach_file",
        "Put a file into your next message: text, PDF, DOCX, HTML (Tab completes the path)",
        argument="PATH|clear",
        free=True,
    ),
    Command("samples", "show_samples", "Show the sampled solutions of the last voted reply"),
    Command("retry", "retry", "Answer the last message again (the old answer is kept)", "Ctrl+R"),
    Command("edit", "edit_last", "Edit your last message and answer it again", "F2"),
    Command("stop", "stop", "Stop the reply (what was written is kept)", "Esc"),
    Command("clear", "clear", "Start afresh with the same system prompt and persona", "Ctrl+L"),
    Command("export", "export", "Save this session to a file", argument="md|json"),
    Command(
        "copy",
        "copy",
        "Copy the last reply, its last code block, or any message or code block",
        "F3",
        "code|pick",
    ),
    Command("rename", "rename_session", "Rename this session"),
    Command("delete", "delete_session", "Delete this session"),
    Command("sidebar", "toggle_sidebar", "Show or hide the sessions", "Ctrl+B"),
    Command("theme", "change_theme", "Choose a theme (it is remembered)"),
    Command("quit", "quit", "Quit", "Ctrl+Q"),
]
_BY_NAME = {command.name: command for command in COMMANDS}


def parse_slash(text: str) -> str:
    """The app action for ``/name [argument]``; raises :class:`InputError` if there is none."""
    name, _, argument = text.strip().removeprefix("/").partition(" ")
    command = _BY_NAME.get(name.lower())
    if command is None:
        raise InputError(f"unknown command /{name}: /help lists them")
    argument = argument.strip()
    if command.free and not argument:
        raise InputError(f"/{command.name} needs {command.argument}")
    if argument and not command.argument:
        raise InputError(f"/{command.name} takes no argument")
    if argument and not command.free and argument not in command.argument.split("|"):
        raise InputError(f"/{command.name} takes {command.argument}, not {argument!r}")
    return f"{command.action}({argument!r})" if argument else command.action


class SlashCommands(Provider):
    """The slash commands in the command palette."""

    def _hit(self, command: Command) -> tuple[str, str]:
        key = f"  ({command.key})" if command.key else ""
        return f"/{command.name}", f"{command.help}{key}"

    async def discover(self) -> Hits:
        for command in COMMANDS:
            title, help_text = self._hit(command)
            yield DiscoveryHit(title, partial(self._run, command.action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in COMMANDS:
            title, help_text = self._hit(command)
            score = max(matcher.match(title), matcher.match(command.help))
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self._run, command.action),
                          help=help_text)  # fmt: skip

    def _run(self, action: str) -> None:
        app: App[None] = self.app
        app.call_later(app.run_action, action)
