"""Replies decoded together in one llama.cpp batch (a vote's samples), on the real
0.5B model: judged against the engine's ordinary, one-at-a-time replies."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwenchat.chatml import SystemMessage, UserMessage, render_segments
from qwenchat.config import Sampling
from qwenchat.engine.llama import LlamaEngine

pytestmark = pytest.mark.model

PROMPT = render_segments(
    [
        SystemMessage(
            content="Please reason step by step, and put your final answer in \\boxed{}."
        ),
        UserMessage(content="A box holds 12 eggs. How many eggs are in 7 boxes?"),
    ]
)


@pytest.fixture(scope="module")
def engine(test_model_path: Path) -> LlamaEngine:
    return LlamaEngine(test_model_path, n_ctx=2048)


def texts(engine: LlamaEngine, samplings: list[Sampling], stop: tuple[str, ...] = ()) -> list[str]:
    return ["".join(g) for g in engine.generate_batch(PROMPT, samplings, stop=stop)]


def test_greedy_replies_in_a_batch_are_the_single_greedy_reply(engine: LlamaEngine) -> None:
    greedy = Sampling(temperature=0, max_tokens=48)
    alone = "".join(engine.generate(PROMPT, greedy))
    assert texts(engine, [greedy, greedy, greedy]) == [alone, alone, alone]


def test_seeded_samples_repeat_and_differ_from_each_other(engine: LlamaEngine) -> None:
    samplings = [
        Sampling(temperature=1.0, top_p=1.0, top_k=0, seed=s, max_tokens=40) for s in (1, 2, 3)
    ]
    first = texts(engine, samplings)
    assert texts(engine, samplings) == first  # the same seeds draw the same replies
    assert len(set(first)) > 1  # at temperature 1 over the whole vocabulary, they differ


def test_each_reply_ends_on_its_own_stop_string_and_budget(engine: LlamaEngine) -> None:
    samplings = [Sampling(seed=s, max_tokens=64) for s in (4, 5)] + [Sampling(seed=6, max_tokens=5)]
    generations = engine.generate_batch(PROMPT, samplings, stop=("\n",))
    replies = ["".join(g) for g in generations]
    for reply, generation in zip(replies[:2], generations[:2], strict=True):
        assert generation.result is not None
        # The token that completes the stop string is kept whole ("\n\n" is one token).
        assert reply.endswith("\n") and "\n" not in reply.rstrip("\n")
        assert generation.result.stop_sequence == "\n"
    short = generations[2].result
    assert short is not None and short.usage.completion_tokens <= 5
    assert short.finish_reason in ("length", "stop")


def test_a_stopped_reply_leaves_the_others_whole(engine: LlamaEngine) -> None:
    greedy = Sampling(temperature=0, max_tokens=40)
    alone = "".join(engine.generate(PROMPT, greedy))
    first, second = engine.generate_batch(PROMPT, [greedy, greedy])
    for n, _ in enumerate(first):
        if n == 3:
            first.cancel()
    assert first.result is not None and first.result.finish_reason == "cancelled"
    assert "".join(second) == alone
    # And the engine's own context still answers as before.
    assert "".join(engine.generate(PROMPT, greedy)) == alone
