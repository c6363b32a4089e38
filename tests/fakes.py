"""A scripted engine for tests of everything above the engine (no model needed)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from qwenchat.chatml import Segment
from qwenchat.config import Sampling
from qwenchat.engine.base import Clock, Completion, Constraint, Generation, StopStrings, Usage


class ScriptedEngine:
    """Replies with the scripted texts in order, one character per "token".

    Records each prompt (as text), each reply's banned tokens, stop strings and
    constraint (which it does not enforce: the script is the model).
    A reply cut short by a cancel and then continued (the prompt ends with the part
    it wrote) goes on with the rest of its script.
    ``delay``: seconds to wait before each "token" (0: none), for tests that need a
    reply to be still running, e.g. to stop it.
    """

    model_name = "scripted"
    n_ctx = 4096

    def __init__(self, replies: list[str], *, delay: float = 0.0) -> None:
        self.replies = list(replies)
        self.delay = delay
        self.prompts: list[str] = []
        self.segments: list[list[Segment]] = []
        self.banned: list[tuple[str, ...]] = []
        self.stops: list[tuple[str, ...]] = []
        self.constraints: list[Constraint | None] = []
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

    def generate(
        self,
        prompt: list[Segment],
        sampling: Sampling,
        *,
        banned: Sequence[str] = (),
        stop: Sequence[str] = (),
        constraint: Constraint | None = None,
    ) -> Generation:
        self.constraints.append(constraint)
        self.banned.append(tuple(banned))
        self.stops.append(tuple(stop))
        return Generation(lambda gen: self._produce(gen, prompt, sampling, stop))

    def _produce(
        self, gen: Generation, prompt: list[Segment], sampling: Sampling, stop: Sequence[str]
    ) -> Iterator[str]:
        clock = Clock()
        self.prompts.append("".join(seg.text for seg in prompt))
        self.segments.append(list(prompt))
        text = self._next(prompt)[: sampling.max_tokens]
        out = []
        finish = "stop"
        watch = StopStrings(stop)
        hit = None
        for char in text:
            if self.delay:
                time.sleep(self.delay)
            clock.tick()
            out.append(char)
            yield char
            hit = watch.feed(char)
            if hit is not None:
                break
            if gen.cancelled:
                finish = "cancelled"
                break
        if finish == "cancelled":
            self._cut = text
        gen.result = Completion(
            text="".join(out),
            finish_reason=finish,
            usage=Usage(prompt_tokens=self.count_tokens(prompt), completion_tokens=len(out)),
            timings=clock.timings(),
            stop_sequence=hit,
        )
