"""Self-consistency: the answer most of K sampled solutions reach.

K solutions to the same question are sampled (:class:`VotingTurn` runs them, each on
its own copy of the conversation and, in TIR mode, its own fresh interpreter); each
one's final answer (its last ``\\boxed{}``, :mod:`qwenchat.answer`) is normalised so
that ``1,000``, ``1000.0`` and ``$1000`` count as one answer, and ``\\frac{1}{2}``
as ``0.5``; the most common wins.

- A sample without an answer (no ``\\boxed{}``, cut short, or a loop that ended it)
  does not vote; when none answered there is no answer.
- A tie goes to the tied answer that was reached first (the lowest sample number),
  so the same samples always give the same winner.

Written here rather than taken from a library: the one that does LaTeX answer
equivalence well (``math-verify``) pulls in an ANTLR parser for what is, for grade
school answers, a few lines of number normalising.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from fractions import Fraction

from pydantic import BaseModel

from qwenchat.agent import Event, Notice, TextDelta, Turn
from qwenchat.chatml import Message, Segment
from qwenchat.config import Sampling
from qwenchat.engine.base import Constraint, Engine, EngineInfo, Generation, PromptProgress
from qwenchat.engine.kvcache import KVCache
from qwenchat.tir import TirTurn
from qwenchat.turn import SampleReply, TurnResult, sum_timings, sum_usage

_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_FRAC = re.compile(r"^(-?)\\d?frac\{([^{}]+)\}\{([^{}]+)\}$")
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)$")
_THOUSANDS = re.compile(r"(?<=\d)[,\s](?=\d{3}\b)|(?<=\d)\\,(?=\d{3}\b)|(?<=\d)\{,\}(?=\d{3}\b)")
_UNITS_AFTER = re.compile(r"^(-?[\d.,]+)\s*[a-zA-Z][a-zA-Z\s]*$")
_NAMED = re.compile(r"^[a-zA-Z]\w*\s*=\s*")  # "x = 5"

SAMPLE_TEMPERATURE = Sampling().temperature
"""What samples are drawn at when the chat's temperature is 0 (Qwen2.5's recommended
0.7): at 0 every sample would be the same."""


class Vote(BaseModel):
    """The outcome of one vote."""

    answer: str | None
    """The winning answer as its first sample wrote it, or None when no sample answered."""
    votes: int
    """How many samples gave the winning answer."""
    samples: int
    """How many samples were drawn (those without an answer included)."""
    winner: int | None
    """The number (0-based) of the first sample that gave the winning answer."""

    def agreement(self) -> str:
        """``3/4 samples agree``, or that none answered."""
        if self.answer is None:
            return f"none of {self.samples} samples gave an answer"
        return f"{self.votes}/{self.samples} samples agree"


def normalise(answer: str) -> str:
    """The form two answers are compared in: numbers as exact fractions in lowest terms
    (``1,000`` = ``1000.0`` = ``$1000`` = ``1000 dollars``; ``\\frac{1}{2}`` = ``0.5``;
    ``50\\%`` = ``50``), anything else without spaces, ``$`` and ``\\text{}`` wrappers, in
    lower case."""
    text = _WRAPPERS.sub(r"\1", answer.strip())
    text = text.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "")
    text = text.replace("\\!", "").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _NAMED.sub("", _THOUSANDS.sub("", text)).strip().rstrip(".")
    units = _UNITS_AFTER.match(text)  # "18 dollars", "5 km": the number is the answer
    if units is not None:
        text = units.group(1).replace(",", "")
    value = _as_number(text)
    if value is not None:
        return str(value)
    return re.sub(r"\s+", "", text).lower()


def _as_number(text: str) -> Fraction | None:
    frac = _FRAC.match(text)
    if frac is not None:
        sign, top, bottom = frac.groups()
        numerator, denominator = _as_number(top), _as_number(bottom)
        if numerator is None or denominator in (None, 0):
            return None
        return (-1 if sign else 1) * numerator / denominator  # type: ignore[operator]
    if text.count("/") == 1:
        top, bottom = (part.strip() for part in text.split("/"))
        if _NUMBER.match(top) and _NUMBER.match(bottom) and Fraction(bottom) != 0:
            return Fraction(top) / Fraction(bottom)
    if _NUMBER.match(text):
        return Fraction(text)
    return None


def tally(answers: list[str | None]) -> Vote:
    """The vote of samples whose answers, in sample order, are ``answers``."""
    keys = [normalise(a) if a is not None and a.strip() else None for a in answers]
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return Vote(answer=None, votes=0, samples=len(answers), winner=None)
    most = max(counts.values())
    winner = next(i for i, k in enumerate(keys) if k is not None and counts[k] == most)
    return Vote(answer=answers[winner], votes=most, samples=len(answers), winner=winner)


StartSample = Callable[[Engine, list[Message], Sampling, ExitStack], Turn | TirTurn]
"""Makes the turn of one sample on the engine given, over its own copy of the
conversation, with that sample's sampling; what it opens for the sample (a sandbox) it
registers on the stack, which is closed when the vote ends."""


class _SharedFirst:
    """The samples' first replies, asked of the engine together
    (:meth:`~qwenchat.engine.base.Engine.generate_batch`): every sample's first prompt is
    the same conversation, so the engine can evaluate it once and decode the K replies
    in one batch."""

    def __init__(self, engine: Engine, samplings: list[Sampling]) -> None:
        self.engine = engine
        self.samplings = samplings
        self._key: tuple[tuple[Segment, ...], tuple[str, ...]] | None = None
        self._generations: list[Generation] = []

    def first(self, prompt: list[Segment], stop: Sequence[str], number: int) -> Generation | None:
        """Sample ``number``'s first reply, or None if its prompt is not the shared one."""
        key = (tuple(prompt), tuple(stop))
        if self._key is None:
            self._key = key
            self._generations = self.engine.generate_batch(prompt, self.samplings, stop=stop)
        return self._generations[number] if key == self._key else None

    def cancel(self) -> None:
        """Stop every first reply (a server's requests in flight too)."""
        for generation in self._generations:
            generation.cancel()


