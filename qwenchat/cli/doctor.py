"""``qwenchat doctor``: what this installation has, each line ok, warning or problem."""

from __future__ import annotations

from typing import Annotated

import typer

_MARK = {"ok": "ok     ", "warning": "warning", "problem": "PROBLEM"}


def doctor(
    generate: Annotated[
        bool,
        typer.Option(
            "--generate/--no-generate",
            help="Run the model: a known-answer check, then a timed 5-second generation.",
        ),
    ] = True,
) -> None:
    """Check Python, llama.cpp, the config, the model, the sandbox, right answers and speed."""
    from qwenchat.doctor import run_checks

    problems = 0
    for check in run_checks(generate=generate):
        print(f"{_MARK[check.status]}  {check.label:<9} {check.detail}", flush=True)
        if check.fix:
            print(f"{'':<9}  {'':<9} fix: {check.fix}", flush=True)
        problems += check.status == "problem"
    if problems:
        raise typer.Exit(1)
