"""The agent loop over a scripted engine: calls, results, errors, approval, repeats, limits."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from qwenchat.agent import (
    TECHNIQUES,
    AgentOptions,
    ApprovalPolicy,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    Turn,
)
from qwenchat.chatml import AssistantMessage, Message, ToolCall, ToolMessage, UserMessage
from qwenchat.config import Sampling
from qwenchat.tools import ToolRegistry, tool, tool_from_function
from tests.fakes import ScriptedEngine

RUNS: list[str] = []
ON = AgentOptions()  # every technique of the loop, as by default
OFF = AgentOptions(**dict.fromkeys(TECHNIQUES, False))
"""The loop's mechanics alone, for the tests of those (the techniques have their own)."""


def multiply(a: int, b: int) -> int:
    """Multiply two integers exactly.

    Args:
        a: the first factor
        b: the second factor
    """
    RUNS.append(f"multiply({a},{b})")
    return a * b


@tool(safe=True)
def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order's status.

    Args:
        order_id: the order number, e.g. A-17
    """
    RUNS.append(f"lookup_order({order_id})")
    return {"order_id": order_id, "status": "shipped"}


@tool(safe=True)
def explode(reason: str) -> str:
    """Always fails.

    Args:
        reason: why
    """
    raise RuntimeError(f"boom: {reason}")


def call(name: str, **arguments: object) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def registry() -> ToolRegistry:
    tools = ToolRegistry()
    for func in (multiply, lookup_order, explode):
        tools.add(tool_from_function(func))
    return tools


def run_turn(
    replies: list[str],
    *,
    policy: ApprovalPolicy | None = None,
    options: AgentOptions | None = None,
    history: list[Message] | None = None,
    scores: dict[str, float] | None = None,
) -> tuple[Turn, list[object], ScriptedEngine]:
    RUNS.clear()
    engine = ScriptedEngine(replies, scores=scores)
    messages = history if history is not None else [UserMessage(content="question about A-17")]
    turn = Turn(
        engine,
        messages,
        Sampling(),
        tools=registry(),
        policy=policy or ApprovalPolicy(yes=True),
        options=options or OFF,
    )
    events = list(turn)
    return turn, events, engine


def text_of(events: list[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def records(events: list[object]):
    return [e.record for e in events if isinstance(e, ToolCallFinished)]


def test_a_call_then_an_answer() -> None:
    turn, events, engine = run_turn(
        [call("multiply", a=123456789, b=987654321), "It is 121932631112635269."]
    )
    assert RUNS == ["multiply(123456789,987654321)"]
    assert text_of(events) == "It is 121932631112635269."
    result = turn.messages[2]
    assert isinstance(result, ToolMessage) and result.duration_s is not None
    assert turn.messages[1:] == [
        AssistantMessage(
            tool_calls=[ToolCall(name="multiply", arguments={"a": 123456789, "b": 987654321})]
        ),
        ToolMessage(
            content="121932631112635269",
            name="multiply",
            tool_call_id="call_1",
            status="ok",  # kept with the result, so that a stored session shows it
            duration_s=result.duration_s,
        ),
        AssistantMessage(content="It is 121932631112635269."),
    ]
    # The second prompt carries the tools block and the result as a <tool_response>.
    second = engine.starts()[1][0]
    assert "<tools>" in second
    assert (
        "<|im_start|>user\n<tool_response>\n121932631112635269\n</tool_response><|im_end|>"
        in second
    )
    assert turn.result is not None and turn.result.rounds == 2
    assert [r.status for r in turn.result.tool_calls] == ["ok"]


def test_started_event_precedes_the_result() -> None:
    _, events, _ = run_turn([call("lookup_order", order_id="A-1"), "Shipped."])
    kinds = [type(e).__name__ for e in events if not isinstance(e, TextDelta)]
    assert kinds == ["ToolCallStarted", "ToolCallFinished"]
    started = next(e for e in events if isinstance(e, ToolCallStarted))
    assert started.arguments == {"order_id": "A-1"}


def test_text_before_the_call_is_shown_and_kept() -> None:
    turn, events, _ = run_turn(
        ["Let me check. " + call("lookup_order", order_id="A-1"), "Shipped."]
    )
    assert text_of(events) == "Let me check. Shipped."
    assert turn.messages[1] == AssistantMessage(
        content="Let me check.",
        tool_calls=[ToolCall(name="lookup_order", arguments={"order_id": "A-1"})],
    )


def test_parallel_calls_all_run_and_answer_in_order() -> None:
    turn, _events, _ = run_turn(
        [call("multiply", a=2, b=3) + "\n" + call("multiply", a=4, b=5), "6 and 20"]
    )
    assert sorted(RUNS) == ["multiply(2,3)", "multiply(4,5)"]
    assert [m.content for m in turn.messages if isinstance(m, ToolMessage)] == ["6", "20"]


def test_bare_json_call_is_run() -> None:
    bare = '{"name": "lookup_order", "arguments": {"order_id": "B-2"}}'
    _, events, _ = run_turn([bare, "Order B-2 has shipped."])
    assert RUNS == ["lookup_order(B-2)"]
    assert text_of(events) == "Order B-2 has shipped."


def test_bare_json_fallback_can_be_switched_off() -> None:
    bare = '{"name": "lookup_order", "arguments": {"order_id": "B-2"}}'
    _, events, _ = run_turn([bare], options=AgentOptions(bare_json=False))
    assert RUNS == [] and text_of(events) == bare


def test_tool_error_goes_back_to_the_model() -> None:
    turn, events, _ = run_turn([call("explode", reason="x"), "Sorry, it failed."])
    (record,) = records(events)
    assert record.status == "error" and record.result == "Error: RuntimeError: boom: x"
    assert text_of(events) == "Sorry, it failed."
    assert turn.result is not None and turn.result.finish_reason == "stop"


def test_invalid_arguments_let_the_model_retry() -> None:
    _turn, events, _engine = run_turn(
        [call("multiply", a="many", b=2), call("multiply", a=3, b=2), "6"]
    )
    first, second = records(events)
    assert first.status == "invalid" and first.result.startswith(
        "Error: invalid arguments for multiply"
    )
    assert second.status == "ok" and second.result == "6"
    assert RUNS == ["multiply(3,2)"]


def test_unknown_tool_lists_the_available_ones() -> None:
    _, events, _ = run_turn([call("weather", city="Paris"), "I cannot."])
    (record,) = records(events)
    assert record.status == "unknown"
    assert record.result == (
        "Error: there is no tool named 'weather'. Available tools: multiply, lookup_order, explode."
    )


def test_garbage_block_becomes_an_error_result() -> None:
    _, events, _ = run_turn(["<tool_call>this is not json</tool_call>", "ok"])
    (record,) = records(events)
    assert record.status == "invalid" and record.result.startswith("Error: ")


def test_unsafe_tool_is_refused_without_approval() -> None:
    _turn, events, _ = run_turn(
        [call("multiply", a=2, b=2), "I was not allowed."], policy=ApprovalPolicy()
    )
    (record,) = records(events)
    assert record.status == "denied" and RUNS == []
    assert "did not approve" in record.result


def test_safe_tool_runs_without_approval() -> None:
    _, events, _ = run_turn([call("lookup_order", order_id="C"), "ok"], policy=ApprovalPolicy())
    assert [r.status for r in records(events)] == ["ok"]


def test_allow_list_approves_by_name() -> None:
    _, events, _ = run_turn(
        [call("multiply", a=2, b=2), "4"], policy=ApprovalPolicy(allow={"multiply"})
    )
    assert [r.status for r in records(events)] == ["ok"]


@pytest.mark.parametrize(("answer", "runs"), [("once", 2), ("always", 2), ("deny", 0)])
def test_approver_answers(answer: Literal["once", "always", "deny"], runs: int) -> None:
    asked: list[str] = []

    def ask(tool, arguments):  # type: ignore[no-untyped-def]
        asked.append(tool.name)
        return answer

    policy = ApprovalPolicy(ask=ask)
    run_turn([call("multiply", a=1, b=2), call("multiply", a=3, b=4), "done"], policy=policy)
    assert len(RUNS) == runs
    assert len(asked) == (1 if answer == "always" else 2)


def test_identical_repeat_is_dropped_and_the_answer_asked_without_tools() -> None:
    again = call("lookup_order", order_id="A-17")
    turn, events, engine = run_turn([again, again, "Order A-17 has shipped."])
    assert RUNS == ["lookup_order(A-17)"]
    assert [r.status for r in records(events)] == ["ok", "repeated"]
    starts = engine.starts()
    assert [banned for _, banned in starts] == [(), (), ("<tool_call>",)]
    assert "<tools>" in starts[1][0] and "<tools>" not in starts[2][0]
    assert text_of(events) == "Order A-17 has shipped."
    # The repeat left no trace in the conversation.
    assert [type(m).__name__ for m in turn.messages] == [
        "UserMessage",
        "AssistantMessage",
        "ToolMessage",
        "AssistantMessage",
    ]
    assert turn.result is not None and turn.result.rounds == 3


def test_a_repeat_among_new_calls_gets_the_earlier_result() -> None:
    first = call("lookup_order", order_id="A-17")
    both = first + call("multiply", a=2, b=3)
    _turn, events, engine = run_turn([first, both, "done"])
    assert RUNS == ["lookup_order(A-17)", "multiply(2,3)"]
    repeat = records(events)[1]
    assert repeat.status == "repeated"
    assert repeat.result.startswith('{"order_id": "A-17", "status": "shipped"}')
    assert "Do not call it again" in repeat.result
    assert [banned for _, banned in engine.starts()] == [(), (), ()]


def test_a_second_repeat_asks_for_an_answer_from_the_results_as_facts() -> None:
    again = call("lookup_order", order_id="A-17")
    bare = '{"name": "lookup_order", "arguments": {"order_id": "A-17"}}'
    turn, events, engine = run_turn([again, again, bare, "Order A-17 has shipped."], options=ON)
    assert RUNS == ["lookup_order(A-17)"]
    # The last prompt: a system prompt holding the result as facts, then the question alone.
    last = engine.prompts[-1]
    assert "- lookup_order: order_id: A-17; status: shipped" in last
    assert "<tools>" not in last and "<tool_response>" not in last
    assert last.count("<|im_start|>user") == 1
    assert text_of(events) == "Order A-17 has shipped."
    assert turn.messages[-1] == AssistantMessage(content="Order A-17 has shipped.")
    assert turn.result is not None and not turn.result.fallback and turn.result.rounds == 4


def test_when_even_the_facts_get_no_answer_the_result_is_shown_a_line_per_field() -> None:
    again = call("lookup_order", order_id="A-17")
    bare = '{"name": "lookup_order", "arguments": {"order_id": "A-17"}}'
    turn, events, engine = run_turn(
        [again, again, bare, '```json\n{"status": "shipped"}\n```'], options=ON
    )
    answer = "order_id: A-17\nstatus: shipped"
    assert [e.text for e in events if isinstance(e, Notice)] == [
        "the model did not answer from the lookup_order result; the result:"
    ]
    assert text_of(events) == answer  # the facts reply, not prose, was never shown
    assert turn.messages[-1] == AssistantMessage(content=answer)
    assert turn.result is not None and turn.result.fallback and turn.result.text == answer
    assert not engine.replies


def test_an_answer_that_echoes_the_result_markup_is_asked_again_from_facts() -> None:
    echo = '<tool_response>\n{"order_id": "A-17", "status": "shipped"}\n</tool_response>'
    turn, events, _engine = run_turn(
        [call("lookup_order", order_id="A-17"), echo, "It has shipped."], options=ON
    )
    assert "the model did not answer from the results; asking again" in [
        e.text for e in events if isinstance(e, Notice)
    ]
    assert turn.result is not None and turn.result.text == "It has shipped."
    assert "<tool_response>" not in str(turn.messages[-1].content)


def test_readable_shows_fields_and_leaves_other_results_alone() -> None:
    from qwenchat.agent import readable

    assert readable('{"a": 1, "b": "x", "c": [1, 2]}') == "a: 1\nb: x\nc: [1, 2]"
    assert readable("42\n") == "42"
    assert readable("[1, 2]") == "[1, 2]"


def test_repeat_guard_can_be_switched_off() -> None:
    again = call("lookup_order", order_id="A-17")
    run_turn([again, again, "done"], options=OFF.model_copy(update={"repeat_guard": False}))
    assert RUNS == ["lookup_order(A-17)", "lookup_order(A-17)"]


def test_round_limit_stops_with_a_notice() -> None:
    replies = [call("multiply", a=i, b=i) for i in range(3)]
    turn, events, _ = run_turn(replies, options=AgentOptions(max_rounds=3))
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert notices == ["stopped after 3 rounds of tool calls without a final answer"]
    assert len(RUNS) == 3 and turn.result is not None and turn.result.rounds == 3


def test_without_tools_tool_markup_is_plain_text() -> None:
    engine = ScriptedEngine([call("multiply", a=1, b=2)])
    turn = Turn(engine, [UserMessage(content="q")], Sampling())
    events = list(turn)
    assert "<tools>" not in engine.prompts[0]
    assert turn.result is not None and turn.result.tool_calls == []
    assert text_of(events) == call("multiply", a=1, b=2)
    assert turn.messages[-1] == AssistantMessage(content=call("multiply", a=1, b=2))


def test_a_call_opening_is_continued_under_the_call_grammar() -> None:
    bare = '```json\n{"name": "lookup_order", "arguments": {"order_id": "A-17"}}\n```'
    turn, _events, engine = run_turn([bare, "It has shipped."], options=ON)
    assert RUNS == ["lookup_order(A-17)"]
    # Cut right after the opening, continued from exactly that text with the grammar.
    assert engine.prompts[1].endswith('<|im_start|>assistant\n```json\n{"name"')
    assert engine.constraints[0] is None
    grammar = engine.constraints[1]
    assert grammar is not None
    assert '"\\"lookup_order\\""' in grammar.gbnf and '"\\"multiply\\""' in grammar.gbnf
    assert grammar.gbnf.startswith('root ::= space ":" space (')
    assert engine.constraints[2] is None  # the answer round is free
    assert turn.result is not None and turn.result.text == "It has shipped."


def test_prose_is_never_constrained_and_switching_it_off_works() -> None:
    text = 'Use {"name": "x"} as the body.'  # an object, but not at the start: prose
    _turn, _events, engine = run_turn([text], options=ON)
    assert engine.constraints == [None] and len(engine.prompts) == 1
    RUNS.clear()
    again = call("lookup_order", order_id="A-17")
    _turn, _events, engine = run_turn(
        [again, "A-17 has shipped."], options=ON.model_copy(update={"constrained_calls": False})
    )
    assert engine.constraints == [None, None] and RUNS == ["lookup_order(A-17)"]


def test_cancel_stops_after_the_current_reply() -> None:
    RUNS.clear()
    engine = ScriptedEngine([call("multiply", a=5, b=5), "never"])
    turn = Turn(
        engine,
        [UserMessage(content="q")],
        Sampling(),
        tools=registry(),
        policy=ApprovalPolicy(yes=True),
    )
    for _event in turn:
        turn.cancel()
    assert turn.result is not None and turn.result.finish_reason == "cancelled"
    assert RUNS == [] and len(engine.starts()) == 1


def test_a_docstring_example_copied_as_an_argument_is_made_again_without_it() -> None:
    """lookup_order's docstring says "e.g. A-17"; the user asked about B-40."""
    guard = OFF.model_copy(update={"example_guard": True})
    copied = call("lookup_order", order_id="A-17")
    rest = '{"name": "lookup_order", "arguments": {"order_id": "%s"}}\n</tool_call>'
    _, events, engine = run_turn(
        [copied, rest % "B-40", "B-40 has shipped."],
        options=guard,
        history=[UserMessage(content="Where is my order B-40?")],
    )
    assert RUNS == ["lookup_order(B-40)"]  # the copy never ran
    notice = next(e.text for e in events if isinstance(e, Notice))
    assert "'A-17'" in notice and "order_id" in notice
    # The round again from a call opening, the argument one of the user's phrases.
    assert engine.prompts[1].endswith("<|im_start|>assistant\n<tool_call>\n")
    grammar = engine.constraints[1]
    assert grammar is not None and '"\\"B-40\\""' in grammar.gbnf
    assert "A-17" not in grammar.gbnf
    assert text_of(events) == "B-40 has shipped."
    # A model that writes it again all the same (an engine without grammars) gets it run.
    run_turn(
        [copied, rest % "A-17", "Done."],
        options=guard,
        history=[UserMessage(content="Where is my last order?")],
    )
    assert RUNS == ["lookup_order(A-17)"]
    # The user's own value is never taken for a copy; without the option nothing is checked.
    run_turn([copied, "A-17 shipped."], options=guard, history=[UserMessage(content="A-17?")])
    assert RUNS == ["lookup_order(A-17)"]
    run_turn([copied, "A-17 shipped."], history=[UserMessage(content="my order?")])
    assert RUNS == ["lookup_order(A-17)"]


