"""What every engine provides: a streamed, cancellable generation with usage and timings.

An engine turns a rendered prompt (a list of :class:`~qwenchat.chatml.Segment`)
into text deltas. Nothing above this module knows which engine runs; every engine
is driven by :mod:`qwenchat.engine.driver`, which enforces this contract.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel

from qwenchat.chatml import Segment
from qwenchat.config import Sampling

if TYPE_CHECKING:
    from qwenchat.engine.driver import Decode
    from qwenchat.engine.kvcache import KVCache

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


class EngineInfo(BaseModel):
    """What the UI shows about a loaded engine, whatever engine it is."""

    model: str
    n_ctx: int
    runs_on: str
    """Where it runs, short: ``CPU``, ``GPU 25/25``, ``remote http://host:8000``."""
    summary: str
    """One line: the model, its context window, how and where it runs (``ask -v``, doctor)."""
    quant: str = ""
    path: Path | None = None
    """The local model file, if there is one."""
    notes: list[str] = []
    """What the user should know about how it was loaded (the AMX guard)."""

    def describe(self) -> str:
        """The summary, with a line per note."""
        return "\n".join([self.summary, *self.notes])


class Constraint(BaseModel):
    """What a reply's text must be, as a parameter of one generation.

    Every engine is given both forms and uses the one it can: llama.cpp and
    llama-server take the GBNF grammar, vLLM the grammar too, Ollama only the JSON
    Schema. An engine that can use neither generates unconstrained and says so in
    :attr:`Completion.notice`, unless the constraint is only a ``hint``.
    """

    gbnf: str
    json_schema: dict[str, Any] | None = None
    hint: bool = False
    """The reply is fine without it (it steers the model): no notice when not applied."""


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

    def tick(self, tokens: int = 1) -> None:
        """Record that ``tokens`` more were sampled (a server's chunk may hold several)."""
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now
        self.sampled += tokens

    def timings(self, tokens: int) -> Timings:
        """``tokens``: the reply's count, when the engine knows it better than the ticks
        did (a server's usage); the rate is over the larger of the two."""
        end = time.perf_counter()
        ttft = (self.first - self.start) if self.first is not None else end - self.start
        rate = 0.0
        count = max(tokens, self.sampled)
        if self.first is not None and self.last is not None and count > 1:
            span = self.last - self.first
            rate = (count - 1) / span if span > 0 else 0.0
        return Timings(ttft_s=ttft, decode_tokens_per_s=rate, total_s=end - self.start)


PromptProgress = Callable[[int, int], None]
"""Told ``(tokens read, tokens to read)`` while a long prompt is read."""


class Generation:
    """One streamed reply: iterate for text deltas, then read :attr:`result`.

    :meth:`cancel` may be called from any thread; the stream ends within one
    token and the partial reply is kept with ``finish_reason="cancelled"``.
    """

    def __init__(self, produce: Callable[[Generation], Iterator[str]]) -> None:
        self._produce = produce
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._decode: Decode | None = None
        self.result: Completion | None = None

    def attach(self, decode: Decode | None) -> None:
        """The decode :meth:`cancel` interrupts (None: none now); the driver's."""
        with self._lock:
            self._decode = decode
        if decode is not None and self.cancelled:
            decode.interrupt()

    def cancel(self) -> None:
        self._cancel.set()
        with self._lock:
            decode = self._decode
        if decode is not None:  # a read blocked on a server returns at once
            decode.interrupt()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def __iter__(self) -> Iterator[str]:
        # The producer checks `cancelled` between tokens and sets `result` last.
        yield from self._produce(self)


class Engine(Protocol):
    """A loaded model that can generate from a rendered ChatML prompt."""

    on_prompt: PromptProgress | None
    """Told ``(tokens read, tokens to read)`` between the batches a long prompt is read
    in, from the thread that reads the reply (the UI's listener, set while a reply is
    read); an engine that reads prompts in one go, or remotely, never calls it."""

    @property
    def model_name(self) -> str: ...

    @property
    def n_ctx(self) -> int: ...

    def count_tokens(self, prompt: list[Segment]) -> int: ...

    def info(self) -> EngineInfo: ...

    def use_kv_cache(self, cache: KVCache) -> bool:
        """Save the KV state after each reply and resume from it; False: the engine keeps
        no state of its own."""
        ...

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

    def generate_batch(
        self, prompt: list[Segment], samplings: Sequence[Sampling], *, stop: Sequence[str] = ()
    ) -> list[Generation]:
        """Replies to one prompt, one per sampling (the samples of a vote), as
        :meth:`generate` gives them: read each to the end (or stop it) in any order. An
        engine may decode them together, the prompt evaluated once; reading one then
        decodes the others too, as far as they go."""
        ...

    def score(self, prompts: Sequence[list[Segment]], continuation: str) -> list[float] | None:
        """``log P(continuation | prompt)`` for each of ``prompts`` (the continuation
        tokenized as plain text after each), to rank them; None: this engine cannot
        say (a server that returns no prompt log-probabilities)."""
        ...
