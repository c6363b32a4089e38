"""What every kind of turn shares: the generation running now, stopped from any thread,
and the :class:`TurnResult` a turn ends with, summed over its generations.

The tool loop (:class:`qwenchat.agent.Turn`) and tool-integrated reasoning
(:class:`qwenchat.tir.TirTurn`) are :class:`GenerationTurn` s; a vote
(:mod:`qwenchat.vote`) runs several of them and combines their results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from qwenchat.chatml import CallStatus
from qwenchat.engine.base import Completion, FinishReason, Generation, Timings, Usage


class ToolCallRecord(BaseModel):
    """What happened to one tool call, for the UI and ``ask --json``."""

    id: str
    name: str
    arguments: Any
    status: CallStatus
    result: str
    duration_s: float = 0.0


def sum_usage(completions: Sequence[Completion | TurnResult]) -> Usage:
    return Usage(
        prompt_tokens=sum(c.usage.prompt_tokens for c in completions),
        cached_tokens=sum(c.usage.cached_tokens for c in completions),
        completion_tokens=sum(c.usage.completion_tokens for c in completions),
    )


def sum_timings(completions: Sequence[Completion | TurnResult]) -> Timings:
    decoded = sum(c.usage.completion_tokens for c in completions)
    decode_time = sum(
        c.usage.completion_tokens / c.timings.decode_tokens_per_s
        for c in completions
        if c.timings.decode_tokens_per_s > 0
    )
    return Timings(
        ttft_s=completions[0].timings.ttft_s if completions else 0.0,
        decode_tokens_per_s=decoded / decode_time if decode_time > 0 else 0.0,
        total_s=sum(c.timings.total_s for c in completions),
    )


class SampleReply(BaseModel):
    """One sample of a voted turn (:mod:`qwenchat.vote`)."""

    text: str
    answer: str | None


class TurnResult(BaseModel):
    """The outcome of one user turn: the final reply's text and everything it took."""

    text: str
    finish_reason: FinishReason
    rounds: int
    usage: Usage
    timings: Timings
    tool_calls: list[ToolCallRecord]
    answer: str | None = None
    """The last ``\\boxed{...}`` in the model's own prose, if any (TIR and math prompts
    ask for one; :func:`qwenchat.answer.final_answer`)."""
    fallback: bool = False
    """The text is a tool's result, shown because the model would not answer from it."""
    votes: int | None = None
    """A voted turn (:mod:`qwenchat.vote`): how many samples gave :attr:`answer`."""
    samples: int | None = None
    """A voted turn: how many samples were drawn."""
    sample_replies: list[SampleReply] = []
    """A voted turn: every sample's reply, in order (:attr:`text` is the winner's)."""


class GenerationTurn:
    """A turn that runs one generation at a time: :meth:`cancel` stops the one running
    within a token and lets no other start; :meth:`_result` sums the turn's."""

    def __init__(self) -> None:
        self.result: TurnResult | None = None
        self._generation: Generation | None = None
        self._cancelled = False

    def cancel(self) -> None:
        """Stop the current reply within one token and start no other (any thread)."""
        self._cancelled = True
        if self._generation is not None:
            self._generation.cancel()

    def _result(
        self,
        text: str,
        completions: Sequence[Completion],
        records: list[ToolCallRecord],
        answer: str | None,
        *,
        fallback: bool = False,
    ) -> TurnResult:
        return TurnResult(
            text=text,
            finish_reason="cancelled" if self._cancelled else completions[-1].finish_reason,
            rounds=len(completions),
            usage=sum_usage(completions),
            timings=sum_timings(completions),
            tool_calls=records,
            answer=answer,
            fallback=fallback,
        )