def test_a_copy_among_several_calls_is_sent_back_with_an_error() -> None:
    guard = OFF.model_copy(update={"example_guard": True})
    both = call("lookup_order", order_id="A-17") + "\n" + call("multiply", a=2, b=3)
    _, events, _ = run_turn(
        [both, "6, and B-40 is unknown."],
        options=guard,
        history=[UserMessage(content="Where is my order B-40, and what is 2 times 3?")],
    )
    assert RUNS == ["multiply(2,3)"]
    first = records(events)[0]
    assert first.status == "invalid" and "'A-17' is the example" in first.result
    assert "order_id" in first.result and "again" in first.result


def test_prose_answers_constrain_the_answer_round_and_the_facts_answer() -> None:
    from qwenchat.callgrammar import PROSE

    again = call("lookup_order", order_id="A-17")
    prose = OFF.model_copy(update={"prose_answers": True, "answer_from_facts": True})
    _, _, engine = run_turn([again, again, "Order A-17 has shipped."], options=prose)
    assert engine.constraints == [None, None, PROSE]  # only the round that must answer
    _, _, engine = run_turn([again, again, again, "It shipped."], options=prose)
    assert engine.constraints == [None, None, PROSE, PROSE]  # and the answer from facts
    _, _, engine = run_turn([again, again, "Order A-17 has shipped."])
    assert engine.constraints == [None, None, None]  # off unless asked for


