"""The table of slash commands: parsing, and the keys the help screen and the palette
show for them."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from textual.app import App

from qwenchat.errors import InputError
from qwenchat.tui.app import QwenchatApp
from qwenchat.tui.commands import COMMANDS, parse_slash
from qwenchat.tui.screens.help import help_table


def test_every_key_a_command_names_does_that_command() -> None:
    bindings = {
        key: binding.action
        for binding in [*App.BINDINGS, *QwenchatApp.BINDINGS]
        for key in binding.key.split(",")
    }
    names = {"Esc": "escape"}
    for cmd in COMMANDS:
        if cmd.key:
            key = names.get(cmd.key, cmd.key.lower())
            assert bindings.get(key) == cmd.action, f"/{cmd.name}: {cmd.key}"


def test_parse_slash() -> None:
    assert parse_slash("/help") == "help"
    assert parse_slash("  /Export json ") == "export('json')"
    assert parse_slash("/copy code") == "copy('code')"
    for bad, message in [
        ("/foo", "unknown command /foo"),
        ("/retry now", "takes no argument"),
        ("/export pdf", "takes md|json"),
    ]:
        with pytest.raises(InputError, match=message):
            parse_slash(bad)


def test_the_help_table_shows_every_command_with_its_argument() -> None:
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(help_table())
    text = console.export_text()
    for cmd in COMMANDS:
        shown = f"/{cmd.name}" + (f" [{cmd.argument}]" if cmd.argument else "")
        line = next(line for line in text.splitlines() if f"{shown} " in line)
        assert cmd.help in line and (not cmd.key or cmd.key in line)
