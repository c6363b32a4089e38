"""The agent loop: generate, parse tool calls, validate, approve, run, feed back, repeat.

One :class:`Turn` answers one user message. Each round renders the conversation
(with the tools block when tools are enabled), streams the reply through the
:class:`~qwenchat.toolcall.ToolCallParser` (text goes out as it arrives, tool-call
markup never does), and, if the reply called tools, appends the calls and their
results in the Qwen2.5 format and generates again. It stops when a reply calls
no tool, when the user cancels, or after ``max_rounds`` replies.

Small Qwen models repeat a call after receiving its result. An identical call
(same name and arguments) is not run again. When every call of a reply is such a
repeat, the reply is dropped and the model asked again for its answer, with the
tools block left out of the prompt and ``<tool_call>`` banned (measured on the
1.5B model: it then answers from the result; with the tools on show, or with a
steering message, it repeated the call or echoed the question). If even that
reply is a call (the 0.5B model writes bare JSON), the turn ends with the
result itself as the answer and a notice: a repeat costs one or two rounds,
never the round limit. A repeat among new calls gets the earlier result with a
note not to call it again.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel

from qwenchat.answer import final_answer
from qwenchat.chatml import (
    AssistantMessage,
    CallStatus,
    Message,
    Segment,
    SystemMessage,
    ToolMessage,
    UserMessage,
    render_segments,
)
from qwenchat.config import Sampling
from qwenchat.context import dropped_notice, fit_prompt, reply_room
from qwenchat.engine.base import (
    Completion,
    Constraint,
    Engine,
)
from qwenchat.turn import GenerationTurn, ToolCallRecord, sum_timings, sum_usage

if TYPE_CHECKING:  # imported where used: a turn without tools (plain `ask`) never loads them
    from qwenchat.callgrammar import OpeningWatch
    from qwenchat.toolcall import CallEvent, ParsedCall, TextEvent
    from qwenchat.tools import Tool, ToolRegistry

TOOL_CALL_TOKEN = "<tool_call>"

Approval = Literal["once", "always", "deny"]
"""An approver's answer: run this call, run every call of this tool, or refuse."""


@dataclass(frozen=True)
class TextDelta:
    """Visible reply text."""

    text: str


@dataclass(frozen=True)
class ToolCallStarted:
    """A call that passed validation and approval and is about to run."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolCallFinished:
    """A call's outcome (run or not), with the result the model will see."""

    record: ToolCallRecord


@dataclass(frozen=True)
class Notice:
    """Something the user should know that is not reply text (e.g. the round limit)."""

    text: str


Event = TextDelta | ToolCallStarted | ToolCallFinished | Notice


class Approver(Protocol):
    def __call__(self, tool: Tool, arguments: dict[str, Any]) -> Approval: ...


class ApprovalPolicy:
    """Who may run what: safe tools always; others with ``yes``, an allow list, or an approver.

    Without any of those a call is refused and the model is told so.
    """

    def __init__(
        self, *, yes: bool = False, allow: set[str] | None = None, ask: Approver | None = None
    ) -> None:
        self.yes = yes
        self.allowed = set(allow or ())
        self.ask = ask

    def approves(self, tool: Tool, arguments: dict[str, Any]) -> bool:
        if tool.safe or self.yes or tool.name in self.allowed:
            return True
        if self.ask is None:
            return False
        answer = self.ask(tool, arguments)
        if answer == "always":
            self.allowed.add(tool.name)
        return answer != "deny"


