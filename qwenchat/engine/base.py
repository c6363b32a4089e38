"""What every engine provides: a streamed, cancellable generation with usage and timings.

An engine turns a rendered prompt (a list of :class:`~qwenchat.chatml.Segment`)
into text deltas. Nothing above this module knows which engine runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from qwenchat.chatml import Segment
from qwenchat.config import Sampling

FinishReason = Literal["stop", "length", "cancelled"]


class Usage(BaseModel):
    """Token counts of one reply."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0


class Timings(BaseModel):
    """Wall-clock figures of one reply, in seconds."""

    ttft_s: float = 0.0
    decode_tokens_per_s: float = 0.0
    total_s: float = 0.0


class Completion(BaseModel):
    """A finished (or stopped) reply."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    timings: Timings
    stop_sequence: str | None = None
    """The stop string that ended the reply (the text includes it), if one did."""
    notice: str | None = None
    """What the user should know about how it was generated (a constraint not applied)."""


class Constraint(BaseModel):
    """What a reply's text must be, as a parameter of one generation.

    Every engine is given both forms and uses the one it can: llama.cpp and
    llama-server take the GBNF grammar, vLLM the grammar too, Ollama only the JSON
    Schema. An engine that can use neither generates unconstrained and says so in
    :attr:`Completion.notice`.
    """

    gbnf: str
    json_schema: dict[str, Any] | None = None


class StopStrings:
    """Watches streamed text for stop strings, across delta boundaries."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self._keep = max((len(s) for s in self.stops), default=0)
        self._tail = ""

    def feed(self, text: str) -> str | None:
        """Add a delta; return the first stop string the text now contains, if any."""
        if not self.stops:
            return None
        window = self._tail + text
        self._tail = window[-self._keep :]
        return next((s for s in self.stops if s in window), None)


class Clock:
    """Collects the time to first token and the decode rate of one reply."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None
        self.sampled = 0

    def tick(self) -> None:
        """Record one sampled token (end-of-turn tokens included)."""
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now
        self.sampled += 1

    def timings(self) -> Timings:
        end = time.perf_counter()
        ttft = (self.first - self.start) if self.first is not None else end - self.start
        rate = 0.0
        if self.first is not None and self.last is not None and self.sampled > 1:
            span = self.last - self.first
            rate = (self.sampled - 1) / span if span > 0 else 0.0
        return Timings(ttft_s=ttft, decode_tokens_per_s=rate, total_s=end - self.start)


class Generation:
    """One streamed reply: iterate for text deltas, then read :attr:`result`.

    :meth:`cancel` may be called from any thread; the stream ends within one
    token and the partial reply is kept with ``finish_reason="cancelled"``.
    """

    def __init__(self, produce: Callable[[Generation], Iterator[str]]) -> None:
        self._produce = produce
        self._cancel = threading.Event()
        self.result: Completion | None = None

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def __iter__(self) -> Iterator[str]:
        # The producer checks `cancelled` between tokens and sets `result` last.
        yield from self._produce(self)


class Engine(Protocol):
    """A loaded model that can generate from a rendered ChatML prompt."""

    @property
    def model_name(self) -> str: ...

    @property
    def n_ctx(self) -> int: ...

    def count_tokens(self, prompt: list[Segment]) -> int: ...

    def generate(
        self,
        prompt: list[Segment],
        sampling: Sampling,
        *,
        banned: Sequence[str] = (),
        stop: Sequence[str] = (),
        constraint: Constraint | None = None,
    ) -> Generation:
        """Start a reply.

        ``banned`` lists special tokens (e.g. ``<tool_call>``) it may not emit. The
        reply ends after the token that completes any string of ``stop``; that token's
        text is kept, so the reply's text and its token ids stay the same sequence.
        ``constraint``: the grammar every token must keep the reply within.
        """
        ...
