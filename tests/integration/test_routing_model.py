"""Tool routing on the real 0.5B model: the likelihoods it gives a question under each
tool's prompt (engine.score), and the loop's first call going to the tool they favour."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from qwenchat.chatml import UserMessage, render_segments
from qwenchat.config import Sampling
from qwenchat.engine.llama import LlamaEngine
from qwenchat.routing import better_tool, prompt_for
from qwenchat.tools import load_tools

pytestmark = pytest.mark.model

TOOLSETS = Path(__file__).resolve().parents[2] / "bench" / "toolsets"


@pytest.fixture(scope="module")
def engine(test_model_path: Path) -> LlamaEngine:
    return LlamaEngine(test_model_path, n_ctx=2048)


def test_a_score_is_the_same_from_the_cache_and_after_a_vote_cleared_it(
    engine: LlamaEngine,
) -> None:
    tools = load_tools([TOOLSETS]).registry
    prompts = [prompt_for(tool) for name in tools.names() if (tool := tools.get(name))]
    first = engine.score(prompts, "Is it raining in Porto?")
    again = engine.score(prompts, "Is it raining in Porto?")  # the prompts from the cache
    assert first is not None and again is not None
    assert all(
        a < 0 and math.isclose(a, b, abs_tol=0.05) for a, b in zip(first, again, strict=True)
    )
    other = engine.score(prompts, "Who wrote Salt and Lanterns?")
    assert other is not None and other != first
    question = render_segments([UserMessage(content="Say hi.")])
    for generation in engine.generate_batch(question, [Sampling(max_tokens=4, seed=1)] * 2):
        "".join(generation)  # a vote clears the shared cache
    after = engine.score(prompts, "Is it raining in Porto?")
    assert after is not None
    assert all(math.isclose(a, b, abs_tol=0.05) for a, b in zip(first, after, strict=True))


@pytest.mark.parametrize(
    ("question", "called", "better"),
    [
        ("How much is 250 Swiss francs in Japanese yen today?", "get_weather", "convert_currency"),
        ('In what year was "The Copper Tide" published?', "get_weather", "find_book"),
        ("Where is my package? The order number is Z-0415.", "get_weather", "order_status"),
        ("Is it raining in Porto at the moment?", "get_weather", None),  # right: stands
    ],
)
def test_the_model_says_which_tool_a_question_is_for(
    engine: LlamaEngine, question: str, called: str, better: str | None
) -> None:
    """The calls the 0.5B model itself made for these questions (docs/benchmarks.md)."""
    tools = load_tools([TOOLSETS]).registry
    found = better_tool(engine, tools, question, called)
    assert (found.name if found is not None else None) == better


def test_the_loop_calls_the_tool_the_question_is_for(engine: LlamaEngine) -> None:
    """The 0.5B model's own first call here is get_weather(city="Lima"), the first tool and
    its docstring's example; routed, the call is a currency conversion of 250."""
    from qwenchat.agent import ApprovalPolicy, Notice, Turn

    tools = load_tools([TOOLSETS]).registry
    question = UserMessage(content="How much is 250 Swiss francs in Japanese yen today?")
    turn = Turn(
        engine,
        [question],
        Sampling(temperature=0, max_tokens=200),
        tools=tools,
        policy=ApprovalPolicy(yes=True),
    )
    events = list(turn)
    assert turn.result is not None
    calls = [(r.name, r.arguments) for r in turn.result.tool_calls]
    assert calls and calls[0][0] == "convert_currency" and calls[0][1]["amount"] == 250
    assert "get_weather" not in [name for name, _ in calls]
    assert any(isinstance(e, Notice) and "convert_currency" in e.text for e in events)
