"""``qwenchat prompts``: the prompts library (built-in and the user's own)."""

from __future__ import annotations

import typer

from qwenchat.cli.common import err, out, print_table

app = typer.Typer(help="Named system prompts.", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """List the prompts: name, description, and where each comes from."""
    from qwenchat.prompts import list_prompts

    prompts = list_prompts(warn=lambda problem: err(f"warning: {problem}"))
    rows = [(p.name, p.description, str(p.path or "")) for p in prompts.values()]
    print_table(("name", "description", "file"), rows)


@app.command("show")
def show(name: str) -> None:
    """Print a prompt's text (e.g. to edit a copy in the config dir's prompts/)."""
    from qwenchat.prompts import get_prompt

    out(get_prompt(name).text)