def test_an_answer_that_states_nothing_from_the_results_is_asked_again_from_facts() -> None:
    first = call("lookup_order", order_id="A-17")
    turn, _, engine = run_turn(
        [first, "I'm sorry, I can't help with that.", "Order A-17 has shipped."], options=ON
    )
    assert "- lookup_order: order_id: A-17; status: shipped" in engine.prompts[-1]
    assert turn.messages[-1] == AssistantMessage(content="Order A-17 has shipped.")
    # Without the facts answer to turn to, the model's reply stands.
    turn, _, _ = run_turn([first, "I'm sorry, I can't help with that."])
    assert turn.messages[-1] == AssistantMessage(content="I'm sorry, I can't help with that.")


def test_an_answer_with_json_inside_is_asked_again_from_facts() -> None:
    first = call("lookup_order", order_id="A-17")
    echo = 'Here is the response:\n\n{"order_id": "A-17", "status": "shipped"}'
    turn, _, engine = run_turn([first, echo, "Order A-17 has shipped."], options=ON)
    assert "- lookup_order: order_id: A-17; status: shipped" in engine.prompts[-1]
    assert turn.messages[-1] == AssistantMessage(content="Order A-17 has shipped.")


def test_an_answer_with_code_the_user_asked_for_stands() -> None:
    first = call("lookup_order", order_id="A-17")
    code = "A-17 has shipped. In Python:\n\n```python\nprint('shipped')\n```"
    turn, _, engine = run_turn([first, code], options=ON)
    assert turn.messages[-1] == AssistantMessage(content=code)
    assert len(engine.starts()) == 2 and "Facts:" not in engine.prompts[-1]  # no facts round


