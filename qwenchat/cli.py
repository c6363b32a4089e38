"""The ``qwenchat`` command line (typer): a thin shell over :mod:`qwenchat.chat`.

Imports here stay light (typer only); everything heavy is imported inside the
command that needs it, so ``qwenchat --help`` starts fast.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from qwenchat.config import Settings

app = typer.Typer(
    name="qwenchat",
    help="Chat with, and build agents on, local Qwen2.5 models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
config_app = typer.Typer(help="Show the configuration.", no_args_is_help=True)
models_app = typer.Typer(help="Local GGUF models.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(models_app, name="models")

EXIT_INTERRUPTED = 130


def _err(message: str) -> None:
    print(f"qwenchat: {message}", file=sys.stderr)


def _settings(
    gpu_layers: str | None = None, threads: int | None = None, n_ctx: int | None = None
) -> Settings:
    """The config file's settings with the command-line engine flags applied."""
    from qwenchat.config import load_settings, parse_gpu_layers
    from qwenchat.errors import InputError

    settings = load_settings()
    updates: dict[str, object] = {}
    if gpu_layers is not None:
        try:
            updates["gpu_layers"] = parse_gpu_layers(gpu_layers)
        except ValueError as exc:
            raise InputError(f"--gpu-layers: {exc}") from None
    if threads is not None:
        updates["threads"] = threads
    if n_ctx is not None:
        updates["n_ctx"] = n_ctx
    engine = settings.engine.model_copy(update=updates)
    return settings.model_copy(update={"engine": engine})


def build_prompt(prompt: str, stdin_text: str) -> str:
    """Join the argument prompt and piped input: the input first, fenced, then the instruction."""
    if not stdin_text.strip():
        return prompt
    if not prompt:
        return stdin_text
    fence = "```"
    while fence in stdin_text:
        fence += "`"
    return f"{fence}\n{stdin_text.rstrip()}\n{fence}\n\n{prompt}"


@app.command()
def ask(
    prompt: Annotated[Optional[list[str]], typer.Argument(help="The prompt; piped stdin is added as context.")] = None,
    system: Annotated[Optional[str], typer.Option("--system", "-s", help="System prompt.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="GGUF path or name in the models dir.")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Sampling temperature (0 = greedy).")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(help="Most tokens in the reply.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Sampling seed.")] = None,
    gpu_layers: Annotated[Optional[str], typer.Option(help="auto, all, or a number of layers.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for llama.cpp.")] = None,
    n_ctx: Annotated[Optional[int], typer.Option(help="Context window in tokens.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with text, usage and timings.")] = False,
) -> None:
    """Answer one prompt and exit: `git diff | qwenchat ask "write a commit message"`."""
    from qwenchat.chat import Chat, load_engine
    from qwenchat.errors import InputError

    stdin_text = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    text = build_prompt(" ".join(prompt or []).strip(), stdin_text)
    if not text.strip():
        raise InputError('empty prompt: give one as an argument or on stdin, e.g. qwenchat ask "hello"')
    settings = _settings(gpu_layers, threads, n_ctx)
    overrides = {
        k: v
        for k, v in {"temperature": temperature, "max_tokens": max_tokens, "seed": seed}.items()
        if v is not None
    }
    engine = load_engine(model, settings, warn=lambda msg: _err(f"warning: {msg}"))
    chat = Chat(system=system, settings=settings, engine=engine, **overrides)
    stream = chat.stream(text)
    signal.signal(signal.SIGINT, lambda *_: stream.cancel())
    for delta in stream:
        if not as_json:
            sys.stdout.write(delta)
            sys.stdout.flush()
    reply = stream.reply
    assert reply is not None
    if as_json:
        print(json.dumps(reply.model_dump(include={"text", "model", "usage", "timings"}), ensure_ascii=False))
    elif not reply.text.endswith("\n"):
        sys.stdout.write("\n")
    if reply.finish_reason == "cancelled":
        _err("stopped")
        raise typer.Exit(EXIT_INTERRUPTED)


@config_app.command("path")
def config_path_cmd() -> None:
    """Print the config file's path."""
    from qwenchat.config import config_path

    print(config_path())


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration (file, environment and defaults) as JSON."""
    from qwenchat.config import config_path

    settings = _settings()
    print(f"# {config_path()}")
    print(json.dumps(settings.model_dump(mode="json"), indent=2))


@models_app.command("list")
def models_list() -> None:
    """List the GGUF models in the models dir."""
    from rich.console import Console
    from rich.table import Table

    from qwenchat.models import list_models

    models_dir = _settings().resolved_models_dir()
    found = list_models(models_dir)
    if not found:
        _err(f"no models in {models_dir}; run: pip install 'qwenchat[test-model]' or copy a .gguf file there")
        return
    table = Table("name", "size", "quant", "arch", "context", box=None)
    for info in found:
        if info.error:
            table.add_row(info.name, "", "", "", f"[red]{info.error}[/red]")
            continue
        size = f"{info.size_bytes / 2**20:,.0f} MiB"
        table.add_row(info.name, size, info.quant or "?", info.architecture or "?", str(info.context_length or "?"))
    Console().print(table)


def main() -> None:
    """Console-script entry point: run the app and turn errors into one line and an exit code."""
    import click

    from qwenchat.errors import QwenchatError

    try:
        code = app(standalone_mode=False)
    except QwenchatError as exc:
        _err(str(exc))
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:  # Ctrl-C outside a reply, e.g. while the model loads
        _err("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)