class AgentOptions(BaseModel):
    """Knobs of the loop; the robustness features can be switched off to measure them."""

    max_rounds: int = 8
    bare_json: bool = True
    repeat_guard: bool = True
    answer_from_facts: bool = True
    """When the model will not answer from the results (it calls again, echoes them, or
    states nothing they said), ask once more with the results as facts in the system
    prompt, before the last resort of showing the results."""
    prose_answers: bool = True
    """Make the answer after the results (the round that must answer, and the facts
    answer) open as prose: not with a call, JSON, a fence or markup."""
    example_guard: bool = True
    """Refuse, once per tool and turn, a call that takes its values from the tool's
    docstring example rather than the conversation (:mod:`qwenchat.provenance`)."""
    constrained_calls: bool = True
    """Generate the rest of a call under a grammar once the model opens one
    (:mod:`qwenchat.callgrammar`)."""
    described_calls: bool = True
    """Make the call a reply only describes ("you can use the `get_weather` function with
    city set to Osaka"), once per turn: the round again, from a call opening that names
    that tool, under the call grammar."""
    routed_calls: bool = True
    """When the turn's first call goes to a tool under which the user's question is far
    less likely than under another (:mod:`qwenchat.routing`), make the call of that other
    tool instead: the round again, from a call opening, under its grammar. All six are
    on by default: their figures on the 0.5B and 1.5B models, each on and off, are in
    docs/benchmarks.md."""


TECHNIQUES = (
    "answer_from_facts",
    "prose_answers",
    "example_guard",
    "constrained_calls",
    "described_calls",
    "routed_calls",
)
"""The :class:`AgentOptions` flags of the loop's techniques for small models (each can be
switched off to measure it: ``bench/tool_eval.py``)."""


def _call_key(name: str, arguments: Any) -> str:
    return json.dumps([name, arguments], sort_keys=True, ensure_ascii=False)


