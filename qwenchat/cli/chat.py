"""``qwenchat chat`` (and ``qwenchat`` alone): the terminal UI."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from qwenchat.cli.common import (
    EngineOption,
    GpuLayersOption,
    ModelOption,
    NCtxOption,
    PromptOption,
    SystemOption,
    ThreadsOption,
    settings_with,
)


def chat(
    session: Annotated[
        Optional[str], typer.Option("--session", help="Open this session (created if new).")
    ] = None,
    persona: Annotated[
        Optional[str], typer.Option("--persona", help="Play a persona in a new session.")
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
    n_ctx: NCtxOption = None,
    engine_url: EngineOption = None,
) -> None:
    """Chat in the terminal UI (what `qwenchat` with no arguments opens)."""
    from qwenchat.tui.app import Launch, QwenchatApp

    launch = Launch(
        settings=settings_with(gpu_layers, threads, n_ctx, engine_url),
        session=session,
        persona=persona,
        prompt=prompt_name,
        system=system,
        model=model,
        tools=tools,
        tir=tir,
    )
    QwenchatApp(launch).run()