class _SampleEngine:
    """The engine as one sample sees it: its first reply (without banned tokens or a
    grammar, as TIR and plain replies are) comes from the shared batch, the rest as
    usual."""

    def __init__(self, shared: _SharedFirst, number: int) -> None:
        self._shared = shared
        self._engine = shared.engine
        self._number = number
        self._first = True

    @property
    def model_name(self) -> str:
        return self._engine.model_name

    @property
    def n_ctx(self) -> int:
        return self._engine.n_ctx

    def count_tokens(self, prompt: list[Segment]) -> int:
        return self._engine.count_tokens(prompt)

    def info(self) -> EngineInfo:
        return self._engine.info()

    def use_kv_cache(self, cache: KVCache) -> bool:
        return self._engine.use_kv_cache(cache)

    @property
    def on_prompt(self) -> PromptProgress | None:
        return self._engine.on_prompt

    def score(self, prompts: Sequence[list[Segment]], continuation: str) -> list[float] | None:
        return self._engine.score(prompts, continuation)

    def generate(
        self,
        prompt: list[Segment],
        sampling: Sampling,
        *,
        banned: Sequence[str] = (),
        stop: Sequence[str] = (),
        constraint: Constraint | None = None,
    ) -> Generation:
        first, self._first = self._first, False
        if first and not banned and constraint is None:
            generation = self._shared.first(prompt, stop, self._number)
            if generation is not None:
                return generation
        return self._engine.generate(
            prompt, sampling, banned=banned, stop=stop, constraint=constraint
        )

    def generate_batch(
        self, prompt: list[Segment], samplings: Sequence[Sampling], *, stop: Sequence[str] = ()
    ) -> list[Generation]:
        return self._engine.generate_batch(prompt, samplings, stop=stop)


