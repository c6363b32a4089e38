"""The small public Python API: :class:`Chat`, a multi-turn conversation with a local model.

>>> from qwenchat import Chat
>>> chat = Chat(system="Answer in one word.")
>>> chat.send("What colour is the sky?").text
'Blue.'

Every turn goes through the agent loop (:mod:`qwenchat.agent`); without tools
that is a single reply. The CLI's ``ask`` and the TUI are thin shells over this class.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel

from qwenchat.agent import AgentOptions, ApprovalPolicy, Event, TextDelta, Turn
from qwenchat.chatml import (
    AssistantMessage,
    Attachment,
    Message,
    SystemMessage,
    ToolMessage,
    UserMessage,
)
from qwenchat.config import Sampling, Settings, load_settings
from qwenchat.engine.base import Engine, FinishReason, PromptProgress, Timings, Usage
from qwenchat.engine.load import load_engine
from qwenchat.errors import GenerationError, InputError
from qwenchat.schema import Schema
from qwenchat.tir import TIR_PROMPT, TirTurn
from qwenchat.turn import SampleReply, ToolCallRecord

if TYPE_CHECKING:
    from types import TracebackType

    from qwenchat.recorder import SessionRecorder
    from qwenchat.sandbox import Sandbox
    from qwenchat.tools import Tool, ToolRegistry
    from qwenchat.vote import VotingTurn


M = TypeVar("M", bound=BaseModel)


class Reply(BaseModel):
    """One answer to a user message, with what it cost (summed over tool-call rounds)."""

    text: str
    model: str
    finish_reason: FinishReason
    usage: Usage
    timings: Timings
    rounds: int = 1
    tool_calls: list[ToolCallRecord] = []
    answer: str | None = None
    """The last ``\\boxed{...}`` in the model's own prose, if any (TIR and math prompts
    ask for one; never from code, its output, or a tool's result)."""
    fallback: bool = False
    """The text is a tool's result, shown because the model would not answer from it."""
    votes: int | None = None
    """With samples: how many of them gave :attr:`answer` (:mod:`qwenchat.vote`)."""
    samples: int | None = None
    """With samples: how many were drawn."""
    sample_replies: list[SampleReply] = []
    """With samples: each sample's text and answer, in order."""
    data: Any = None
    """With a schema: the reply parsed as JSON and validated against it."""


class ReplyStream:
    """Iterate for text deltas; :attr:`reply` is set when the stream ends.

    :meth:`cancel` (from any thread) ends the stream within one token; the
    partial reply is kept in the conversation with ``finish_reason="cancelled"``.
    :meth:`events` gives everything instead (text, tool calls, notices).
    """

    def __init__(
        self, chat: Chat, turn: Turn | TirTurn | VotingTurn, schema: Schema | None = None
    ) -> None:
        self._chat = chat
        self._turn = turn
        self._schema = schema
        self.reply: Reply | None = None

    def cancel(self) -> None:
        self._turn.cancel()

    def events(self, on_prompt: PromptProgress | None = None) -> Iterator[Event]:
        """The turn's events. ``on_prompt`` hears how far a long prompt has been read,
        ``(tokens read, tokens to read)``, while this stream is read (from its thread)."""
        recorder, messages = self._chat.recorder, self._chat.messages
        if recorder is not None:  # the user's message is saved before the prompt is read
            recorder.sync(messages)
        engine = self._chat.engine
        engine.on_prompt = on_prompt
        try:
            for event in self._turn:
                if recorder is not None:
                    recorder.observe(event, messages)
                yield event
        except Exception:
            if recorder is not None:
                recorder.abandon(messages)
            raise
        finally:
            engine.on_prompt = None
        if recorder is not None:
            recorder.sync(messages)
        result = self._turn.result
        assert result is not None
        data = None
        if self._schema is not None and result.finish_reason == "length":
            raise GenerationError(
                "the reply reached max_tokens before its JSON ended: raise --max-tokens"
            )
        if self._schema is not None and result.finish_reason == "stop":
            data = self._schema.load(result.text)
        self.reply = Reply(model=self._chat.engine.model_name, data=data, **result.model_dump())

    def __iter__(self) -> Iterator[str]:
        for event in self.events():
            if isinstance(event, TextDelta):
                yield event.text


