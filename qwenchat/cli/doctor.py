"""``qwenchat doctor``: what this installation has, each line ok, warning or problem."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from qwenchat.cli.common import out

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
        # Details quote model names, paths and servers' answers: shown inert.
        out(f"{_MARK[check.status]}  {check.label:<9} {check.detail}")
        if check.fix:
            out(f"{'':<9}  {'':<9} fix: {check.fix}")
        sys.stdout.flush()
        problems += check.status == "problem"
    if problems:
        raise typer.Exit(1)
