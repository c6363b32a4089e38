"""``qwenchat config``: where the config file is and what is in effect."""

from __future__ import annotations

import typer

from qwenchat.cli.common import settings_with
from qwenchat.safetext import shown_json

app = typer.Typer(help="Show the configuration.", no_args_is_help=True)


@app.command("path")
def path() -> None:
    """Print the config file's path."""
    from qwenchat.paths import config_path

    print(config_path())


@app.command("show")
def show() -> None:
    """Print the effective configuration (file, environment and defaults) as JSON."""
    from qwenchat.paths import config_path

    settings = settings_with()
    print(f"# {config_path()}")
    print(shown_json(settings.model_dump(mode="json"), indent=2))