class Chat:
    """A conversation with a local Qwen2.5 model.

    Args:
        model: a GGUF path or a name in the models dir; None uses the configured
            default, then the models dir, then the bundled test model.
        system: the system prompt; None uses Qwen's default one.
        settings: the configuration (read from the config file when None).
        engine: an already loaded engine (shares its KV cache); overrides ``model``.
        tools: tools the model may call (see :mod:`qwenchat.tools`).
        python: offer the ``python`` tool too, running code in this chat's sandbox.
        tir: answer in tool-integrated reasoning mode (:mod:`qwenchat.tir`): the model's
            ```python blocks run in this chat's sandbox; the system prompt defaults to
            the TIR one.
        samples: answer each message by the vote of this many sampled solutions
            (:mod:`qwenchat.vote`), in TIR mode or without tools; None: the config's
            ``tir.samples`` in TIR mode, else 1.
        approval: who approves calls of tools not marked safe (default: nobody, so they
            are refused).
        agent: loop options (round limit, robustness features).
        history: the conversation so far (a resumed session); ``system`` is then unused.
        recorder: saves the conversation to a session as it happens
            (:class:`~qwenchat.recorder.SessionRecorder`).
        **sampling: overrides of :class:`~qwenchat.config.Sampling`
            (``temperature``, ``top_p``, ``top_k``, ``repeat_penalty``, ``max_tokens``, ``seed``).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        system: str | None = None,
        *,
        settings: Settings | None = None,
        engine: Engine | None = None,
        tools: ToolRegistry | None = None,
        python: bool = False,
        tir: bool = False,
        samples: int | None = None,
        approval: ApprovalPolicy | None = None,
        agent: AgentOptions | None = None,
        history: list[Message] | None = None,
        recorder: SessionRecorder | None = None,
        **sampling: Any,
    ) -> None:
        self.settings = settings or load_settings()
        self.engine = engine or load_engine(model, self.settings)
        self.sampling = Sampling.model_validate({**self.settings.sampling.model_dump(), **sampling})
        self.tir = tir
        if samples is not None and samples < 1:
            raise InputError(f"samples must be at least 1, not {samples}")
        self._samples = samples
        self.approval = approval or ApprovalPolicy()
        self.agent = agent or AgentOptions()
        self._sandbox: Sandbox | None = None
        self._python: Tool | None = None
        self.tools = tools
        if python:
            from qwenchat.tools import ToolRegistry

            self.tools = ToolRegistry([*(tools or ()), self.python_tool()])
        if system is None and tir:
            from qwenchat.prompts import get_prompt

            system = get_prompt(TIR_PROMPT).text
        elif system is None:
            system = self.settings.system_prompt
        self.messages: list[Message] = (
            list(history) if history else [SystemMessage(content=system)] if system else []
        )
        self.recorder = recorder
        self._call_results: dict[str, str] = {}

    @property
    def samples(self) -> int:
        """How many samples each answer is voted from (1: no vote): as given, else the
        config's ``tir.samples`` while in TIR mode (which the TUI switches)."""
        if self._samples is not None:
            return self._samples
        return self.settings.tir.samples if self.tir else 1

    @property
    def sandbox(self) -> Sandbox:
        """This chat's sandbox (started on its first code run; see :meth:`close`)."""
        if self._sandbox is None:
            from qwenchat.sandbox import Sandbox

            self._sandbox = Sandbox.from_settings(self.settings.sandbox)
        return self._sandbox

    def python_tool(self) -> Tool:
        """The ``python`` tool bound to :attr:`sandbox`; raises ``SandboxError`` if none works."""
        if self._python is None:
            from qwenchat.tools.python import python_tool

            self._python = python_tool(self.sandbox)
        return self._python

    def close(self) -> None:
        """Stop the sandbox and everything it runs (the engine stays loaded)."""
        if self._sandbox is not None:
            self._sandbox.close()

    def __enter__(self) -> Chat:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def stream(
        self,
        text: str,
        *,
        schema: Schema | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> ReplyStream:
        """Add a user message and stream the answer (see :class:`ReplyStream`).

        ``schema``: the answer is JSON that follows it (grammar-enforced, then
        validated into :attr:`Reply.data`); not with tools or TIR. ``attachments``:
        files the message carries (:mod:`qwenchat.attachments`); files that would not fit
        the context window are an :class:`InputError` saying how many tokens they take.
        """
        if schema is not None and (self.tools or self.tir or self.samples > 1):
            raise InputError("a schema cannot be used with tools, TIR or samples in one reply")
        if self.samples > 1 and self.tools and not self.tir:
            raise InputError("samples vote on TIR or plain answers: not with tools")
        python = self.python_tool() if self.tir else None  # before the message: it may raise
        message = UserMessage(content=text, attachments=list(attachments))
        if attachments:
            self._check_fits(message)
        self.messages.append(message)
        return self._answer(python, schema)

    def _check_fits(self, message: UserMessage) -> None:
        """Raise :class:`InputError` when the message's files alone leave no room for the
        rest of the prompt and the reply."""
        from qwenchat.attachments import too_long
        from qwenchat.chatml import render_segments
        from qwenchat.context import reply_room

        system = [m for m in self.messages[:1] if isinstance(m, SystemMessage)]
        bare = render_segments([*system, message.model_copy(update={"attachments": []})])
        room = (
            self.engine.n_ctx
            - reply_room(self.engine, self.sampling.max_tokens)
            - self.engine.count_tokens(bare)
        )
        problem = too_long(message.attachments, self.engine.count_tokens, room)
        if problem is not None:
            raise InputError(problem)

    def retry(self) -> ReplyStream:
        """Answer the last user message again; the old answer stays in the session as a
        branch of its own. Raises :class:`InputError` when there is nothing to retry."""
        users = [i for i, m in enumerate(self.messages) if isinstance(m, UserMessage)]
        if not users or users[-1] == len(self.messages) - 1:
            raise InputError("there is no reply to retry yet")
        python = self.python_tool() if self.tir else None
        self._branch(users[-1] + 1)
        return self._answer(python)

    def edit(self, index: int, text: str) -> ReplyStream:
        """Replace the user message at ``index`` and answer it; what followed it stays in
        the session as another branch."""
        if not 0 <= index < len(self.messages) or not isinstance(self.messages[index], UserMessage):
            raise InputError(f"message {index} is not a user message; only those can be edited")
        python = self.python_tool() if self.tir else None
        edited = self.messages[index]
        assert isinstance(edited, UserMessage)
        self._branch(index)
        self.messages.append(UserMessage(content=text, attachments=edited.attachments))
        return self._answer(python)

    def delete(self, index: int) -> None:
        """Delete the message at ``index`` (from the session too); an assistant message's
        tool results go with it, so no result is left without its call."""
        if not 0 <= index < len(self.messages):
            raise InputError(f"there is no message {index}")
        end = index + 1
        if isinstance(self.messages[index], AssistantMessage):
            while end < len(self.messages) and isinstance(self.messages[end], ToolMessage):
                end += 1
        if self.recorder is not None:
            self.recorder.delete(index, end)
        del self.messages[index:end]

    def _branch(self, keep: int) -> None:
        del self.messages[keep:]
        if self.recorder is not None:
            self.recorder.branch_from(keep)

    def _answer(self, python: Tool | None, schema: Schema | None = None) -> ReplyStream:
        if self.samples > 1:
            from qwenchat.vote import VotingTurn

            vote = VotingTurn(self.engine, self.messages, self.sampling, self.samples, self._sample)
            return ReplyStream(self, vote)
        if python is not None:
            tir = TirTurn(
                self.engine,
                self.messages,
                self.sampling,
                python=python,
                policy=self.approval,
                max_rounds=self.agent.max_rounds,
            )
            return ReplyStream(self, tir)
        turn = Turn(
            self.engine,
            self.messages,
            self.sampling,
            tools=self.tools,
            policy=self.approval,
            options=self.agent,
            history_calls=self._call_results,
            constraint=schema.constraint if schema is not None else None,
        )
        return ReplyStream(self, turn, schema)

    def _sample(
        self, engine: Engine, messages: list[Message], sampling: Sampling, stack: ExitStack
    ) -> Turn | TirTurn:
        """One sample of a voted turn; in TIR mode with a fresh sandbox of its own, so no
        sample sees another's variables (closed when the vote ends)."""
        if not self.tir:
            return Turn(engine, messages, sampling, policy=self.approval, options=self.agent)
        from qwenchat.sandbox import Sandbox
        from qwenchat.tools.python import python_tool

        sandbox = stack.enter_context(Sandbox.from_settings(self.settings.sandbox))
        return TirTurn(
            engine,
            messages,
            sampling,
            python=python_tool(sandbox),
            policy=self.approval,
            max_rounds=self.agent.max_rounds,
        )

    def context_tokens(self) -> int:
        """Tokens the conversation takes in the context window now, as the next prompt
        renders it (the tools block included; the room kept for the reply not)."""
        from qwenchat.chatml import render_segments

        if not self.messages:
            return 0
        specs = self.tools.specs() if self.tools and not self.tir else None
        return self.engine.count_tokens(render_segments(self.messages, specs, False))

    @overload
    def send(self, text: str, *, schema: type[M]) -> M: ...
    @overload
    def send(self, text: str, *, schema: Schema | None = None) -> Reply: ...

    def send(self, text: str, *, schema: Schema | type[BaseModel] | None = None) -> Any:
        """Add a user message and return the whole answer; with a pydantic model as
        ``schema``, the answer parsed into it."""
        model = schema if isinstance(schema, type) else None
        stream = self.stream(text, schema=Schema.of(model) if model else schema)
        for _ in stream.events():
            pass
        reply = stream.reply
        assert reply is not None
        return model.model_validate(reply.data) if model is not None else reply
