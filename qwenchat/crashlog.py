"""A native crash is never silent: the crashed run leaves its stack, the next run says so.

A crash inside llama.cpp (SIGSEGV in a kernel built for the wrong CPU, SIGILL from
instructions the CPU lacks) kills the process before any Python ``except`` can run,
and the shell shows at most an exit code. So every run arms :mod:`faulthandler` to
write the stacks of a fatal signal to a file of its own; a run that ends normally
removes its file, and the next run that finds a non-empty one prints one line:
what happened, where the stacks are, and ``qwenchat doctor``, whose known-answer
check runs the model in a child process and names the fix.

Files are per process (``<pid>.log``), so runs side by side never read or clear
each other's.
"""

from __future__ import annotations

import atexit
import faulthandler
import os
from pathlib import Path
from typing import TextIO

LAST_CRASH = "last-crash.log"
_previous: str | None = None


def arm(directory: Path) -> str | None:
    """Report what earlier runs left in ``directory``, then arm this run's crash file.

    Returns the line to tell the user about the latest crash found, or None. A
    directory that cannot be written only leaves this run unarmed.
    """
    global _previous
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _previous = _collect(directory)
        log = (directory / f"{os.getpid()}.log").open("w")
    except OSError:
        return None
    faulthandler.enable(file=log, all_threads=True)
    atexit.register(_disarm, log)
    return _previous


def previous_crash() -> str | None:
    """What :func:`arm` reported in this process (for the TUI, which hides stderr)."""
    return _previous


def _collect(directory: Path) -> str | None:
    """Move the newest crash log to ``last-crash.log``; remove logs of runs that ended."""
    crashed: list[Path] = []
    for log in directory.glob("*.log"):
        if log.name == LAST_CRASH or not log.stem.isdigit():
            continue
        pid = int(log.stem)
        if pid != os.getpid() and _alive(pid):
            continue  # another qwenchat running now
        if log.stat().st_size:
            crashed.append(log)
        else:
            log.unlink(missing_ok=True)  # killed or ended without its atexit: nothing to say
    if not crashed:
        return None
    crashed.sort(key=lambda p: p.stat().st_mtime)
    *older, newest = crashed
    for log in older:
        log.unlink(missing_ok=True)
    last = directory / LAST_CRASH
    newest.replace(last)
    return (
        f"the last qwenchat run crashed in native code ({_what(last)}), most likely"
        f" llama.cpp on this CPU; its stack is in {last}. Run `qwenchat doctor` to check"
        " the build and see the fix."
    )


def _what(log: Path) -> str:
    """``Segmentation fault`` from faulthandler's first line, ``Fatal Python error: ...``."""
    first = log.read_text(errors="replace").partition("\n")[0]
    what = first.removeprefix("Fatal Python error:").strip()
    # The file is written by this program, but keep the line to printable text anyway.
    return "".join(ch for ch in what if ch.isprintable())[:80] or "unknown error"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # PermissionError: alive, someone else's (a reused pid)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _disarm(log: TextIO) -> None:
    faulthandler.disable()
    log.close()
    Path(log.name).unlink(missing_ok=True)