def test_a_described_call_is_made_from_an_opening_that_names_the_tool() -> None:
    described = "You can use the `lookup_order` function with order_id set to B-40."
    rest = '{"name": "lookup_order", "arguments": {"order_id": "B-40"}}\n</tool_call>'
    turn, events, engine = run_turn(
        [described, rest, "B-40 has shipped."],
        options=OFF.model_copy(update={"described_calls": True}),
        history=[UserMessage(content="Where is my order B-40?")],
    )
    assert RUNS == ["lookup_order(B-40)"]
    assert any(isinstance(e, Notice) and "lookup_order" in e.text for e in events)
    # The round again, from the opening, under the grammar of that one tool.
    assert engine.prompts[1].endswith("<|im_start|>assistant\n<tool_call>\n")
    grammar = engine.constraints[1]
    assert grammar is not None and '"\\"lookup_order\\""' in grammar.gbnf
    assert '"\\"multiply\\""' not in grammar.gbnf
    # The description never enters the conversation; the call does.
    assert all(described not in str(m) for m in turn.messages)
    assert turn.messages[1] == AssistantMessage(
        tool_calls=[ToolCall(name="lookup_order", arguments={"order_id": "B-40"})]
    )
    assert turn.result is not None and turn.result.text == "B-40 has shipped."


