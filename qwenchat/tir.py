"""Tool-integrated reasoning (TIR): the model writes Python, the code runs, it reads the output.

This is the Qwen2.5-Math way of solving problems. With the TIR system prompt
(``prompts/tir-math.md``) the model reasons in text, writes a ```python block and
then ```output; generation stops there, the block runs in the conversation's
sandbox, and its output is appended to the same assistant reply as ::

    ```output
    <what the code printed, or its error's last line>
    ```

after which the model goes on, for up to ``max_rounds`` replies. The final
answer is the last ``\\boxed{...}`` the model wrote in prose, never one in its code or
in an output block (:func:`qwenchat.answer.final_answer`); and what the code prints
cannot close its output block to pass for the model's words (:func:`output_block`).

Small models have one more habit, handled here: they end the reply right after a
```python block, without ```output and without an answer. Such a block is run
too, and the model continues from its output.

Code runs go through the ``python`` tool (:mod:`qwenchat.tools.python`), so they
are approved by the same policy and reported with the same events as tool calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from qwenchat.agent import (
    ApprovalPolicy,
    Event,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    run_tool,
)
from qwenchat.answer import extract_boxed, final_answer, prose
from qwenchat.chatml import AssistantMessage, CallStatus, Message, Segment
from qwenchat.config import Sampling
from qwenchat.context import dropped_notice, fit_prompt, reply_room
from qwenchat.engine.base import Completion, Engine
from qwenchat.turn import GenerationTurn, ToolCallRecord

if TYPE_CHECKING:
    from qwenchat.tools import Tool

TIR_PROMPT = "tir-math"
"""The prompts-library name of TIR mode's default system prompt: the Qwen2.5-Math one,
plus a sentence on the ```python/```output protocol, without which the small coder
models answered in prose and never wrote code."""
OUTPUT_FENCE = "```output"

_CODE_BLOCK = re.compile(r"```(?:python|py)[ \t]*\n(.*?)```", re.DOTALL)
_UNCLOSED_CODE = re.compile(r"```(?:python|py)[ \t]*\n(.*)\Z", re.DOTALL)
_FENCE_LINE = re.compile(r"^([ \t]{0,3}`{3,}[ \t]*)$", re.MULTILINE)


def code_to_run(text: str, completion: Completion) -> str | None:
    """The code a reply asks to run, or None when the reply is an answer.

    After a stop at ```output, the last python block before it (closed or not). After a
    reply that ended on its own, a python block that closes it, unless it gave an answer.
    """
    if completion.stop_sequence == OUTPUT_FENCE:
        before = text[: text.rfind(OUTPUT_FENCE)]
        blocks = _CODE_BLOCK.findall(before) or _UNCLOSED_CODE.findall(before)
        return blocks[-1] if blocks else ""
    if completion.finish_reason != "stop" or extract_boxed(prose(text)) is not None:
        return None
    stripped = text.rstrip()
    blocks = list(_CODE_BLOCK.finditer(stripped))
    if blocks and blocks[-1].end() == len(stripped):
        return blocks[-1].group(1)
    return None


def output_block(text: str, report: str) -> str:
    """The text that follows ``text`` to show the model its code's output.

    Inside a fenced block only a line of nothing but three or more backticks (indented
    at most three spaces) ends it, as CommonMark reads fences: such lines of the output
    are indented four more spaces, so nothing printed closes the block early.
    """
    report = _FENCE_LINE.sub(r"    \1", report)
    if text.rstrip().endswith(OUTPUT_FENCE):
        opening = "" if text.endswith("\n") else "\n"
    else:
        opening = ("\n" if text.endswith("\n") else "\n\n") + OUTPUT_FENCE + "\n"
    return f"{opening}{report}\n```\n"


