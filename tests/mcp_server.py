"""A real MCP server for the tests, written with the SDK: tools that work, crash, hang
and misbehave. ``python tests/mcp_server.py`` serves stdio; ``--http PORT`` serves
streamable HTTP on 127.0.0.1; ``--garbage`` writes a line that is not JSON-RPC on
stdout first; ``--die`` exits before it answers anything."""

from __future__ import annotations

import os
import sys
import time
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

server = MCPServer("qwenchat-test")


@server.tool()
def add(a: int, b: Annotated[int, Field(description="the second number")]) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def shipment_status(tracking: str) -> str:
    """The status of a parcel by its tracking number."""
    return f"Parcel {tracking} is at the Oslo depot and arrives on Friday."


@server.tool()
def crash() -> str:
    """Kill the server mid-call."""
    os._exit(3)


@server.tool()
def hang(seconds: float = 60) -> str:
    """Answer only after a long while."""
    time.sleep(seconds)
    return "late"


@server.tool()
def fail(reason: str) -> str:
    """Raise an error the client is told about."""
    from mcp.server.mcpserver.exceptions import ToolError

    raise ToolError(f"refused: {reason}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--die" in args:
        sys.exit(4)
    if "--garbage" in args:
        sys.stdout.write("this is not JSON-RPC \x1b[2J\n")
        sys.stdout.flush()
    if "--http" in args:
        server.run("streamable-http", host="127.0.0.1", port=int(args[args.index("--http") + 1]))
    else:
        server.run()
