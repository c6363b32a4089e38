"""Fitting a conversation that outgrows the context window.

When the rendered history plus the room kept for the reply would not fit in the
engine's ``n_ctx``, the oldest turns are left out of the prompt (the conversation
and the session store keep them). Never left out: the messages before the first
user message (the system prompt, a persona's greeting) and the turn being
answered. A turn is a user message with every assistant and tool message after
it, so a tool call is never separated from its result.

Turns are dropped in blocks of :data:`DROP_BLOCK`: the prompt's start then moves
only every few turns, and the turns in between keep reusing the KV cache instead
of re-evaluating the whole history each time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qwenchat.chatml import Message, Segment, UserMessage, render_segments
from qwenchat.engine.base import Engine

DROP_BLOCK = 4


def reply_room(engine: Engine, max_tokens: int) -> int:
    """The tokens kept free for the reply: its budget, but at most half the window."""
    return min(max_tokens, engine.n_ctx // 2)


def dropped_notice(engine: Engine, dropped: int) -> str:
    """What the user is told when ``dropped`` messages are left out of the prompt."""
    return (
        f"the conversation is longer than the context window ({engine.n_ctx} tokens): "
        f"its oldest {dropped} messages are left out of the prompt"
    )


def fit_prompt(
    engine: Engine,
    messages: list[Message],
    *,
    tools: Sequence[dict[str, Any]] | None = None,
    room: int = 0,
) -> tuple[list[Segment], int]:
    """The rendered prompt that fits in ``engine.n_ctx - room``, and how many messages
    were left out of it (0 when everything fits). If even the kept part is too long,
    it is returned whole and the engine reports the overflow."""
    prompt = render_segments(messages, tools=tools)
    limit = engine.n_ctx - room
    if engine.count_tokens(prompt) <= limit:
        return prompt, 0
    pinned, turns = _split_turns(messages)
    for drop in range(DROP_BLOCK, len(turns) - 1 + DROP_BLOCK, DROP_BLOCK):
        kept = turns[min(drop, len(turns) - 1) :]
        candidate = render_segments(pinned + [m for turn in kept for m in turn], tools=tools)
        if engine.count_tokens(candidate) <= limit or len(kept) == 1:
            return candidate, sum(len(turn) for turn in turns[: len(turns) - len(kept)])
    return prompt, 0  # a single turn: nothing can be left out


def _split_turns(messages: list[Message]) -> tuple[list[Message], list[list[Message]]]:
    first_user = next((i for i, m in enumerate(messages) if isinstance(m, UserMessage)), None)
    if first_user is None:
        return list(messages), []
    turns: list[list[Message]] = []
    for message in messages[first_user:]:
        if isinstance(message, UserMessage) or not turns:
            turns.append([])
        turns[-1].append(message)
    return list(messages[:first_user]), turns
