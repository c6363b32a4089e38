"""``qwenchat prompts``: the prompts library (built-in and the user's own)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Named system prompts.", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """List the prompts: name, description, and where each comes from."""
    from rich.console import Console
    from rich.table import Table

    from qwenchat.prompts import list_prompts

    table = Table("name", "description", "file", box=None)
    for prompt in list_prompts().values():
        table.add_row(prompt.name, prompt.description, str(prompt.path or ""))
    Console().print(table)


@app.command("show")
def show(name: str) -> None:
    """Print a prompt's text (e.g. to edit a copy in the config dir's prompts/)."""
    from qwenchat.prompts import get_prompt

    print(get_prompt(name).text)
