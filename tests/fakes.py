"""A scripted engine for tests of everything above the engine (no model needed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

from qwenchat.chatml import Segment
from qwenchat.config import Sampling
from qwenchat.engine.base import Completion, Constraint, EngineInfo, Generation
from qwenchat.engine.driver import Decode, DrivenEngine, Piece


class ScriptedEngine(DrivenEngine):
    """Replies with the scripted texts in order, one character per "token".

    Driven by :mod:`qwenchat.engine.driver` like every engine, so stop strings, the
    context room, the token budget and cancel behave as with a model. Records each
    prompt (as text), each reply's banned tokens, stop strings and constraint (which
    it does not enforce: the script is the model), and its sampling.
    A reply cut short by a cancel and then continued (the prompt ends with the part
    it wrote) goes on with the rest of its script.
    ``delay``: seconds to wait before each "token" (0: none), for tests that need a
    reply to be still running, e.g. to stop it.
    ``scores``: what :meth:`score` gives a prompt that holds a key (a tool's name, as
    the routing prompts do); None: the engine cannot score, as a server that gives no
    log-probabilities. Each scored continuation is recorded in :attr:`scored`.
    ``reading``: ``(batches, seconds)``: read each prompt as that many batches of 512
    "tokens", that long each, telling :attr:`on_prompt` after each, and stopping between
    them when interrupted, as the llama.cpp engine does with a long prompt.
    """

    model_name = "scripted"
    n_ctx = 4096

    def __init__(
        self,
        replies: list[str],
        *,
        delay: float = 0.0,
        n_ctx: int = 4096,
        scores: dict[str, float] | None = None,
        reading: tuple[int, float] = (0, 0.0),
    ) -> None:
        self.replies = list(replies)
        self.reading = reading
        self.scores = scores
        self.scored: list[str] = []
        self.delay = delay
        self.n_ctx = n_ctx
        self.prompts: list[str] = []
        self.segments: list[list[Segment]] = []
        self.banned: list[tuple[str, ...]] = []
        self.stops: list[tuple[str, ...]] = []
        self.constraints: list[Constraint | None] = []
        self.samplings: list[Sampling] = []
        self._cut: str | None = None  # the scripted reply a cancel cut short
        self.continued: list[bool] = []

    def _next(self, prompt: list[Segment]) -> str:
        """The next scripted reply; or, when the prompt continues a reply that was cut
        short (as the loop does after a call opens), the rest of that reply."""
        cut, self._cut = self._cut, None
        if cut is not None and prompt and cut.startswith(prompt[-1].text) and prompt[-1].text:
            self.continued.append(True)
            return cut[len(prompt[-1].text) :]
        self.continued.append(False)
        return self.replies.pop(0)

    def starts(self) -> list[tuple[str, tuple[str, ...]]]:
        """The prompt and banned tokens of each reply begun anew (not a continuation)."""
        return [
            (prompt, banned)
            for prompt, banned, cont in zip(self.prompts, self.banned, self.continued, strict=True)
            if not cont
        ]

    def count_tokens(self, prompt: list[Segment]) -> int:
        return sum(len(seg.text) for seg in prompt)

    def info(self) -> EngineInfo:
        return EngineInfo(
            model=self.model_name, n_ctx=self.n_ctx, runs_on="CPU", summary="a scripted engine"
        )

    def generate(
        self,
        prompt: list[Segment],
        sampling: Sampling,
        *,
        banned: Sequence[str] = (),
        stop: Sequence[str] = (),
        constraint: Constraint | None = None,
    ) -> Generation:
        self.stops.append(tuple(stop))
        return super().generate(prompt, sampling, banned=banned, stop=stop, constraint=constraint)

    def score(self, prompts: Sequence[list[Segment]], continuation: str) -> list[float] | None:
        if self.scores is None:
            return None
        self.scored.append(continuation)
        texts = ["".join(seg.text for seg in prompt) for prompt in prompts]
        return [
            next((v for k, v in self.scores.items() if f" {k}:" in text), -100.0) for text in texts
        ]

    def decode(
        self,
        prompt: list[Segment],
        sampling: Sampling,
        *,
        max_tokens: int,
        banned: Sequence[str],
        constraint: Constraint | None,
    ) -> Decode:
        self.constraints.append(constraint)
        self.samplings.append(sampling)
        self.banned.append(tuple(banned))
        self.prompts.append("".join(seg.text for seg in prompt))
        self.segments.append(list(prompt))
        return _ScriptedDecode(self, self._next(prompt), self.count_tokens(prompt))


class _ScriptedDecode(Decode):
    """A scripted reply, one character per "token"; it ends its turn where the script does."""

    def __init__(self, engine: ScriptedEngine, text: str, prompt_tokens: int) -> None:
        super().__init__(prompt_tokens)
        self.engine = engine
        self.text = text
        self.interrupted = threading.Event()

    def interrupt(self) -> None:
        self.interrupted.set()

    def pieces(self) -> Iterator[Piece]:
        batches, seconds = self.engine.reading
        for batch in range(batches):
            if self.interrupted.wait(seconds):
                return
            if self.on_prompt is not None:
                self.on_prompt(512 * (batch + 1), 512 * batches)
        for char in self.text:
            if self.engine.delay:
                time.sleep(self.engine.delay)
            yield Piece(char)
        self.ended = True

    def finish(self, completion: Completion) -> None:
        if completion.finish_reason == "cancelled":
            self.engine._cut = self.text
