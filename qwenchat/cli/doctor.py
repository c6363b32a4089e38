"""``qwenchat doctor``: what this installation has, each line ok, warning or problem."""

from __future__ import annotations

from typing import Annotated

import typer

_MARK = {"ok": "ok     ", "warning": "warning", "problem": "PROBLEM"}


def doctor(
    speed: Annotated[
        bool, typer.Option("--speed/--no-speed", help="Time a 5-second generation.")
    ] = True,
) -> None:
    """Check Python, llama.cpp, the config, the model, the sandbox and the speed."""
    from qwenchat.doctor import run_checks

    problems = 0
    for check in run_checks(speed=speed):
        print(f"{_MARK[check.status]}  {check.label:<9} {check.detail}", flush=True)
        if check.fix:
            print(f"{'':<9}  {'':<9} fix: {check.fix}", flush=True)
        problems += check.status == "problem"
    if problems:
        raise typer.Exit(1)