@pytest.mark.parametrize(
    ("question", "reply"),
    [
        ("How do I call `lookup_order`?", "Call `lookup_order` with the order id."),
        ("Which tool?", "Either `lookup_order` or the multiply function."),
        ("Hi", "A calculator would multiply them; lookup_order is a word here."),
    ],
)
def test_a_reply_that_names_no_one_tool_or_the_users_tool_stands(question: str, reply: str) -> None:
    turn, _events, engine = run_turn([reply], options=ON, history=[UserMessage(content=question)])
    assert len(engine.prompts) == 1 and RUNS == []
    assert turn.result is not None and turn.result.text == reply


def test_a_described_call_is_made_once_per_turn() -> None:
    described = "Use `explode(reason)`."
    rest = '{"name": "explode", "arguments": {"reason": "x"}}\n</tool_call>'
    turn, events, engine = run_turn(
        [described, rest, described],
        options=OFF.model_copy(update={"described_calls": True}),
        history=[UserMessage(content="Go.")],
    )
    # The call failed, and it describes it again: that reply is the answer.
    assert [r.status for r in records(events)] == ["error"] and len(engine.prompts) == 3
    assert turn.result is not None and turn.result.text == described


def test_with_no_call_that_worked_the_reply_stands_and_no_error_is_shown_as_a_result() -> None:
    reply = 'I could not look it up: {"order_id": "A-17"}'
    turn, events, _ = run_turn([call("explode", reason="x"), reply], options=ON)
    assert [r.status for r in records(events)] == ["error"]
    assert turn.result is not None and not turn.result.fallback
    assert turn.result.text == reply  # not "boom: x" as if it were the answer