class Turn(GenerationTurn):
    """One user turn through the loop; iterate for :data:`Event` s, then read :attr:`result`.

    ``messages`` is the conversation, ending with the user's message; the turn
    appends each assistant message and tool result to it as soon as it is complete.
    """

    def __init__(
        self,
        engine: Engine,
        messages: list[Message],
        sampling: Sampling,
        *,
        tools: ToolRegistry | None = None,
        policy: ApprovalPolicy | None = None,
        options: AgentOptions | None = None,
        history_calls: dict[str, str] | None = None,
        constraint: Constraint | None = None,
    ) -> None:
        self.engine = engine
        self.constraint = constraint
        """The grammar of the reply (structured output; a turn without tools)."""
        self.messages = messages
        self.sampling = sampling
        self.tools = tools if tools is not None and len(tools) else None
        self.policy = policy or ApprovalPolicy()
        self.options = options or AgentOptions()
        # Results of earlier calls, by (name, arguments): the repeat guard's memory.
        self.past_results = history_calls if history_calls is not None else {}
        super().__init__()
        self._next_id = sum(isinstance(m, ToolMessage) for m in messages)
        self._told_dropped = False
        self._steered: set[str] = set()  # tools whose docstring example the model copied
        self._made_described = False  # a described call was made this turn
        self._routed = False  # the turn's first call was checked against the routing

    def __iter__(self) -> Iterator[Event]:
        completions: list[Completion] = []
        records: list[ToolCallRecord] = []
        repeat: ToolCallRecord | None = None  # set: this round must answer, not call
        text = ""
        model_wrote = True  # the final text is the model's (not a tool result given for it)
        described: dict[str, Any] | None = None  # the spec of the call this round makes
        for _ in range(self.options.max_rounds):
            text, calls, completion = yield from self._generate(
                answer_only=repeat is not None, call=described
            )
            completions.append(completion)
            stopped = completion.finish_reason == "cancelled" or self._cancelled
            described, why = (
                (None, "") if stopped or repeat else self._call_to_make(text, calls, records)
            )
            if described is not None:
                yield Notice(why)
                continue
            # With no result that worked, a reply in words stands (there is nothing to
            # answer from); an empty one gets the last resort.
            echoed = (
                bool(records)
                and not calls
                and (
                    not self._answers(text, records)
                    if self._results(records)
                    else not _WORDS.search(text)
                )
            )
            if ((calls and repeat is not None) or echoed) and not stopped:
                # It will not answer from the results in the conversation (it calls again,
                # or echoes a result): ask once more with the results as plain facts.
                if echoed:
                    yield Notice("the model did not answer from the results; asking again")
                text, completion = None, None
                if self.options.answer_from_facts:
                    text, completion = yield from self._answer_from_facts(records)
                if completion is not None:
                    completions.append(completion)
                if text is None:
                    text = yield from self._show_result(records)
                    model_wrote = False
                break
            if not calls or stopped:
                self.messages.append(AssistantMessage(content=text))
                break
            round_records = yield from self._handle_calls(text, calls)
            records += round_records
            if self._cancelled:
                break
            if all(r.status == "repeated" for r in round_records):
                # The repeat adds nothing to the conversation: drop it and ask for the answer.
                del self.messages[-(len(round_records) + 1) :]
                repeat = round_records[0]
        else:
            yield Notice(
                f"stopped after {self.options.max_rounds} rounds of tool calls"
                " without a final answer"
            )
        answer = final_answer([text]) if model_wrote else None
        self.result = self._result(text, completions, records, answer, fallback=not model_wrote)

    def _answer_from_facts(self, records: list[ToolCallRecord]) -> Iterator[Event]:
        """A reply to the user's question alone, the calls' results given as facts in the
        system prompt: no tools, no tool messages, nothing for a small model to echo or
        call again. Buffered, so a reply that is still not prose is never shown; returns
        (text or None, completion)."""
        results = self._results(records)
        if not results:
            return None, None
        question = self._question()
        facts = "\n".join(f"- {name}: {readable(result, '; ')}" for name, result in results)
        prompt = render_segments(
            [SystemMessage(content=FACTS_PROMPT.format(facts=facts)), question]
        )
        from qwenchat.callgrammar import PROSE

        opening = PROSE if self.options.prose_answers else None
        self._generation = self.engine.generate(prompt, self.sampling, constraint=opening)
        if self._cancelled:
            self._generation.cancel()
        text = "".join(self._generation).strip()
        completion = self._generation.result
        assert completion is not None
        if not is_prose(text) or completion.finish_reason == "cancelled":
            return None, completion
        yield TextDelta(text)
        self.messages.append(AssistantMessage(content=text))
        return text, completion

    def _answers(self, text: str, records: list[ToolCallRecord]) -> bool:
        """Whether a final reply answers from this turn's results: it does not echo a
        call or a result, and (with ``answer_from_facts``, which can do better) it has
        no JSON object outside code blocks and states something the results said."""
        if _ECHO.search(text) is not None:
            return False
        if not self.options.answer_from_facts:
            return True
        if not _WORDS.search(text):  # empty, or no words at all
            return False
        outside_code = _FENCED.sub("", text)  # code the user asked for is an answer
        if _JSON_OBJECT.search(outside_code):  # '>{"name": ...}', "Here it is: {...}"
            return False
        from qwenchat.provenance import uses_results

        given = "\n".join([self._question().content, *(json.dumps(r.arguments) for r in records)])
        return uses_results(text, [result for _, result in self._results(records)], given)

    def _call_to_make(
        self, text: str, calls: list[ParsedCall], records: list[ToolCallRecord]
    ) -> tuple[dict[str, Any] | None, str]:
        """The spec of the call the next round makes instead of this reply, and why: the
        call it describes, the call it should have made, or its call without the value it
        copied from the tool's example."""
        described = self._described(text, calls, records)
        if described is not None:
            why = f"the model described a call to {described.name}; making it"
            return described.spec(), why
        rerouted = self._rerouted(calls, records)
        if rerouted is not None:
            why = f"the question is about {rerouted.name}, not {calls[0].name}: calling it instead"
            return rerouted.spec(), why
        return self._uncopied(calls)

    def _uncopied(self, calls: list[ParsedCall]) -> tuple[dict[str, Any] | None, str]:
        """A reply's one call, made again with the argument it copied from the tool's
        docstring example restricted to the phrases of the user's message
        (:mod:`qwenchat.provenance`); once per tool and turn. Small models repeat a copy
        they are told about in an error, and, forbidden the copy alone, write its
        neighbour (``Ghert`` for ``Ghent``); offered the user's words, they pick theirs.
        A call that took all its values from the example is made to another tool instead
        when the question fits that one about as well (:func:`routing.close_rival`)."""
        if not self.options.example_guard or len(calls) != 1 or self.tools is None:
            return None, ""
        tool = self.tools.get(calls[0].name or "")
        if tool is None or tool.name in self._steered:
            return None, ""
        from qwenchat.callgrammar import restricted
        from qwenchat.provenance import copied_argument, copied_example, offers
        from qwenchat.tools import ToolArgumentError

        try:
            arguments = tool.check_arguments(calls[0].arguments)
        except ToolArgumentError:
            return None, ""
        said = self._said()
        argument = copied_argument(tool, arguments, said)
        if argument is None:
            return None, ""
        question = self._question().content
        offered = offers(tool, argument, str(arguments[argument]), question)
        if not offered:
            return None, ""
        self._steered.add(tool.name)
        copy = f"{tool.name}'s {argument} {arguments[argument]!r} is its description's example"
        # A call that took every value from the example: the question gave that tool
        # nothing, so the choice of tool is in doubt too.
        whole = copied_example(tool, arguments, said) is not None
        rival = self._close_rival(tool.name, question) if whole else None
        if rival is not None:
            return rival.spec(), f"{copy}, and the question fits {rival.name} as well: calling it"
        why = f"{copy}, not the user's: making the call again with the user's words"
        return restricted(tool.spec(), argument, offered), why

    def _close_rival(self, called: str, question: str) -> Tool | None:
        """The other tool ``question`` fits about as well as ``called``, if any
        (:func:`qwenchat.routing.close_rival`; with routing on)."""
        if not self.options.routed_calls or self.tools is None:
            return None
        from qwenchat.routing import close_rival

        return close_rival(self.engine, self.tools, question, called)

    def _rerouted(self, calls: list[ParsedCall], records: list[ToolCallRecord]) -> Tool | None:
        """The tool the turn's first call should have gone to, when the question is far
        likelier under it than under the tool called (:mod:`qwenchat.routing`); not when
        the user named a tool, nor when the reply calls several."""
        if not self.options.routed_calls or self._routed or self.tools is None or records:
            return None
        names = {call.name for call in calls}
        if len(names) != 1:
            return None
        self._routed = True
        from qwenchat.provenance import mentions
        from qwenchat.routing import better_tool

        question = self._question().content
        if any(mentions(question, name) for name in self.tools.names()):
            return None
        return better_tool(self.engine, self.tools, question, names.pop())

    def _described(
        self, text: str, calls: list[ParsedCall], records: list[ToolCallRecord]
    ) -> Tool | None:
        """The one enabled tool a reply names as code (`` `get_weather` ``,
        ``get_weather(``, "the get_weather function") instead of calling it, before the
        turn has any result, when the user did not name it; once per turn."""
        if not self.options.described_calls or calls or self._made_described:
            return None
        if self.tools is None or self._results(records):
            return None
        question = self._question().content
        named = [n for n in self.tools.names() if _names(text, n) and not _names(question, n)]
        if len(named) != 1:
            return None
        self._made_described = True
        return self.tools.get(named[0])

    def _question(self) -> UserMessage:
        """The user's message this turn answers."""
        return next(m for m in reversed(self.messages) if isinstance(m, UserMessage))

    def _results(self, records: list[ToolCallRecord]) -> list[tuple[str, str]]:
        """This turn's results that worked, once each (a repeat's from the guard's memory)."""
        found: dict[str, tuple[str, str]] = {}
        for r in records:
            key = _call_key(r.name, r.arguments)
            if r.status == "ok" or (r.status == "repeated" and key in self.past_results):
                found.setdefault(key, (r.name, self.past_results.get(key, r.result)))
        return list(found.values())

    def _show_result(self, records: list[ToolCallRecord]) -> Iterator[Event]:
        """The last resort: the model would not answer, so the user gets the results, a
        line per field (never raw JSON or markup), with a notice saying so."""
        results = self._results(records) or [(r.name, r.result) for r in records[-1:]]
        names = ", ".join(dict.fromkeys(name for name, _ in results))
        yield Notice(f"the model did not answer from the {names} result; the result:")
        text = "\n\n".join(readable(result) for _, result in results)
        yield TextDelta(text)
        self.messages.append(AssistantMessage(content=text))
        return text

    def _generate(
        self, *, answer_only: bool, call: dict[str, Any] | None = None
    ) -> Iterator[Event]:
        """One reply. ``answer_only`` leaves the tools block out and bans ``<tool_call>``:
        without the tools on show, models answer from the results in the conversation.
        ``call``: the reply is a call under this tool spec, its arguments the model's."""
        specs = self.tools.specs() if self.tools and not answer_only else None
        prompt, dropped = fit_prompt(
            self.engine,
            self.messages,
            tools=specs,
            room=reply_room(self.engine, self.sampling.max_tokens),
        )
        if dropped and not self._told_dropped:
            self._told_dropped = True
            yield Notice(dropped_notice(self.engine, dropped))
        banned = (TOOL_CALL_TOKEN,) if answer_only else ()
        visible: list[str] = []
        calls: list[ParsedCall] = []
        if self.tools is None:  # no tools offered: whatever the model writes is text

            def show(delta: str) -> Iterator[Event]:
                visible.append(delta)
                yield TextDelta(delta)

            completion = yield from self._stream(prompt, banned, show)
            return "".join(visible).strip(), calls, completion
        from qwenchat.callgrammar import MADE_OPENING, PROSE, OpeningWatch, call_constraint
        from qwenchat.toolcall import ToolCallParser

        parser = ToolCallParser(self.tools.names(), bare_json=self.options.bare_json)

        def feed(delta: str) -> Iterator[Event]:
            for event in parser.feed(delta):
                yield from self._route(event, visible, calls)

        head: Completion | None = None
        if call is None:
            watch = OpeningWatch() if self.options.constrained_calls and not answer_only else None
            opening = PROSE if answer_only and self.options.prose_answers else None
            head = yield from self._stream(prompt, banned, feed, watch, opening)
            opened = watch.opening if watch is not None else None
        else:
            opened = MADE_OPENING
            yield from feed(opened.prefix)
        if opened is not None and (head is None or not self._cancelled):
            # A call opened: the rest of it is generated under the call grammar (a given
            # opening even when cancelled: the cancelled generation is the completion).
            specs = [call] if call is not None else self.tools.specs()
            rest = [*prompt, Segment(opened.prefix, False)]
            constraint = call_constraint(specs, opened)
            tail = yield from self._stream(rest, (), feed, constraint=constraint)
            head = _joined(head, tail, opened.prefix)
        assert head is not None
        completion = head
        for event in parser.finish():
            yield from self._route(event, visible, calls)
        return "".join(visible).strip(), calls, completion

    def _stream(
        self,
        prompt: list[Segment],
        banned: tuple[str, ...],
        feed: Callable[[str], Iterator[Event]],
        watch: OpeningWatch | None = None,
        constraint: Constraint | None = None,
    ) -> Iterator[Event]:
        """One generation, each delta handed to ``feed`` (shown, or parsed for calls).
        With ``watch``, the generation stops where a call opens."""
        self._generation = self.engine.generate(
            prompt, self.sampling, banned=banned, constraint=constraint or self.constraint
        )
        if self._cancelled:
            self._generation.cancel()
        for delta in self._generation:
            if watch is not None and watch.opening is None:
                delta = watch.feed(delta)
                if watch.opening is not None:
                    self._generation.cancel()  # ends within a token; the rest is dropped
            elif watch is not None:
                continue
            if delta:
                yield from feed(delta)
        completion = self._generation.result
        assert completion is not None
        if completion.notice:
            yield Notice(completion.notice)
        return completion

    @staticmethod
    def _route(
        event: TextEvent | CallEvent, visible: list[str], calls: list[ParsedCall]
    ) -> Iterator[Event]:
        from qwenchat.toolcall import TextEvent

        if isinstance(event, TextEvent):
            visible.append(event.text)
            yield TextDelta(event.text)
        else:
            calls.append(event.call)

    def _handle_calls(self, text: str, calls: list[ParsedCall]) -> Iterator[Event]:
        ids = [self._new_id() for _ in calls]
        self.messages.append(
            AssistantMessage(content=text, tool_calls=[call.to_tool_call() for call in calls])
        )
        outcomes: dict[str, ToolCallRecord] = {}
        runnable: list[tuple[str, Tool, dict[str, Any]]] = []
        for call_id, call in zip(ids, calls, strict=True):
            prepared = self._prepare(call_id, call)
            if isinstance(prepared, ToolCallRecord):
                outcomes[call_id] = prepared
            else:
                runnable.append((call_id, *prepared))
                yield ToolCallStarted(call_id, prepared[0].name, prepared[1])
        if self._cancelled:  # stopped while the calls were being announced
            for call_id, tool, arguments in runnable:
                outcomes[call_id] = ToolCallRecord(
                    id=call_id,
                    name=tool.name,
                    arguments=arguments,
                    status="skipped",
                    result="Error: not run: the user stopped the reply.",
                )
            runnable = []
        for record in self._run_all(runnable):
            outcomes[record.id] = record
            if record.status == "ok":
                self.past_results[_call_key(record.name, record.arguments)] = record.result
        records = [outcomes[call_id] for call_id in ids]
        for record in records:
            self.messages.append(
                ToolMessage(
                    content=record.result,
                    name=record.name,
                    tool_call_id=record.id,
                    status=record.status,
                    duration_s=record.duration_s,
                )
            )
            yield ToolCallFinished(record)
        return records

    def _new_id(self) -> str:
        self._next_id += 1
        return f"call_{self._next_id}"

    def _prepare(
        self, call_id: str, call: ParsedCall
    ) -> ToolCallRecord | tuple[Tool, dict[str, Any]]:
        """Validate and approve one call; a record means it will not run."""
        from qwenchat.tools import ToolArgumentError

        assert self.tools is not None
        name = call.name or "?"

        def refused(status: CallStatus, message: str) -> ToolCallRecord:
            return ToolCallRecord(
                id=call_id, name=name, arguments=call.arguments, status=status, result=message
            )

        if call.error is not None:
            return refused("invalid", f"Error: {call.error}")
        tool = self.tools.get(name)
        if tool is None:
            available = ", ".join(self.tools.names())
            return refused(
                "unknown", f"Error: there is no tool named {name!r}. Available tools: {available}."
            )
        try:
            arguments = tool.check_arguments(call.arguments)
        except ToolArgumentError as exc:
            return refused("invalid", f"Error: {exc}")
        copied = self._copied_example(tool, arguments)
        if copied is not None:
            from qwenchat.provenance import steer

            return refused("invalid", steer(tool, *copied))
        key = _call_key(name, arguments)
        if self.options.repeat_guard and key in self.past_results:
            return ToolCallRecord(
                id=call_id,
                name=name,
                arguments=arguments,
                status="repeated",
                result=(
                    f"{self.past_results[key]}\n(You already called {name} with these arguments"
                    " and this was its result. Do not call it again: answer the user's question"
                    " now, using it.)"
                ),
            )
        if self._cancelled or not self.policy.approves(tool, arguments):
            return refused(
                "denied", f"Error: the user did not approve this call to {name}; do not retry it."
            )
        return tool, arguments

    def _copied_example(self, tool: Tool, arguments: dict[str, Any]) -> tuple[str, str] | None:
        """An argument copied from the tool's docstring example, the first time a tool
        gets one this turn (a second time, the model may know better: "the capital of
        Peru" is Lima)."""
        if not self.options.example_guard or tool.name in self._steered:
            return None
        from qwenchat.provenance import copied_example

        copied = copied_example(tool, arguments, self._said())
        if copied is not None:
            self._steered.add(tool.name)
        return copied

    def _said(self) -> str:
        """What the user and the tools said in the conversation: where values come from."""
        return "\n".join(
            m.content for m in self.messages if isinstance(m, (UserMessage, ToolMessage))
        )

    def _run_all(self, runnable: list[tuple[str, Tool, dict[str, Any]]]) -> list[ToolCallRecord]:
        """Run the approved calls of one reply concurrently."""
        if not runnable:
            return []
        import asyncio  # here, not at the top: a turn without tools should not pay for it

        async def run_all() -> list[ToolCallRecord]:
            return await asyncio.gather(*(_run_one(*item) for item in runnable))

        return asyncio.run(run_all())


