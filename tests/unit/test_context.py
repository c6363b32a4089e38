"""Fitting a long conversation into the context window (scripted engine: 1 token per char)."""

from __future__ import annotations

from qwenchat.agent import Notice
from qwenchat.chat import Chat
from qwenchat.chatml import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
    render_segments,
)
from qwenchat.config import Settings
from qwenchat.context import DROP_BLOCK, fit_prompt
from tests.fakes import ScriptedEngine


def engine(n_ctx: int) -> ScriptedEngine:
    fake = ScriptedEngine(["ok"] * 50)
    fake.n_ctx = n_ctx
    return fake


def history(turns: int) -> list[Message]:
    messages: list[Message] = [
        SystemMessage(content="You are Nick."),
        AssistantMessage(content="Rain again."),  # a persona's greeting
    ]
    for i in range(turns):
        messages += [UserMessage(content=f"question {i:02d} " + "x" * 60)]
        if i % 3 == 0:  # a tool call and its result belong to the turn
            call = ToolCall(name="calculator", arguments={"expression": "1+1"})
            messages += [AssistantMessage(content="", tool_calls=[call])]
            messages += [ToolMessage(content="2", name="calculator", tool_call_id=f"call_{i}")]
        messages += [AssistantMessage(content=f"answer {i:02d} " + "y" * 60)]
    return messages


def text(prompt: list) -> str:  # type: ignore[type-arg]
    return "".join(seg.text for seg in prompt)


def test_a_conversation_that_fits_is_untouched() -> None:
    messages = history(3)
    prompt, dropped = fit_prompt(engine(100_000), messages)
    assert dropped == 0 and prompt == render_segments(messages)


def test_oldest_whole_turns_go_first_and_the_pins_stay() -> None:
    messages = history(30)
    fake = engine(2000)
    prompt, dropped = fit_prompt(fake, messages, room=200)
    rendered = text(prompt)
    assert fake.count_tokens(prompt) <= 1800 and dropped > 0
    assert "You are Nick." in rendered and "Rain again." in rendered
    assert "question 29" in rendered and "answer 29" in rendered
    assert "question 00" not in rendered
    # Only whole turns are dropped: every kept tool result has its call before it.
    kept = messages[:2] + messages[2 + dropped :]
    assert isinstance(kept[2], UserMessage)
    assert render_segments(kept) == prompt


def test_drops_come_in_blocks_so_the_prompt_start_holds_for_a_few_turns() -> None:
    starts = []
    for turns in range(20, 28):
        prompt, dropped = fit_prompt(engine(2500), history(turns), room=200)
        first_question = text(prompt).split("question ")[1][:2]
        starts.append(first_question)
        turns_dropped = int(first_question)
        assert turns_dropped % DROP_BLOCK == 0 and dropped > 0
    assert len(set(starts)) < len(starts) / 2  # the start moved at most every other turn


def test_the_turn_says_once_what_was_left_out_and_keeps_the_history() -> None:
    fake = engine(1500)
    chat = Chat(settings=Settings(), engine=fake, history=history(30), max_tokens=100)
    events = list(chat.stream("the new question").events())
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and "left out of the prompt" in notices[0]
    assert "the new question" in fake.prompts[-1] and "question 00" not in fake.prompts[-1]
    assert chat.messages[2].content.startswith("question 00")  # nothing deleted
