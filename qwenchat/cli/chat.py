"""``qwenchat chat`` (and ``qwenchat`` alone): the terminal UI."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from qwenchat.cli.common import (
    EngineOption,
    GpuLayersOption,
    KvTypeOption,
    McpConfigOption,
    ModelOption,
    NCtxOption,
    PromptOption,
    SystemOption,
    ThreadsOption,
    settings_with,
)
from qwenchat.cli.completion import complete_personas, complete_sessions
from qwenchat.errors import InputError


def chat(
    session: Annotated[
        Optional[str],
        typer.Option(
            "--session",
            help="Open this session: an id, or a name (created if new).",
            autocompletion=complete_sessions,
        ),
    ] = None,
    persona: Annotated[
        Optional[str],
        typer.Option(
            "--persona", help="Play a persona in a new session.", autocompletion=complete_personas
        ),
    ] = None,
    prompt_name: PromptOption = None,
    system: SystemOption = None,
    model: ModelOption = None,
    tools: Annotated[bool, typer.Option("--tools", help="Start with the tools on.")] = False,
    tir: Annotated[
        bool, typer.Option("--tir", help="Start in tool-integrated reasoning mode.")
    ] = False,
    gpu_layers: GpuLayersOption = None,
    threads: ThreadsOption = None,
    kv_type: KvTypeOption = None,
    n_ctx: NCtxOption = None,
    engine_url: EngineOption = None,
    mcp_config: McpConfigOption = None,
) -> None:
    """Chat in the terminal UI (what `qwenchat` with no arguments opens)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # Textual would draw its escape codes into the pipe, and wait for keys that never come.
        raise InputError(
            "the TUI needs a terminal on stdin and stdout; in a pipeline or script, use"
            " `qwenchat ask`"
        )
    from qwenchat.tui.app import Launch, QwenchatApp

    launch = Launch(
        settings=settings_with(gpu_layers, threads, n_ctx, engine_url, kv_type),
        session=session,
        persona=persona,
        prompt=prompt_name,
        system=system,
        model=model,
        tools=tools,
        tir=tir,
        mcp_config=mcp_config,
    )
    QwenchatApp(launch).run()
