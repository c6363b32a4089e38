"""Driving a program in a real terminal: a detached tmux session, its keys and its screen.

Used by the TUI smoke test and by the TUI benchmarks (bench/tui_*.py), so both see
what a person at a terminal would.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping


class TerminalError(Exception):
    """tmux is missing, or the screen never showed what was waited for."""


class Tmux:
    """``command`` running in a new detached tmux session of ``width`` x ``height`` cells."""

    def __init__(
        self,
        command: list[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        width: int = 120,
        height: int = 36,
    ) -> None:
        if shutil.which("tmux") is None:
            raise TerminalError("tmux is not installed (apt-get install tmux)")
        self.name = f"qwenchat-{uuid.uuid4().hex[:8]}"
        # Exactly ``env`` (the tmux server's own environment may be another one), but
        # the terminal type of the pane tmux made.
        variables = dict(env if env is not None else os.environ)
        variables.pop("TERM", None)
        exports = " ".join(shlex.quote(f"{k}={v}") for k, v in variables.items())
        # Keep the pane after the program exits, so its last screen can still be read.
        shell = f'env -i TERM="$TERM" {exports} {shlex.join(command)}; sleep 600'
        args = ["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height)]
        args += ["-c", cwd] if cwd else []
        for _attempt in range(3):  # a tmux server that is just shutting down refuses once
            started = subprocess.run([*args, shell], capture_output=True, text=True)
            if started.returncode == 0:
                break
            time.sleep(0.5)
        else:
            raise TerminalError(f"tmux new-session failed: {started.stderr.strip()}")
        self.started = time.perf_counter()

    def keys(self, *keys: str) -> None:
        """Press tmux key names (``Enter``, ``Escape``, ``C-b``...)."""
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def type(self, text: str) -> None:
        """Type ``text`` literally."""
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)

    def screen(self) -> str:
        out = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        )
        return out.stdout

    def wait_for(
        self, ready: str | Callable[[str], bool], timeout: float = 30.0, poll: float = 0.01
    ) -> str:
        """Wait until the screen contains ``ready`` (or ``ready(screen)`` holds); the screen."""
        check = ready if callable(ready) else (lambda screen: ready in screen)
        deadline = time.perf_counter() + timeout
        while True:
            screen = self.screen()
            if check(screen):
                return screen
            if time.perf_counter() > deadline:
                raise TerminalError(f"timed out after {timeout} s waiting for {ready!r}:\n{screen}")
            time.sleep(poll)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)

    def __enter__(self) -> Tmux:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