def run_tool(tool: Tool, arguments: dict[str, Any], call_id: str = "call_1") -> ToolCallRecord:
    """Run one validated, approved call, as the loop does (for ``qwenchat tools run``)."""
    import asyncio

    return asyncio.run(_run_one(call_id, tool, arguments))


async def _run_one(call_id: str, tool: Tool, arguments: dict[str, Any]) -> ToolCallRecord:
    from qwenchat.tools import ToolFailed, ToolRunError

    start = time.perf_counter()
    try:
        result, status = await tool.run(arguments), "ok"
    except ToolFailed as exc:  # it ran, and its report says what went wrong
        result, status = exc.report, "error"
    except ToolRunError as exc:
        result, status = f"Error: {exc}", "error"
    return ToolCallRecord(
        id=call_id,
        name=tool.name,
        arguments=arguments,
        status=status,  # type: ignore[arg-type]
        result=result,
        duration_s=time.perf_counter() - start,
    )


def _joined(head: Completion | None, tail: Completion, prefix: str) -> Completion:
    """A reply generated in two parts (up to a call's opening, then the call under its
    grammar) as one completion; with no head, the opening was given, not generated."""
    both = [tail] if head is None else [head, tail]
    return Completion(
        text=prefix + tail.text,
        finish_reason=tail.finish_reason,
        usage=sum_usage(both),
        timings=sum_timings(both),
        notice=tail.notice,
    )


