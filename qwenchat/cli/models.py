"""``qwenchat models``: the local GGUF models, and getting more from the hub."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qwenchat.cli.common import EXIT_INTERRUPTED, err, out, print_table, settings_with
from qwenchat.safetext import shown_json

if TYPE_CHECKING:
    from rich.console import Console

    from qwenchat.models import ModelInfo
    from qwenchat.models.hub import Progress

app = typer.Typer(
    help="Local GGUF models, and getting more from the Hugging Face hub.", no_args_is_help=True
)

_NAME_HELP = (
    "a model name in the models dir (a unique prefix is enough), a .gguf path, "
    "or a name it was pulled as (qwen2.5:7b, OWNER/REPO:FILE.gguf)"
)


@app.command("list")
def list_() -> None:
    """List the GGUF models in the models dir."""
    from rich.text import Text

    from qwenchat.models import list_models

    models_dir = settings_with().resolved_models_dir()
    found = list_models(models_dir)
    if not found:
        err(
            f"no models in {models_dir}; run: qwenchat models pull qwen2.5:1.5b, "
            "pip install 'qwenchat[test-model]' or copy a .gguf file there"
        )
        return
    rows: list[tuple[str | Text, ...]] = []
    for info in found:
        if info.error:  # in full on stderr: a table cell would cut it
            err(f"warning: {info.error}")
            rows.append((info.name, "", "", "", Text("unreadable", style="red")))
            continue
        size = f"{info.size_bytes / 2**20:,.0f} MiB"
        quant, arch = info.quant or "?", info.architecture or "?"
        rows.append((info.name, size, quant, arch, str(info.context_length or "?")))
    print_table(("name", "size", "quant", "arch", "context"), rows)


@app.command("pull")
def pull(
    name: Annotated[
        str,
        typer.Argument(
            help="qwen2.5:SIZE, qwen2.5-coder:SIZE or qwen2.5-math:SIZE, optionally "
            "SIZE-QUANT (qwen2.5:7b-q8_0; default q4_k_m); or OWNER/REPO:FILE.gguf"
        ),
    ],
) -> None:
    """Download a GGUF model from the Hugging Face hub into the models dir.

    NAME is qwen2.5:SIZE, qwen2.5-coder:SIZE or qwen2.5-math:SIZE, with -QUANT to
    choose another quantisation than q4_k_m (qwen2.5:7b-q8_0), or OWNER/REPO:FILE.gguf.
    An interrupted download resumes where it stopped when pulled again; the file's
    sha256 is checked against the hub's before it becomes a model.
    """
    from rich.console import Console

    from qwenchat.models.hub import pull as pull_model

    models_dir = settings_with().resolved_models_dir()
    try:
        with _progress_bars(Console(stderr=True)) as progress:
            pulled = pull_model(name, models_dir, progress)
    except KeyboardInterrupt:
        err(f"interrupted; run qwenchat models pull {name} again to resume")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    size = _mib(pulled.size)
    parts = f", {len(pulled.files)} parts" if len(pulled.files) > 1 else ""
    if pulled.downloaded:
        print(f"pulled {pulled.name} ({size}{parts}) into {models_dir}; sha256 checked")
    else:
        print(f"{pulled.name} ({size}{parts}) is already in {models_dir}; sha256 checked")


@contextmanager
def _progress_bars(console: Console) -> Iterator[Progress | None]:
    """A rich progress bar per file on a terminal; nothing otherwise."""
    if not console.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    tasks: dict[str, object] = {}
    with Progress(*columns, console=console) as bars:

        def update(filename: str, done: int, total: int) -> None:
            if filename not in tasks:
                tasks[filename] = bars.add_task(filename, total=total, completed=done)
            bars.update(tasks[filename], completed=done)  # type: ignore[arg-type]

        yield update


@app.command("rm")
def rm(name: Annotated[str, typer.Argument(help=_NAME_HELP)]) -> None:
    """Delete a model from the models dir (all parts of a split model, and its stamps)."""
    from qwenchat.errors import ModelError
    from qwenchat.models import find_model, model_name, remove_model
    from qwenchat.models.hub import find_local

    settings = settings_with()
    models_dir = settings.resolved_models_dir()
    path = find_local(name, models_dir)
    was_default = False
    if settings.model:
        try:
            was_default = find_model(settings.model, models_dir) == path
        except ModelError:  # a default that is not there is not this command's business
            was_default = False
    remove_model(path, models_dir)
    print(f"removed {model_name(path)} from {models_dir}")
    if was_default:
        err("warning: it was the default model; choose another: qwenchat models default NAME")


@app.command("info")
def info(
    name: Annotated[str, typer.Argument(help=_NAME_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a model's GGUF metadata: architecture, parameters, context, quantisation, template."""
    from qwenchat.models import describe
    from qwenchat.models.hub import find_local

    found = describe(find_local(name, settings_with().resolved_models_dir()))
    if as_json:
        print(shown_json(found.model_dump(mode="json"), indent=2))
        return
    for label, value in _info_rows(found):
        out(f"{label:<15} {value}")  # GGUF metadata is the file's, not ours


def _info_rows(found: ModelInfo) -> list[tuple[str, str]]:
    parameters = found.parameters or "?"
    if found.parameter_count:
        parameters += f" ({found.parameter_count:,} weights in the GGUF)"
    if not found.has_chat_template:
        template = "none"
    elif found.is_official_template:
        template = "present, the official Qwen2.5 template"
    elif found.is_qwen_template:
        template = "present, Qwen2.5-style (ChatML with tool calls) but not the official one"
    else:
        template = "present, not a Qwen2.5 template"
    files = f" in {found.parts} parts" if found.parts > 1 else ""
    return [
        ("name", found.name),
        ("file", f"{found.path}{files}"),
        ("size", _mib(found.size_bytes)),
        ("architecture", found.architecture or "?"),
        ("parameters", parameters),
        ("context length", f"{found.context_length:,}" if found.context_length else "?"),
        ("quantisation", found.quant or "?"),
        ("chat template", template),
    ]


@app.command("default")
def default(name: Annotated[str, typer.Argument(help=_NAME_HELP)]) -> None:
    """Make a model the default: writes model = "NAME" into config.toml."""
    from qwenchat.config import set_config_value
    from qwenchat.models import check_model_file, model_name
    from qwenchat.models.hub import find_local
    from qwenchat.paths import config_path

    models_dir = settings_with().resolved_models_dir()
    path = find_local(name, models_dir)
    check_model_file(path)
    in_dir = Path(os.path.abspath(path)).parent.resolve() == models_dir.resolve()
    value = model_name(path) if in_dir else str(path.resolve())
    set_config_value("model", value)
    print(f"default model: {value} (written to {config_path()})")
    if os.environ.get("QWENCHAT_MODEL"):
        err("warning: $QWENCHAT_MODEL is set and overrides the config file's model")


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"