def test_an_empty_reply_after_calls_that_all_failed_gets_the_last_resort() -> None:
    turn, events, _ = run_turn([call("explode", reason="x"), ""], options=ON)
    assert turn.result is not None and turn.result.fallback
    assert "boom: x" in turn.result.text and turn.result.text.strip()
    assert any(isinstance(e, Notice) and "did not answer" in e.text for e in events)


# --- routing: the first call goes to the tool the question is about -------------------

ROUTED = OFF.model_copy(update={"routed_calls": True})


def test_a_first_call_to_a_tool_the_question_is_not_about_is_made_to_the_right_one() -> None:
    question = "Where is my order B-40?"
    rest = '{"name": "lookup_order", "arguments": {"order_id": "B-40"}}\n</tool_call>'
    turn, events, engine = run_turn(
        [call("multiply", a=4, b=0), rest, "B-40 has shipped."],
        options=ROUTED,
        history=[UserMessage(content=question)],
        scores={"multiply": -30.0, "lookup_order": -20.0, "explode": -40.0},
    )
    assert engine.scored == [question]
    assert RUNS == ["lookup_order(B-40)"]  # the multiply call was never run
    notice = next(e.text for e in events if isinstance(e, Notice))
    assert "lookup_order" in notice and "multiply" in notice
    assert engine.prompts[1].endswith("<|im_start|>assistant\n<tool_call>\n")
    grammar = engine.constraints[1]
    assert grammar is not None and '"\\"lookup_order\\""' in grammar.gbnf
    assert '"\\"multiply\\""' not in grammar.gbnf
    assert turn.result is not None and turn.result.text == "B-40 has shipped."


