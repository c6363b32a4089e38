"""The root ``qwenchat`` command, its sub-command groups, and the entry point."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from qwenchat.cli import (
    ask,
    cache,
    chat,
    config,
    doctor,
    mcp,
    models,
    personas,
    prompts,
    sessions,
    tools,
)
from qwenchat.cli.common import EXIT_INTERRUPTED, err

app = typer.Typer(
    name="qwenchat",
    help="Chat with, and build agents on, local Qwen2.5 models.",
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command()(ask.ask)
app.command()(chat.chat)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        print(f"qwenchat {version('qwenchat')}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Chat with, and build agents on, local Qwen2.5 models; with no command, open the TUI."""
    if ctx.invoked_subcommand is None:
        chat.chat()


app.command()(doctor.doctor)
app.add_typer(cache.app, name="cache")
app.add_typer(config.app, name="config")
app.add_typer(mcp.app, name="mcp")
app.add_typer(models.app, name="models")
app.add_typer(personas.app, name="personas")
app.add_typer(prompts.app, name="prompts")
app.add_typer(sessions.app, name="sessions")
app.add_typer(tools.app, name="tools")


def main() -> None:
    """Console-script entry point: run the app and turn errors into one line and an exit code."""
    import click

    from qwenchat import crashlog
    from qwenchat.errors import QwenchatError
    from qwenchat.paths import cache_dir

    crash = crashlog.arm(cache_dir() / "crashes")
    if crash:
        err(f"warning: {crash}")
    try:
        code = app(standalone_mode=False)
    except QwenchatError as exc:
        err(str(exc))
        sys.exit(exc.exit_code)
    except click.UsageError as exc:  # one line, not click's usage block
        where = exc.ctx.command_path if exc.ctx is not None else "qwenchat"
        err(f"{exc.format_message()} (see: {where} --help)")
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        err(exc.format_message())
        sys.exit(exc.exit_code)
    except click.Abort:  # Ctrl-C outside a reply, e.g. while the model loads
        err("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)