class VotingTurn:
    """One user turn answered by the vote of ``k`` sampled runs (:func:`tally`).

    Each sample is a whole turn (a TIR run with its code, or one chain-of-thought reply)
    on a copy of the conversation, at the chat's sampling with its own seed (the chat's
    seed plus the sample's number, so a seeded vote is reproducible). The samples' first
    replies are asked of the engine together (``generate_batch``: the llama.cpp engine
    evaluates the prompt once and decodes them in one batch); later rounds of a TIR
    sample (after its code ran) are ordinary replies. The conversation gets the first
    sample that reached the winning answer; all are in :attr:`TurnResult.sample_replies`.
    While samples run, a notice per sample says what it answered; the winner's text
    comes at the end, then the agreement.
    """

    def __init__(
        self,
        engine: Engine,
        messages: list[Message],
        sampling: Sampling,
        k: int,
        start: StartSample,
    ) -> None:
        if k < 2:
            raise ValueError("a vote needs at least two samples")
        self.engine = engine
        self.messages = messages
        self.sampling = sampling
        self.k = k
        self.start = start
        self.result: TurnResult | None = None
        self._current: Turn | TirTurn | None = None
        self._shared: _SharedFirst | None = None
        self._cancelled = False

    def cancel(self) -> None:
        """Stop the running sample within one token, and every other sample's first
        reply, and draw no more (any thread)."""
        self._cancelled = True
        if self._shared is not None:
            self._shared.cancel()
        if self._current is not None:
            self._current.cancel()

    def samplings(self) -> list[Sampling]:
        """Each sample's sampling: its own seed, and never temperature 0."""
        base = self.sampling.seed if self.sampling.seed is not None else random.randrange(2**31)
        temperature = self.sampling.temperature or SAMPLE_TEMPERATURE
        return [
            self.sampling.model_copy(update={"seed": base + i, "temperature": temperature})
            for i in range(self.k)
        ]

    def __iter__(self) -> Iterator[Event]:
        if self.sampling.temperature == 0:
            yield Notice(f"samples are drawn at temperature {SAMPLE_TEMPERATURE}, not 0")
        runs: list[tuple[list[Message], TurnResult]] = []
        samplings = self.samplings()
        self._shared = shared = _SharedFirst(self.engine, samplings)
        with ExitStack() as stack:
            for number, sampling in enumerate(samplings, 1):
                if self._cancelled:
                    break
                messages = list(self.messages)
                engine = _SampleEngine(shared, number - 1)
                self._current = turn = self.start(engine, messages, sampling, stack)
                for event in turn:
                    if isinstance(event, Notice):
                        yield Notice(f"sample {number}/{self.k}: {event.text}")
                assert turn.result is not None
                if turn.result.finish_reason == "cancelled":
                    break
                runs.append((messages, turn.result))
                said = turn.result.answer if turn.result.answer is not None else "no answer"
                yield Notice(f"sample {number}/{self.k}: {said}")
        yield from self._finish(runs)

    def _finish(self, runs: list[tuple[list[Message], TurnResult]]) -> Iterator[Event]:
        results = [result for _, result in runs]
        vote = tally([r.answer for r in results])
        if not runs:  # cancelled during the first sample: nothing to show
            self.result = TurnResult(
                text="",
                finish_reason="cancelled",
                rounds=0,
                usage=sum_usage([]),
                timings=sum_timings([]),
                tool_calls=[],
                votes=0,
                samples=0,
            )
            return
        chosen = vote.winner if vote.winner is not None else 0
        messages, winner = runs[chosen]  # no answer at all: the first sample's text
        self.messages.extend(messages[len(self.messages) :])
        yield TextDelta(winner.text)
        yield Notice(vote.agreement())
        self.result = TurnResult(
            text=winner.text,
            finish_reason="cancelled" if self._cancelled else winner.finish_reason,
            rounds=sum(r.rounds for r in results),
            usage=sum_usage(results),
            timings=sum_timings(results),
            tool_calls=winner.tool_calls,
            answer=vote.answer,
            votes=vote.votes,
            samples=vote.samples,
            sample_replies=[SampleReply(text=r.text, answer=r.answer) for r in results],
        )
