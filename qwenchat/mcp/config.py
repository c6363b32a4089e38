"""The MCP servers to use: ``mcp.json`` in the config dir, or ``--mcp-config FILE``, in
the ``mcpServers`` format that Claude Desktop, oterm and Qwen-Agent read.

.. code-block:: json

    {"mcpServers": {
        "time": {"command": "mcp-server-time", "args": ["--local-timezone", "Europe/Oslo"],
                 "safe": ["get_current_time", "convert_time"]},
        "docs": {"url": "http://127.0.0.1:8000/mcp", "headers": {"Authorization": "Bearer x"},
                 "timeout": 60, "disabled": true}
    }}

A server is a command (``command``, ``args``, ``env``, ``cwd``: started over stdio) or
a ``url`` (streamable HTTP, with ``headers``). qwenchat's own keys: ``disabled``,
``safe`` (the tools that run without asking: none unless listed) and ``timeout``
(seconds for starting and for each call). Unknown keys are left alone, as other
clients write their own there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qwenchat.errors import InputError

CONFIG_FILE = "mcp.json"
DEFAULT_TIMEOUT = 30.0


class ServerConfig(BaseModel):
    """One entry of ``mcpServers``."""

    model_config = ConfigDict(extra="ignore")

    command: str | None = None
    args: list[str] = []
    env: dict[str, str] = {}
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = {}
    disabled: bool = False
    safe: list[str] = []
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0, le=3600)

    @model_validator(mode="after")
    def _one_transport(self) -> ServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError('give either "command" (stdio) or "url" (streamable HTTP)')
        return self

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"


class McpConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    servers: dict[str, ServerConfig] = Field(default_factory=dict, alias="mcpServers")

    def enabled(self) -> dict[str, ServerConfig]:
        return {name: server for name, server in self.servers.items() if not server.disabled}


def default_path() -> Path:
    from qwenchat.paths import config_dir

    return config_dir() / CONFIG_FILE


def load_config(path: Path | None = None) -> McpConfig:
    """The servers of ``path`` (default: ``mcp.json`` in the config dir; an absent default
    file is no servers). A file given that is missing or malformed is an
    :class:`InputError` in one line."""
    given = path is not None
    path = path or default_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if given:
            raise InputError(f"no MCP config at {path}") from None
        return McpConfig()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the MCP config {path}: {exc}") from None
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not JSON ({exc}): see the README's MCP section") from None
    try:
        return McpConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InputError(f"{path}: '{where}': {error['msg']}") from None