def _names(text: str, tool: str) -> bool:
    """Whether ``text`` names ``tool`` as code: in backticks, called, or as "the tool" or
    "function" (a tool named for a word, ``calculator``, is not named by the word)."""
    name = re.escape(tool)
    return re.search(rf"`{name}`|\b{name}\s*\(|\b{name}\s+(?:function|tool)\b", text) is not None


FACTS_PROMPT = (
    "You are a helpful assistant. Answer the user's question in one or two plain"
    " sentences, using these facts, which are true and current. Give the values exactly"
    " as they are written here.\n\nFacts:\n{facts}"
)
"""The system prompt of an answer from results given as facts (tested on the 0.5B and
1.5B models, see docs/benchmarks.md)."""

_ECHO = re.compile(r"</?tool_(?:call|response)>|^\s*[\[{]")
"""An answer that echoes a call or a result instead of saying what it means."""
_FENCED = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_JSON_OBJECT = re.compile(r'\{\s*"[^"]*"\s*:')
_NOT_PROSE = re.compile(rf"</?tool_(?:call|response)>|```|^\s*[\[{{]|{_JSON_OBJECT.pattern}")
_WORDS = re.compile(r"[^\W\d_]{2,}")


def is_prose(text: str) -> bool:
    """Whether a reply reads as an answer: words, not a call, JSON, a fence or markup."""
    return bool(_WORDS.search(text)) and not _NOT_PROSE.search(text)


def readable(result: str, sep: str = "\n") -> str:
    """A tool result for people: a JSON object's fields as ``name: value``, joined by
    ``sep`` (nested values stay compact JSON); any other result as it is."""
    try:
        data = json.loads(result)
    except ValueError:
        return result.strip()
    if not isinstance(data, dict) or not data:
        return result.strip()
    return sep.join(
        f"{key}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for key, value in data.items()
    )
