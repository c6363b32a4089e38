"""MCP servers' tools in qwenchat's tool registry.

Each tool a server lists becomes a :class:`~qwenchat.tools.registry.SchemaTool`: its
JSON Schema is what the model sees in the tools block and what the call grammar
enforces; it is safe only when ``mcp.json`` lists it under the server's ``safe``; its
timeout is the server's. Calling it calls the server; what the server answers is the
result the model reads (its text parts, or its structured content as JSON), and an
error the server reports, or a server that crashed or hung, is an error result
(``ToolRunError``): the model is told, the session goes on.
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qwenchat.mcp.client import McpCallFailed, McpServer, ServerUnavailable
from qwenchat.mcp.config import McpConfig
from qwenchat.tools.registry import SchemaTool, ToolRegistry, ToolRunError

SOURCE = "mcp:{server}"
"""A tool's source, as ``tools list`` shows it."""


class McpServers:
    """The configured servers of one session; close them when it ends."""

    @classmethod
    def from_config(cls, path: Path | None = None) -> McpServers:
        """The servers of ``mcp.json`` in the config dir, or of ``path`` (``--mcp-config``);
        their stderr goes to ``<cache dir>/mcp/<server>.log``."""
        from qwenchat.mcp.config import load_config
        from qwenchat.paths import cache_dir

        return cls(load_config(path), cache_dir() / "mcp")

    def __init__(self, config: McpConfig, log_dir: Path) -> None:
        self.servers = [
            McpServer(name, server, log_dir) for name, server in config.enabled().items()
        ]
        self.disabled = [name for name, server in config.servers.items() if server.disabled]

    def add_tools(self, registry: ToolRegistry, warn: Callable[[str], None]) -> None:
        """Start every server (side by side) and add its tools to ``registry``; a server
        that fails is one ``warn`` line and its tools are left out."""
        if not self.servers:
            return
        with concurrent.futures.ThreadPoolExecutor(len(self.servers)) as pool:
            listed = list(pool.map(_listed, self.servers))
        seen = len(registry.warnings)
        for server, (tools, problem) in zip(self.servers, listed, strict=True):
            if problem is not None:
                warn(f"{problem}; its tools are left out")
                continue
            for tool in tools:
                registry.add(mcp_tool(server, tool))
        for line in registry.warnings[seen:]:  # a server's tool named as another's
            warn(line)

    def close(self) -> None:
        for server in self.servers:
            server.close()


def _listed(server: McpServer) -> tuple[list[Any], str | None]:
    try:
        return server.tools(), None
    except ServerUnavailable as exc:
        return [], str(exc)


def mcp_tool(server: McpServer, tool: Any) -> SchemaTool:
    """The registry's tool for one of a server's tools (``mcp.types.Tool``)."""
    name = tool.name

    def call(arguments: dict[str, Any]) -> str:
        try:
            result = server.call(name, arguments)
        except McpCallFailed as exc:
            raise ToolRunError(str(exc)) from None
        text = result_text(result)
        if result.is_error:
            raise ToolRunError(text or f"the MCP server {server.name!r} reported an error")
        return text

    return SchemaTool(
        name=name,
        description=" ".join((tool.description or tool.title or name).split()),
        parameters=dict(tool.input_schema or {}),
        safe=name in server.config.safe,
        timeout=server.config.timeout + 10,  # the server's own timeout comes first
        display_name=tool.title or name,
        source=SOURCE.format(server=server.name),
        function=call,
    )


def result_text(result: Any) -> str:
    """A ``CallToolResult`` as the model reads it: its text parts, else its structured
    content as JSON, else what kinds of content it had."""
    texts = [part.text for part in result.content if getattr(part, "type", "") == "text"]
    if texts:
        return "\n".join(texts)
    if result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    kinds = [getattr(part, "type", "?") for part in result.content]
    return f"({', '.join(kinds)} content, not shown)" if kinds else ""
