"""``qwenchat mcp``: the MCP servers whose tools the model may call, and serving
qwenchat's own sandbox and tools to other MCP clients."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from qwenchat.cli.common import McpConfigOption, err, out, print_table, settings_with

app = typer.Typer(
    help="MCP: servers whose tools the model may call, and qwenchat's sandbox as a server.",
    no_args_is_help=True,
)


@app.command("list")
def list_(mcp_config: McpConfigOption = None) -> None:
    """Start each configured server and show its status and tools."""
    from qwenchat.mcp.client import ServerUnavailable
    from qwenchat.mcp.config import default_path
    from qwenchat.mcp.tools import McpServers

    group = McpServers.from_config(mcp_config)
    if not group.servers and not group.disabled:
        out(f"no MCP servers are configured ({mcp_config or default_path()}); see the README")
        return
    try:
        rows = []
        for server in group.servers:
            try:
                names = ", ".join(tool.name for tool in server.tools())
            except ServerUnavailable:  # its status says what went wrong
                names = ""
            rows.append((server.name, server.config.transport, server.status, names))
        rows += [(name, "", "disabled", "") for name in group.disabled]
        print_table(("server", "transport", "status", "tools"), rows)
    finally:
        group.close()


@app.command("serve")
def serve(
    tools_dir: Annotated[
        Optional[list[Path]],
        typer.Option("--tools-dir", help="Serve the tools of this dir too (repeatable)."),
    ] = None,
) -> None:
    """Serve qwenchat's sandboxed python tool and the tools dirs' tools over stdio.

    For an MCP client's config: {"command": "qwenchat", "args": ["mcp", "serve"]}.
    """
    from qwenchat.mcp.serve import build_server, served_tools

    registry, problems = served_tools(settings_with(), tools_dir or [])
    for problem in problems:  # stderr: stdout is the protocol's
        err(f"warning: {problem}")
    build_server(registry).run()
