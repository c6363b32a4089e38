"""``qwenchat tools``: list, inspect and run tools without a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from qwenchat.cli.common import (
    load_tool_registry,
    out,
    print_table,
    settings_with,
    terminal_approver,
)
from qwenchat.conversation import sandbox_status
from qwenchat.safetext import shown_json

if TYPE_CHECKING:
    from qwenchat.tools import ToolRegistry

app = typer.Typer(help="Tools the model can call.", no_args_is_help=True)

ToolsDir = Annotated[
    Optional[list[Path]],
    typer.Option("--tools-dir", help="Load tools from this dir too (repeatable)."),
]


def _registry(tools_dir: list[Path] | None) -> ToolRegistry:
    """The loaded tools, plus ``python`` (in a sandbox of its own) when a sandbox works here."""
    registry = load_tool_registry(tools_dir)
    settings = settings_with()
    if sandbox_status(settings)[0]:
        from qwenchat.sandbox import Sandbox
        from qwenchat.tools.python import python_tool

        registry.add(python_tool(Sandbox.from_settings(settings.sandbox)))
    return registry


@app.command("list")
def list_(tools_dir: ToolsDir = None) -> None:
    """Show every loaded tool: name, whether it is safe, what it does, where it comes from."""
    rows = [
        (tool.name, "yes" if tool.safe else "no", tool.description.split("\n", 1)[0], tool.source)
        for tool in _registry(tools_dir)
    ]
    print_table(("name", "safe", "description", "source"), rows)


@app.command("show")
def show(name: str, tools_dir: ToolsDir = None) -> None:
    """Print a tool's JSON schema, as the model sees it."""
    tool = _registry(tools_dir).select([name]).get(name)
    assert tool is not None
    print(shown_json(tool.spec(), indent=2))


@app.command("run")
def run(
    name: str,
    arguments: Annotated[str, typer.Argument(help="The arguments as a JSON object.")] = "{}",
    tools_dir: ToolsDir = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve the call.")] = False,
) -> None:
    """Run one tool as a model's call would: validated, approved, with its timeout."""
    from qwenchat.agent import ApprovalPolicy, run_tool
    from qwenchat.errors import InputError, QwenchatError
    from qwenchat.tools import ToolArgumentError

    tool = _registry(tools_dir).select([name]).get(name)
    assert tool is not None
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise InputError(f"arguments are not valid JSON ({exc}); e.g. '{{\"x\": 1}}'") from None
    try:
        validated = tool.validate(parsed)
    except ToolArgumentError as exc:
        raise InputError(str(exc)) from None
    if not ApprovalPolicy(yes=yes, ask=terminal_approver()).approves(tool, validated):
        raise InputError(f"{name} is not marked safe: approve it with --yes")
    record = run_tool(tool, validated)
    if record.status != "ok":  # raised, timed out, or (python) the code failed: exit 1
        raise QwenchatError(record.result)
    out(record.result)
