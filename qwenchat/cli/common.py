"""Helpers shared by the commands: error output, settings with flags applied, tool loading."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer

from qwenchat.cli.completion import complete_models
from qwenchat.safetext import shown, shown_json

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.text import Text

    from qwenchat.agent import Approval, Approver
    from qwenchat.config import Settings
    from qwenchat.tools import Tool, ToolRegistry

M = TypeVar("M", bound="BaseModel")

# Options that `ask` and `chat` share, declared once.
SystemOption = Annotated[Optional[str], typer.Option("--system", "-s", help="System prompt.")]
PromptOption = Annotated[
    Optional[str],
    typer.Option("--prompt", "-p", help="A system prompt from the library, by name."),
]
ModelOption = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        "-m",
        help="GGUF path or name in the models dir.",
        autocompletion=complete_models,
    ),
]
GpuLayersOption = Annotated[Optional[str], typer.Option(help="auto, all, or a number of layers.")]
ThreadsOption = Annotated[Optional[int], typer.Option(help="CPU threads for llama.cpp.")]
NCtxOption = Annotated[Optional[int], typer.Option(help="Context window in tokens.")]
McpConfigOption = Annotated[
    Optional[Path],
    typer.Option(
        "--mcp-config",
        metavar="FILE",
        help="MCP servers to take tools from (mcpServers JSON), instead of mcp.json in the"
        " config dir.",
    ),
]
KvTypeOption = Annotated[
    Optional[str],
    typer.Option(
        "--kv-type",
        help="The KV cache's number type: f16, q8_0 (half the memory) or q4_0 (a quarter).",
    ),
]
EngineOption = Annotated[
    Optional[str],
    typer.Option(
        "--engine",
        metavar="URL",
        help="Generate on this OpenAI-compatible server (vLLM, llama-server, Ollama,"
        " llama-cpp-python's), or 'local'.",
    ),
]

EXIT_INTERRUPTED = 130
PYTHON = "python"  # the built-in tool bound to a conversation's sandbox


def err(message: str) -> None:
    """One line on stderr, prefixed with the program's name. Messages quote what the
    model, tools or files wrote, so control characters are made inert."""
    print(f"qwenchat: {shown(message)}", file=sys.stderr)


def out(text: str, end: str = "\n") -> None:
    """Text on stdout that qwenchat did not write all of: control characters made inert."""
    sys.stdout.write(shown(text) + end)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str | Text]]) -> None:
    """A borderless table on stdout. A ``str`` cell is plain text: no Rich markup is
    read from it (names and titles come from files, cards and models) and its control
    characters are inert; a ``Text`` cell is qwenchat's own, styled."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(*headers, box=None)
    for row in rows:
        table.add_row(*(c if isinstance(c, Text) else Text(shown(c)) for c in row))
    Console().print(table)


def settings_with(
    gpu_layers: str | None = None,
    threads: int | None = None,
    n_ctx: int | None = None,
    engine_url: str | None = None,
    kv_type: str | None = None,
) -> Settings:
    """The config file's settings with the command-line engine flags applied.

    ``engine_url``: ``--engine``, a server's URL, or ``local`` for a local model even
    where the config names a server.
    """
    from qwenchat.config import load_settings, parse_gpu_layers
    from qwenchat.errors import InputError

    settings = load_settings()
    updates: dict[str, object] = {}
    if engine_url is not None and engine_url.strip().lower() == "local":
        updates["url"] = None
    elif engine_url is not None:
        from qwenchat.server_url import normalize_url

        try:
            updates["url"] = normalize_url(engine_url)
        except ValueError as exc:
            raise InputError(f"--engine: {exc} (a server's URL, or 'local')") from None
    if gpu_layers is not None:
        try:
            updates["gpu_layers"] = parse_gpu_layers(gpu_layers)
        except ValueError as exc:
            raise InputError(f"--gpu-layers: {exc}") from None
    if threads is not None:
        updates["threads"] = threads
    if n_ctx is not None:
        updates["n_ctx"] = n_ctx
    if kv_type is not None:
        updates["kv_type"] = kv_type
    engine = validated(type(settings.engine), settings.engine.model_dump(), updates)
    return settings.model_copy(update={"engine": engine})


def validated(model: type[M], base: dict[str, Any], flags: dict[str, Any]) -> M:
    """``model`` from ``base`` with the command-line values ``flags`` (by field name) on
    top, validated: a bad value is an :class:`InputError` naming its flag, before any
    work starts (``model_copy`` would take it unchecked)."""
    from pydantic import ValidationError

    from qwenchat.errors import InputError

    try:
        return model.model_validate({**base, **flags})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        flag = f"--{field.replace('_', '-')}" if field in flags else field or "settings"
        given = f" {flags[field]}" if field in flags else ""
        raise InputError(f"{flag}{given}: {error['msg'][0].lower()}{error['msg'][1:]}") from None


def load_tool_registry(
    tools_dirs: list[Path] | None, mcp_config: Path | None = None
) -> ToolRegistry:
    """Built-in tools, the user's tools dir, ``--tools-dir`` dirs and the MCP servers'
    tools (``mcp.json``, or ``--mcp-config``; stopped when the command ends); problems
    become warnings."""
    import atexit

    from qwenchat.errors import InputError
    from qwenchat.mcp.tools import McpServers
    from qwenchat.tools import default_tool_dirs, load_tools

    for directory in tools_dirs or []:
        if not directory.is_dir():
            raise InputError(f"--tools-dir {directory}: not a directory")
    servers = McpServers.from_config(mcp_config)
    loaded = load_tools([*default_tool_dirs(), *(tools_dirs or [])])
    for problem in loaded.problems:
        err(f"warning: {problem}")
    atexit.register(servers.close)
    servers.add_tools(loaded.registry, lambda line: err(f"warning: {line}"))
    return loaded.registry


def terminal_approver() -> Approver | None:
    """Ask on the controlling terminal (even when stdin is a pipe); None without one."""
    try:
        tty = open("/dev/tty", "r+", encoding="utf-8")  # noqa: SIM115 - lives as long as the command
    except OSError:
        return None

    def ask(tool: Tool, arguments: dict[str, Any]) -> Approval:
        # The arguments are the model's: inert, as everything else it wrote.
        tty.write(f"qwenchat: run {tool.name} {shown_json(arguments)}? [y]es, [a]lways, [N]o: ")
        tty.flush()
        answer = tty.readline().strip().lower()
        return (
            "always" if answer in ("a", "always") else "once" if answer in ("y", "yes") else "deny"
        )

    return ask