@pytest.mark.parametrize(
    ("question", "scores"),
    [
        ("Where is my order B-40?", {"multiply": -21.0, "lookup_order": -20.0}),  # narrow
        ("Use multiply on B-40.", {"multiply": -30.0, "lookup_order": -20.0}),  # user's tool
        ("Where is my order B-40?", None),  # an engine that cannot score
    ],
    ids=["narrow-margin", "named-by-the-user", "no-scores"],
)
def test_the_models_first_call_stands_unless_another_tool_is_far_likelier(
    question: str, scores: dict[str, float] | None
) -> None:
    _, _, engine = run_turn(
        [call("multiply", a=4, b=0), "It is 0."],
        options=ROUTED,
        history=[UserMessage(content=question)],
        scores=scores,
    )
    assert RUNS == ["multiply(4,0)"]
    assert len(engine.prompts) == 2


def test_only_the_turns_first_call_is_routed() -> None:
    _, _, engine = run_turn(
        [call("lookup_order", order_id="B-40"), call("multiply", a=2, b=3), "Done."],
        options=ROUTED,
        history=[UserMessage(content="Where is B-40?")],
        scores={"multiply": -30.0, "lookup_order": -20.0},
    )
    assert RUNS == ["lookup_order(B-40)", "multiply(2,3)"] and len(engine.scored) == 1


@pytest.mark.parametrize(
    ("scores", "made"),
    [
        ({"lookup_order": -20.0, "multiply": -21.0, "explode": -40.0}, "multiply"),
        ({"lookup_order": -20.0, "multiply": -30.0, "explode": -40.0}, "lookup_order"),
    ],
    ids=["a-close-rival", "no-rival"],
)
def test_a_call_copied_whole_goes_to_a_tool_the_question_fits_as_well(
    scores: dict[str, float], made: str
) -> None:
    """The question gave lookup_order nothing (its call is the docstring's A-17): when
    another tool fits the question about as well, that one is called, else the copy is
    made again from the user's phrases."""
    options = OFF.model_copy(update={"example_guard": True, "routed_calls": True})
    question = "What do 6 and 7 make?"
    rest = '{"name": "%s", "arguments": %s}\n</tool_call>'
    again = {"multiply": '{"a": 6, "b": 7}', "lookup_order": '{"order_id": "6"}'}[made]
    _, events, engine = run_turn(
        [call("lookup_order", order_id="A-17"), rest % (made, again), "42."],
        options=options,
        history=[UserMessage(content=question)],
        scores=scores,
    )
    assert (["multiply(6,7)"] if made == "multiply" else ["lookup_order(6)"]) == RUNS
    grammar = engine.constraints[1]
    assert grammar is not None and f'"\\"{made}\\""' in grammar.gbnf
    assert any(isinstance(e, Notice) and made in e.text for e in events)