def _last_line(report: str) -> str:
    """The line of an error report that says what failed (a traceback's last)."""
    lines = [line.strip() for line in report.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "an error"


class TirTurn(GenerationTurn):
    """One user turn in TIR mode; iterate for :data:`~qwenchat.agent.Event` s, then read
    :attr:`result`. Code runs are reported as calls of ``python`` (the tool given)."""

    def __init__(
        self,
        engine: Engine,
        messages: list[Message],
        sampling: Sampling,
        *,
        python: Tool,
        policy: ApprovalPolicy | None = None,
        max_rounds: int = 8,
    ) -> None:
        self.engine = engine
        self.messages = messages
        self.sampling = sampling
        self.python = python
        self.policy = policy or ApprovalPolicy()
        self.max_rounds = max_rounds
        super().__init__()
        self._told_to_change = False  # told once that failed code is not run again

    def __iter__(self) -> Iterator[Event]:
        pieces: list[str] = []  # generated text and output blocks, in order
        generated: list[str] = []  # the model's own pieces, where its answer is
        completions: list[Completion] = []
        records: list[ToolCallRecord] = []
        failed: dict[str, str] = {}  # code that failed this turn -> its error's last line
        gave_up = False  # the model sent failed code again after being told: no answer
        for _ in range(self.max_rounds):
            text, completion = yield from self._generate(pieces)
            pieces.append(text)
            generated.append(text)
            completions.append(completion)
            if self._cancelled or completion.finish_reason == "cancelled":
                break
            code = code_to_run(text, completion)
            if code is None:
                break
            key = code.strip()
            if key in failed and self._told_to_change:
                gave_up = True
                yield Notice("the model sent the same failing code again; no answer from this run")
                break
            record = yield from self._run(code, len(records) + 1, failed.get(key))
            if record.status == "error":
                failed[key] = _last_line(record.result)
            records.append(record)
            block = output_block(text, record.result)
            pieces.append(block)
            yield TextDelta(block)
        else:
            yield Notice(f"stopped after {self.max_rounds} rounds of code without a final answer")
        text = "".join(pieces).strip()
        self.messages.append(AssistantMessage(content=text))
        answer = None if gave_up else final_answer(generated)
        self.result = self._result(text, completions, records, answer)

    def _generate(self, pieces: list[str]) -> Iterator[Event]:
        # Each piece is its own segment, so the engine finds its replies' token ids
        # and the KV cache covers the whole turn so far.
        room = reply_room(self.engine, self.sampling.max_tokens)
        history, dropped = fit_prompt(self.engine, self.messages, room=room)
        if dropped and not pieces:
            yield Notice(dropped_notice(self.engine, dropped))
        prompt = history + [Segment(piece, False) for piece in pieces]
        self._generation = self.engine.generate(prompt, self.sampling, stop=(OUTPUT_FENCE,))
        if self._cancelled:
            self._generation.cancel()
        deltas: list[str] = []
        for delta in self._generation:
            deltas.append(delta)
            yield TextDelta(delta)
        completion = self._generation.result
        assert completion is not None
        return "".join(deltas), completion

    def _run(self, code: str, number: int, failed: str | None = None) -> Iterator[Event]:
        """Run one block; ``failed``: the error this same code gave before, so it is not
        run again and the model is told to change it."""
        call_id, arguments = f"code_{number}", {"code": code}

        def refused(status: CallStatus, result: str) -> ToolCallRecord:
            return ToolCallRecord(
                id=call_id, name=self.python.name, arguments=arguments, status=status, result=result
            )

        if not code.strip():
            record = refused("invalid", "Error: there is no ```python block before ```output")
        elif failed is not None:
            self._told_to_change = True
            record = refused(
                "repeated",
                f"Error: not run again: this same code already failed ({failed})."
                " Change the code to fix that error.",
            )
        elif self._cancelled or not self.policy.approves(self.python, arguments):
            record = refused("denied", "Error: the user did not approve running this code.")
        else:
            yield ToolCallStarted(call_id, self.python.name, arguments)
            record = run_tool(self.python, arguments, call_id)
        yield ToolCallFinished(record)
        return record
