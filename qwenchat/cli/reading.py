"""``ask``'s progress bar while a long prompt is read, on a terminal's stderr.

A prompt of a few thousand tokens takes seconds to read on a CPU before the first
token; the engine says how far it got between the batches it reads
(:attr:`qwenchat.engine.base.Engine.on_prompt`). Nothing shows for a prompt read
within :data:`AFTER_S`, and the bar goes away once the prompt is read, before the
reply is written.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

AFTER_S = 1.0
"""How long a prompt must take before its bar shows."""


class PromptBar:
    """An ``on_prompt`` listener that draws a transient rich progress bar on stderr."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._last_done = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if done < self._last_done:  # the next round's prompt: a new read
            self._started = time.monotonic()
        self._last_done = done
        if done >= total:
            self.close()
            return
        if self._progress is None:
            if time.monotonic() - self._started < AFTER_S:
                return
            self._open(total)
        assert self._progress is not None and self._task is not None
        self._progress.update(self._task, completed=done, total=total)

    def _open(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("reading the prompt"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("tokens  (Ctrl-C stops)"),
            console=Console(stderr=True),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("prompt", total=total)

    def close(self) -> None:
        """Take the bar away (the prompt is read, or the reply ended)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = self._task = None
        self._started = time.monotonic()
