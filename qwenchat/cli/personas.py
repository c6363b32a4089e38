"""``qwenchat personas``: role-play personas (built-in, the user's own, imported cards)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from qwenchat.cli.common import err, out, print_table

app = typer.Typer(help="Role-play personas.", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """List the personas: name, description, and where each comes from."""
    from qwenchat.personas import list_personas

    personas = list_personas(warn=lambda problem: err(f"warning: {problem}"))
    rows = [(p.name, p.description, str(p.path or "")) for p in personas.values()]
    print_table(("name", "description", "file"), rows)


@app.command("show")
def show(name: str) -> None:
    """Print a persona as a persona file (e.g. to edit a copy in the config dir's personas/)."""
    from qwenchat.personas import get_persona

    out(get_persona(name).to_markdown(), end="")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A Character Card: .png or .json, V1 to V3.")],
    name: Annotated[
        Optional[str], typer.Option("--name", help="The persona's name (default: the card's).")
    ] = None,
) -> None:
    """Import a Character Card as a persona file in the config dir's personas/."""
    from qwenchat.personas import import_card, save_persona

    persona, notices = import_card(file, name=name)
    for notice in notices:
        err(f"note: {notice}")
    out(f"imported '{persona.name}' to {save_persona(persona)}")
