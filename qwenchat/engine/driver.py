"""The engine contract, enforced in one place: every engine is driven by :func:`drive`.

An engine only says how to start decoding a prompt (:meth:`DrivenEngine.decode`,
returning a :class:`Decode` that yields the reply's pieces). The driver does the
rest, the same way for llama.cpp, remote servers and the tests' scripted engine:
the context-room check, the token budget, stop strings across piece boundaries,
a cancel that ends the stream within one piece, timings, and assembling the
:class:`~qwenchat.engine.base.Completion`.
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from qwenchat.chatml import Segment
from qwenchat.config import Sampling
from qwenchat.engine.base import (
    Clock,
    Completion,
    Constraint,
    EngineInfo,
    FinishReason,
    Generation,
    PromptProgress,
    StopStrings,
    Usage,
)
from qwenchat.engine.kvcache import KVCache
from qwenchat.errors import InputError


class Piece(NamedTuple):
    """A delta of a reply's text and how many sampled tokens it stands for (a local
    token whose bytes end mid-character has no text yet; a server chunk may hold more
    than one token)."""

    text: str
    tokens: int = 1


class Decode(ABC):
    """One generation as an engine runs it, under the driver.

    :meth:`pieces` yields the reply until the model ends its turn (the engine then
    sets :attr:`ended`) or the stream runs out; the driver may stop sooner (a stop
    string, a cancel, the token budget) and then closes the iterator, so an engine
    releases what it holds in a ``finally``.
    """

    def __init__(self, prompt_tokens: int, cached_tokens: int = 0) -> None:
        self.prompt_tokens = prompt_tokens
        self.cached_tokens = cached_tokens
        self.ended = False
        """The model ended its turn (an end-of-turn token, or a server's own stop)."""
        self.notice: str | None = None
        """What the user should know about how this reply was generated."""
        self.on_prompt: PromptProgress | None = None
        """The generation's listener for how far the prompt has been read (the driver
        sets it); an engine that reads the prompt in chunks calls it between them."""

    @abstractmethod
    def pieces(self) -> Iterator[Piece]: ...

    def flush(self) -> str:
        """Text held back when the stream stopped (bytes of a character cut short)."""
        return ""

    def usage(self, text: str, sampled: int) -> Usage:
        """The reply's token counts; ``sampled``: the tokens its pieces stood for."""
        return Usage(
            prompt_tokens=self.prompt_tokens,
            cached_tokens=self.cached_tokens,
            completion_tokens=sampled,
        )

    def interrupt(self) -> None:  # noqa: B027 - most engines need no interrupt
        """Make a read blocked on the engine return now (called from any thread)."""

    def finish(self, completion: Completion) -> None:  # noqa: B027 - most learn nothing
        """Called with the finished reply, for engines that learn from it."""


class DrivenEngine(ABC):
    """An engine whose :meth:`generate` is the driver's: subclasses give :meth:`decode`."""

    model_name: str
    n_ctx: int
    """The context window, in tokens (an engine's attribute or property)."""
    on_prompt: PromptProgress | None = None
    """See :attr:`qwenchat.engine.base.Engine.on_prompt`."""

    @abstractmethod
    def count_tokens(self, prompt: list[Segment]) -> int: ...

    @abstractmethod
    def info(self) -> EngineInfo: ...

    @abstractmethod
    def decode(
        self,
        prompt: list[Segment],
        sampling: Sampling,
        *,
        max_tokens: int,
        banned: Sequence[str],
        constraint: Constraint | None,
    ) -> Decode:
        """Start decoding ``prompt``; at most ``max_tokens`` tokens will be taken."""

    def use_kv_cache(self, cache: KVCache) -> bool:
        """Save the KV state after each reply and resume from it; False: this engine
        keeps no state of its own to save."""
        return False

    def generate(
        self,
        prompt: list[Segment],
        sampling: Sampling,
        *,
        banned: Sequence[str] = (),
        stop: Sequence[str] = (),
        constraint: Constraint | None = None,
    ) -> Generation:
        """See :meth:`qwenchat.engine.base.Engine.generate`."""
        return Generation(lambda gen: drive(self, gen, prompt, sampling, banned, stop, constraint))

    def generate_batch(
        self, prompt: list[Segment], samplings: Sequence[Sampling], *, stop: Sequence[str] = ()
    ) -> list[Generation]:
        """See :meth:`qwenchat.engine.base.Engine.generate_batch`. Here: one ordinary
        generation per sampling, each decoded when it is read (an engine that can decode
        them together overrides this)."""
        return [self.generate(prompt, sampling, stop=stop) for sampling in samplings]

    def score(self, prompts: Sequence[list[Segment]], continuation: str) -> list[float] | None:
        """See :meth:`qwenchat.engine.base.Engine.score`. Here: None (an engine that can
        read its log-probabilities overrides this)."""
        return None


def drive(
    engine: DrivenEngine,
    gen: Generation,
    prompt: list[Segment],
    sampling: Sampling,
    banned: Sequence[str],
    stop: Sequence[str],
    constraint: Constraint | None,
) -> Iterator[str]:
    """Run one generation of ``engine`` under the contract, setting ``gen.result``."""
    clock = Clock()
    n_prompt = engine.count_tokens(prompt)
    room = engine.n_ctx - n_prompt
    if room <= 0:
        raise InputError(
            f"the prompt is {n_prompt} tokens but the context window is {engine.n_ctx}; "
            "shorten it or raise engine.n_ctx"
        )
    if gen.cancelled:  # stopped before it started: decode nothing
        gen.result = Completion(
            text="",
            finish_reason="cancelled",
            usage=Usage(prompt_tokens=n_prompt),
            timings=clock.timings(0),
        )
        return
    budget = min(sampling.max_tokens, room)
    decode = engine.decode(
        prompt, sampling, max_tokens=budget, banned=banned, constraint=constraint
    )
    parts: list[str] = []
    watch = StopStrings(stop)
    hit: str | None = None
    sampled = 0
    decode.on_prompt = engine.on_prompt
    gen.attach(decode)
    pieces = decode.pieces()
    try:
        for piece in pieces:
            clock.tick(piece.tokens)
            sampled += piece.tokens
            if piece.text:
                parts.append(piece.text)
                yield piece.text
                hit = watch.feed(piece.text)
            if hit is not None or gen.cancelled or sampled >= budget:
                break
    finally:
        pieces.close()
        gen.attach(None)
    tail = decode.flush()
    if tail:
        parts.append(tail)
        yield tail
    text = "".join(parts)
    reason: FinishReason
    if hit is not None or decode.ended:
        reason = "stop"
    elif gen.cancelled:
        reason = "cancelled"
    else:
        reason = "length"
    usage = decode.usage(text, sampled)
    gen.result = Completion(
        text=text,
        finish_reason=reason,
        usage=usage,
        timings=clock.timings(usage.completion_tokens),
        stop_sequence=hit,
        notice=decode.notice,
    )
    decode.finish(gen.result)


def read_ahead(generations: Sequence[Generation]) -> list[Generation]:
    """The generations, each read from now on in a thread of its own, so that their
    requests are in flight together (a server batches the requests it has at once).
    Reading one gives what its thread has read; cancelling one cancels its request."""
    return [_ReadAhead(generation) for generation in generations]


_DONE = object()


class _ReadAhead(Generation):
    def __init__(self, inner: Generation) -> None:
        super().__init__(self._replay)
        self._inner = inner
        self._queue: queue.Queue[object] = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="read-ahead").start()

    def _read(self) -> None:
        try:
            for delta in self._inner:
                self._queue.put(delta)
        except BaseException as exc:  # raised again where the reply is read
            self._queue.put(exc)
        else:
            self._queue.put(_DONE)

    def cancel(self) -> None:
        super().cancel()
        self._inner.cancel()

    def _replay(self, _gen: Generation) -> Iterator[str]:
        done = False
        try:
            while (item := self._queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
            done = True
            self.result = self._inner.result
        finally:
            if not done:  # the reader stopped early: the request need not go on
                self._inner.cancel()
