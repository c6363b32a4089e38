"""``qwenchat chat`` (and ``qwenchat`` alone): the terminal UI."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from qwenchat.cli.common import settings_with


def chat(
    session: Annotated[
        Optional[str], typer.Option("--session", help="Open this session (created if new).")
    ] = None,
    persona: Annotated[
        Optional[str], typer.Option("--persona", help="Play a persona in a new session.")
    ] = None,
    prompt_name: Annotated[
        Optional[str],
        typer.Option("--prompt", "-p", help="A system prompt from the library, by name."),
    ] = None,
    system: Annotated[Optional[str], typer.Option("--system", "-s", help="System prompt.")] = None,
    model: Annotated[
        Optional[str], typer.Option("--model", "-m", help="GGUF path or name in the models dir.")
    ] = None,
    tools: Annotated[bool, typer.Option("--tools", help="Start with the tools on.")] = False,
    tir: Annotated[
        bool, typer.Option("--tir", help="Start in tool-integrated reasoning mode.")
    ] = False,
    gpu_layers: Annotated[
        Optional[str], typer.Option(help="auto, all, or a number of layers.")
    ] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for llama.cpp.")] = None,
    n_ctx: Annotated[Optional[int], typer.Option(help="Context window in tokens.")] = None,
    engine_url: Annotated[
        Optional[str],
        typer.Option(
            "--engine",
            metavar="URL",
            help="Generate on this OpenAI-compatible server (vLLM, llama-server, Ollama,"
            " llama-cpp-python's), or 'local'.",
        ),
    ] = None,
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
