"""Which tool a question is for, as the model's likelihoods say: tool routing.

Small models pick tools badly when several are on offer: the 0.5B model calls
``get_weather(city="Lima")`` (the first tool, and its docstring's example) for a
currency or a book question. Asked the other way round, the same model knows: of
the prompts "You answer questions with the tool T: <what T does>", the one after
which the user's question is likeliest names the right tool (a noisy-channel
classifier: ``argmax_T log P(question | T)``). Measured on 66 questions over two
sets of 9 tools (``bench/toolsets``), that picks the right tool for 66 of 66 on the
0.5B model and 65 of 66 on the 1.5B, where the 0.5B model's own picks were right
for about two thirds. The loop asks it once per turn, when the model opens its first
call (:class:`qwenchat.agent.AgentOptions.routed_calls`), and the call's arguments
are then the model's, under that tool's grammar.

Every candidate is scored on the same question tokens, so the sums compare directly.
The prompts stay in the engine's cache (:mod:`qwenchat.engine.scoring`): with the
same tools, a question costs its own tokens once per tool, in one batch.
"""

from __future__ import annotations

import math
import re

from qwenchat.chatml import IM_END, IM_START, Segment
from qwenchat.engine.base import Engine
from qwenchat.tools import Tool, ToolRegistry

ROUTE_PROMPT = "You answer questions with the tool {name}: {summary}"
MARGIN = 2.0
"""How much likelier (in nats: e^2, about 7 times) the question must be under another
tool for the model's own choice to be overruled. On the two sets the model's wrong
choices were behind by 6.6 nats or more, and the router's own mistakes ahead by
0.33 nats or less."""
MAX_QUESTION_CHARS = 600
"""The end of a long message is scored (a pasted document comes first, the question
last), so that a turn with a document costs no more than one without."""
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def summary(tool: Tool) -> str:
    """The first sentence of a tool's description: what it does, without its examples."""
    first = _SENTENCE_END.split(tool.description.strip(), maxsplit=1)[0]
    return " ".join(first.split())


def prompt_for(tool: Tool) -> list[Segment]:
    """The rendered ChatML of a system message naming ``tool``, up to the user's text."""
    system = ROUTE_PROMPT.format(name=tool.name, summary=summary(tool))
    return [
        Segment(f"{IM_START}system\n", True),
        Segment(system, False),
        Segment(f"{IM_END}\n{IM_START}user\n", True),
    ]


def ranked(engine: Engine, tools: ToolRegistry, question: str) -> list[tuple[float, Tool]]:
    """The enabled tools with the log-likelihood of ``question`` under each, likeliest
    first; empty when there is nothing to choose between or the engine cannot score."""
    candidates = [tool for name in tools.names() if (tool := tools.get(name)) is not None]
    if len(candidates) < 2 or not question.strip():
        return []
    scores = engine.score([prompt_for(t) for t in candidates], question[-MAX_QUESTION_CHARS:])
    if scores is None:
        return []
    return sorted(zip(scores, candidates, strict=True), key=lambda pair: -pair[0])


def better_tool(engine: Engine, tools: ToolRegistry, question: str, called: str) -> Tool | None:
    """The tool under which ``question`` is likeliest, if that is not ``called`` and
    beats it by :data:`MARGIN` (or ``called`` is no enabled tool); else None."""
    ranking = ranked(engine, tools, question)
    if not ranking:
        return None
    mine = next((score for score, tool in ranking if tool.name == called), -math.inf)
    best_score, best = ranking[0]
    return best if best.name != called and best_score - mine >= MARGIN else None


def close_rival(engine: Engine, tools: ToolRegistry, question: str, called: str) -> Tool | None:
    """The likeliest tool other than ``called``, when ``called`` does not beat it by
    :data:`MARGIN`: the other reading of a question when the call to ``called`` had to
    take all its values from the tool's docstring example (the question gave it none,
    so the choice of tool is in doubt); else None."""
    ranking = ranked(engine, tools, question)
    mine = next((score for score, tool in ranking if tool.name == called), None)
    others = [(score, tool) for score, tool in ranking if tool.name != called]
    if mine is None or not others or mine - others[0][0] >= MARGIN:
        return None
    return others[0][1]
