"""``qwenchat models``: the local GGUF models."""

from __future__ import annotations

import typer

from qwenchat.cli.common import err, settings_with

app = typer.Typer(help="Local GGUF models.", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """List the GGUF models in the models dir."""
    from rich.console import Console
    from rich.table import Table

    from qwenchat.models import list_models

    models_dir = settings_with().resolved_models_dir()
    found = list_models(models_dir)
    if not found:
        err(
            f"no models in {models_dir}; run: pip install 'qwenchat[test-model]'"
            " or copy a .gguf file there"
        )
        return
    table = Table("name", "size", "quant", "arch", "context", box=None)
    for info in found:
        if info.error:  # in full on stderr: a table cell would cut it
            err(f"warning: {info.error}")
            table.add_row(info.name, "", "", "", "[red]unreadable[/red]")
            continue
        size = f"{info.size_bytes / 2**20:,.0f} MiB"
        table.add_row(
            info.name,
            size,
            info.quant or "?",
            info.architecture or "?",
            str(info.context_length or "?"),
        )
    Console().print(table)
