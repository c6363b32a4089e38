"""``qwenchat mcp serve``: qwenchat's sandboxed ``python`` tool and the tools of the tools
dirs, served over stdio to any MCP client (oterm, Claude Desktop, Qwen-Agent...).

The ``python`` tool is the one the model uses here: one warm interpreter for the
server's life (variables persist between calls, as notebook cells), in the strongest
sandbox this machine has (bubblewrap), under the sandbox settings' limits. Each tool
keeps its schema, validation and timeout; a failed call (code that raised, a tool
that raised or timed out) is an error result with what went wrong. The client decides
what to run: it is the one that asks its user.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from qwenchat.config import Settings
from qwenchat.tools import Tool, ToolRegistry

SERVER_NAME = "qwenchat"


def served_tools(settings: Settings, tools_dirs: list[Path]) -> tuple[ToolRegistry, list[str]]:
    """The tools to serve, and the problems met loading them (for stderr)."""
    from qwenchat.opening import sandbox_status
    from qwenchat.sandbox import Sandbox
    from qwenchat.tools import default_tool_dirs, load_tools
    from qwenchat.tools.python import python_tool

    loaded = load_tools([*default_tool_dirs(), *tools_dirs])
    problems = list(loaded.problems)
    usable, warning = sandbox_status(settings)
    if usable:
        loaded.registry.add(python_tool(Sandbox.from_settings(settings.sandbox)))
    else:
        problems.append(f"the python tool is not served: {warning}")
    return loaded.registry, problems


def build_server(registry: ToolRegistry) -> Any:
    """An SDK ``MCPServer`` offering every tool of ``registry``."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(SERVER_NAME)
    for tool in registry:
        server.add_tool(
            _runner(tool),
            name=tool.name,
            title=tool.display_name,
            description=tool.description,
            structured_output=False,
        )
    return server


def _runner(tool: Tool) -> Any:
    """A function with the tool's own signature (the SDK reads its schema from it) that
    runs the tool as qwenchat's loop does."""
    from mcp.server.mcpserver.exceptions import ToolError

    from qwenchat.agent import run_tool

    @functools.wraps(tool.function)
    def run(**arguments: Any) -> str:
        record = run_tool(tool, tool.check_arguments(arguments))
        if record.status != "ok":
            raise ToolError(record.result)
        return record.result

    return run
